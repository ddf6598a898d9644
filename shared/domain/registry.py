"""Registry events: projects, verified issuance, retirement, product footprints, labels and claims."""

from __future__ import annotations

import enum

import msgspec

from shared.domain.base import DomainEvent
from shared.domain.integrity import ProjectStatus
from shared.domain.ledger import SerialRange
from shared.domain.reasons import Reason
from shared.domain.retirement import BlockSelection

__all__ = [
    "BOUNDARIES",
    "CRADLE_TO_GATE_STAGES",
    "STAGES",
    "ActivityRecorded",
    "CreditsRetired",
    "EligibilityChanged",
    "IssuanceRequested",
    "LabelIssued",
    "LabelRequested",
    "NeutralityClaimSubmitted",
    "NeutralityClaimed",
    "ProductRegistered",
    "ProjectRegistered",
    "RegistryEvent",
    "RegistryRejected",
    "RetirementApproved",
    "RetirementKind",
    "RetirementRejected",
    "RetirementRequested",
    "StageCutOff",
    "StageFootprint",
    "UnitState",
    "VerificationAccepted",
    "VerificationSubmitted",
]


class RetirementKind(enum.StrEnum):
    """What takes tonnes out of the market: a holder's retirement for a beneficiary, or the
    operator's cancellation (e.g. of buffer credits after a reversal)."""

    RETIRE = "retire"
    CANCEL = "cancel"


class UnitState(enum.StrEnum):
    """Where an issued tonne is: every serial is in exactly one of these states at any seq."""

    HELD = "held"
    FROZEN = "frozen"  # reserved for a sell order or a retirement in flight
    RETIRED = "retired"
    CANCELLED = "cancelled"
    BUFFER = "buffer"  # held in the BUFFER account against reversals
    SURRENDERED = "surrendered"  # in a CreditsSurrendered entry: spent against a compliance obligation


# Life-cycle stages in the order of ISO 14067 / the GHG Protocol Product Standard.
STAGES = ("materials", "production", "distribution", "use", "end_of_life")
CRADLE_TO_GATE_STAGES = ("materials", "production")
BOUNDARIES = ("cradle-to-gate", "cradle-to-grave")


# ---------------------------------------------------------------- projects and verified issuance


class ProjectRegistered(DomainEvent, frozen=True):
    """An offset project, pooled into `instrument`; `buffer_bps` of each issuance goes to BUFFER."""

    project: str
    owner: str
    instrument: str
    standard: str  # CCER, VCS, GS ...
    methodology: str
    country: str
    project_type: str
    name: str = ""
    buffer_bps: int = 1000
    # Added with the integrity rules (docs/registry.md); the defaults keep older entries decoding.
    start_date: str = ""
    crediting_start: str = ""
    crediting_end: str = ""
    admin_code: str = ""
    lat_e6: int = 0  # coordinates in microdegrees
    lon_e6: int = 0
    origin_registry: str = ""
    origin_id: str = ""
    methodology_version: str = ""  # from the methodology table, as it stood at registration
    sector: str = ""
    validator: str = ""
    reduction_cutoff: str = ""  # the programme's, as the table said at registration ("" = none)
    status: ProjectStatus = ProjectStatus.REGISTERED
    duplicate_of: tuple[str, ...] = ()  # the projects whose location or origin id it matches


class VerificationSubmitted(DomainEvent, frozen=True):
    """A verifier's signed report for one monitoring period (ISO dates, inclusive)."""

    participant: str  # the verifier
    client_order_id: str
    project: str
    vintage: int
    period_start: str
    period_end: str
    tonnes: int
    report_hash: str  # sha256 of the verification report document
    signature: str = ""  # hex Ed25519 of shared/attestation.py report_message, by the verifier's key


class VerificationAccepted(DomainEvent, frozen=True):
    report_id: str  # VR-<seq of the submission>
    verifier: str
    client_order_id: str
    project: str
    owner: str
    instrument: str
    vintage: int
    period_start: str
    period_end: str
    tonnes: int
    report_hash: str


class IssuanceRequested(DomainEvent, frozen=True):
    """The operator asks for `tonnes` to be issued against an accepted report."""

    participant: str  # the operator
    client_order_id: str
    report_id: str
    tonnes: int


class RegistryRejected(DomainEvent, frozen=True):
    """A registry request refused by the registry core; `action` names the request."""

    participant: str
    client_order_id: str
    action: str
    reason: Reason
    text: str


class EligibilityChanged(DomainEvent, frozen=True):
    """An instrument's pool rules changed (e.g. a CORSIA-style vintage cut-off)."""

    instrument: str
    eligible_standards: tuple[str, ...] = ()
    min_vintage: int = 0
    max_vintage: int = 0


# ---------------------------------------------------------------- retirement and cancellation


class RetirementRequested(DomainEvent, frozen=True):
    """Retire (for a beneficiary) or cancel (operator) `quantity` t of a holding; kind retire|cancel."""

    participant: str  # the holder
    client_order_id: str
    instrument: str
    quantity: int
    beneficiary: str
    reason: str
    kind: RetirementKind = RetirementKind.RETIRE
    purpose: str = ""  # shared/domain/retirement.py; "" before retirements declared one
    identifier: str = ""  # the retiree's own reference, printed on the certificate
    selection: BlockSelection | None = None  # None: settlement's order


