"""Registry events: projects, verified issuance, retirement, product footprints, labels and claims."""

from __future__ import annotations

import msgspec

from shared.domain.ledger import SerialRange
from shared.domain.reasons import Reason

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
    "RetirementRejected",
    "RetirementRequested",
    "StageFootprint",
    "VerificationAccepted",
    "VerificationSubmitted",
]

# Life-cycle stages in the order of ISO 14067 / the GHG Protocol Product Standard.
STAGES = ("materials", "production", "distribution", "use", "end_of_life")
CRADLE_TO_GATE_STAGES = ("materials", "production")
BOUNDARIES = ("cradle-to-gate", "cradle-to-grave")


class _Event(msgspec.Struct, frozen=True, tag=True, tag_field="type", kw_only=True):
    """Base of every registry event; the tag is the class name and never changes once published."""


# ---------------------------------------------------------------- projects and verified issuance


class ProjectRegistered(_Event, frozen=True):
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


class VerificationSubmitted(_Event, frozen=True):
    """A verifier's signed report for one monitoring period (ISO dates, inclusive)."""

    participant: str  # the verifier
    client_order_id: str
    project: str
    vintage: int
    period_start: str
    period_end: str
    tonnes: int
    report_hash: str  # sha256 of the verification report document


class VerificationAccepted(_Event, frozen=True):
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


class IssuanceRequested(_Event, frozen=True):
    """The operator asks for `tonnes` to be issued against an accepted report."""

    participant: str  # the operator
    client_order_id: str
    report_id: str
    tonnes: int


class RegistryRejected(_Event, frozen=True):
    """A registry request refused by the registry core; `action` names the request."""

    participant: str
    client_order_id: str
    action: str
    reason: Reason
    text: str


class EligibilityChanged(_Event, frozen=True):
    """An instrument's pool rules changed (e.g. a CORSIA-style vintage cut-off)."""

    instrument: str
    eligible_standards: tuple[str, ...] = ()
    min_vintage: int = 0
    max_vintage: int = 0


# ---------------------------------------------------------------- retirement and cancellation


class RetirementRequested(_Event, frozen=True):
    """Retire (for a beneficiary) or cancel (operator) `quantity` t of a holding; kind retire|cancel."""

    participant: str  # the holder
    client_order_id: str
    instrument: str
    quantity: int
    beneficiary: str
    reason: str
    kind: str = "retire"


class RetirementApproved(_Event, frozen=True):
    """Verification froze `quantity` t for the retirement; settlement moves the serials next."""

    participant: str
    client_order_id: str
    instrument: str
    quantity: int
    beneficiary: str
    reason: str
    kind: str
    request_seq: int


class RetirementRejected(_Event, frozen=True):
    participant: str
    client_order_id: str
    instrument: str
    quantity: int
    kind: str
    reason: Reason
    text: str


class CreditsRetired(_Event, frozen=True):
    """Serials that left the market for good; the certificate is this entry (its seq and hash)."""

    certificate_id: str  # RC-<seq of the approval>
    participant: str
    beneficiary: str
    reason: str
    instrument: str
    serials: tuple[SerialRange, ...]
    tonnes: int
    kind: str
    client_order_id: str
    request_seq: int


# ---------------------------------------------------------------- product footprints and claims


class ProductRegistered(_Event, frozen=True):
    participant: str  # the maker
    client_order_id: str
    product: str
    model: str
    functional_unit: str  # e.g. "one drone over a 3-year life"
    boundary: str  # cradle-to-gate | cradle-to-grave
    category: str = ""


class ActivityRecorded(_Event, frozen=True):
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


class LabelRequested(_Event, frozen=True):
    participant: str  # the verifier
    client_order_id: str
    product: str


class StageFootprint(msgspec.Struct, frozen=True, array_like=True):
    stage: str
    grams: int
    included: bool  # False for use and end of life under a cradle-to-gate boundary


class LabelIssued(_Event, frozen=True):
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


class NeutralityClaimSubmitted(_Event, frozen=True):
    participant: str
    client_order_id: str
    product: str
    units: int
    certificates: tuple[str, ...]


class NeutralityClaimed(_Event, frozen=True):
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