class RetirementApproved(DomainEvent, frozen=True):
    """Verification froze `quantity` t for the retirement; settlement moves the serials next."""

    participant: str
    client_order_id: str
    instrument: str
    quantity: int
    beneficiary: str
    reason: str
    kind: RetirementKind
    request_seq: int
    purpose: str = ""
    identifier: str = ""
    selection: BlockSelection | None = None
    sell_claim: int = 0  # tonnes of the holding frozen for sells when approved: selections avoid them


class RetirementRejected(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    instrument: str
    quantity: int
    kind: RetirementKind
    reason: Reason
    text: str
    request_seq: int = 0  # set when settlement refuses an approved selection (the freeze is released)


class CreditsRetired(DomainEvent, frozen=True):
    """Serials that left the market for good; the certificate is this entry (its seq and hash)."""

    certificate_id: str  # RC-<seq of the approval>
    participant: str
    beneficiary: str
    reason: str
    instrument: str
    serials: tuple[SerialRange, ...]
    tonnes: int
    kind: RetirementKind
    client_order_id: str
    request_seq: int
    purpose: str = ""
    identifier: str = ""
    retired_ns: int = 0  # the approval's log time: the retirement date on the certificate


# ---------------------------------------------------------------- product footprints and claims


class ProductRegistered(DomainEvent, frozen=True):
    participant: str  # the maker
    client_order_id: str
    product: str
    model: str
    functional_unit: str  # e.g. "one drone over a 3-year life"
    boundary: str  # cradle-to-gate | cradle-to-grave
    category: str = ""


class ActivityRecorded(DomainEvent, frozen=True):
    """Activity data of one life-cycle stage with the factor it was multiplied by, as recorded.

    The factor and the result are in the event, so replay never depends on today's factor table.
    """

    participant: str
    client_order_id: str
    product: str
    stage: str
    factor_key: str
    factor_table: str  # version of the table, e.g. "v1"
    amount: str  # decimal string, in the factor's unit per functional unit
    unit: str
    factor: str  # kg CO2e per unit, decimal string
    grams: int  # amount x factor, in g CO2e per functional unit (half-up)


class LabelRequested(DomainEvent, frozen=True):
    participant: str  # the verifier
    client_order_id: str
    product: str


class StageFootprint(msgspec.Struct, frozen=True, array_like=True):
    stage: str
    grams: int
    included: bool  # False for use and end of life under a cradle-to-gate boundary


class StageCutOff(msgspec.Struct, frozen=True, array_like=True):
    stage: str
    justification: str


class LabelIssued(DomainEvent, frozen=True):
    label_id: str  # LB-<seq of the request>
    product: str
    owner: str
    verifier: str
    client_order_id: str
    model: str
    functional_unit: str
    boundary: str
    stages: tuple[StageFootprint, ...]
    total_grams: int  # g CO2e per functional unit within the boundary
    factor_tables: tuple[str, ...]
    issued_ns: int
    cut_offs: tuple[StageCutOff, ...] = ()  # stages inside the boundary covered by a declared cut-off
    valid_until: str = ""  # ISO date
    supersedes: str = ""  # the product's previous label
    superseded_claims: tuple[str, ...] = ()  # its claims, which no longer stand
    factor_table_sha256: str = ""  # of the one table the label uses


class NeutralityClaimSubmitted(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    product: str
    units: int
    certificates: tuple[str, ...]
    label_id: str = ""  # the label the claim is about: it must be the product's current one
    period_start: str = ""  # ISO dates, inclusive: when the units were shipped
    period_end: str = ""
    units_shipped: int = 0  # in the period; "carbon neutral" only when all of them are covered


class NeutralityClaimed(DomainEvent, frozen=True):
    """A carbon-neutral claim for `units` functional units, backed by retirement certificates."""

    claim_id: str  # NC-<seq of the submission>
    participant: str
    client_order_id: str
    product: str
    label_id: str
    units: int
    footprint_grams: int  # label total x units
    required_tonnes: int  # ceil(footprint_grams / 10^6)
    covered_tonnes: int
    certificates: tuple[str, ...]
    serials: tuple[str, ...]  # the certificates' serial ranges, as labels
    period_start: str = ""
    period_end: str = ""
    units_shipped: int = 0  # 0 on claims logged before it was declared: never shown as neutral
    standards: tuple[str, ...] = ()  # of the credits retired, e.g. ("CCER",)


RegistryEvent = (
    ProjectRegistered
    | VerificationSubmitted
    | VerificationAccepted
    | IssuanceRequested
    | RegistryRejected
    | EligibilityChanged
    | RetirementRequested
    | RetirementApproved
    | RetirementRejected
    | CreditsRetired
    | ProductRegistered
    | ActivityRecorded
    | LabelRequested
    | LabelIssued
    | NeutralityClaimSubmitted
    | NeutralityClaimed
)
