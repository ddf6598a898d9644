"""Compliance surrender: schemes as data, allocations, verified emissions, surrenders and year closes.

The rules a scheme states (which instruments count, the offset cap, which offset serials qualify, the
deadline and the penalty) are fields of its `SchemeDefined` event, so every decision is a fold of the log.
The pure helpers here are shared by the cores that decide (verification) and move serials (settlement).
"""

from __future__ import annotations

import datetime
import enum
from typing import Any

import msgspec

from shared.domain.base import DomainEvent
from shared.domain.certificates import Origin, SerialOrigins, certificate_hash, serial_label
from shared.domain.ledger import SerialRange
from shared.domain.reasons import Reason

__all__ = [
    "AllowancesAllocated",
    "CapBasis",
    "ComplianceCloseRequested",
    "ComplianceEvent",
    "ComplianceRejected",
    "ComplianceShortfall",
    "ComplianceYearClosed",
    "CreditsSurrendered",
    "EmissionsSubmitted",
    "EmissionsVerified",
    "PenaltyKind",
    "SchemeDefined",
    "SerialRule",
    "SurrenderApproved",
    "SurrenderRejected",
    "SurrenderRequested",
    "deadline_ns",
    "offset_cap",
    "penalty",
    "surrender_certificate",
]

BPS = 10_000
_CST = datetime.timezone(datetime.timedelta(hours=8))  # China Standard Time: where the deadlines fall


class CapBasis(enum.StrEnum):
    """What the offset cap is a share of: the year's verified emissions (Shenzhen), or everything due
    for the year, deductions carried in included (the national ETS: allowances due)."""

    EMISSIONS = "emissions"
    OBLIGATION = "obligation"


class PenaltyKind(enum.StrEnum):
    """FIXED: a fixed amount when anything is short; PRICE_MULTIPLE: `multiple_bps` x the shortfall
    valued at the scheme's allowance reference price (the penalty basis)."""

    FIXED = "fixed"
    PRICE_MULTIPLE = "price_multiple"


class SchemeDefined(DomainEvent, frozen=True):
    """An emissions trading scheme's compliance rules, as the operator recorded them."""

    scheme: str
    name: str
    allowance_instruments: tuple[str, ...]
    offset_instruments: tuple[str, ...] = ()
    offset_standards: tuple[str, ...] = ()  # registry standards an offset serial must carry; empty = any
    offset_cap_bps: int = 0  # offsets may cover at most this share of the basis (floor)
    cap_basis: CapBasis = CapBasis.EMISSIONS
    offset_min_vintage: int = 0  # reduction years accepted (0 = open)
    offset_max_vintage: int = 0
    projects_started_from: str = ""  # ISO date: a project's first verified period must start on/after it
    exclude_own_projects: bool = True  # no offsets from the entity's own (covered) projects
    deadline: str = "12-31"  # MM-DD of the year after the compliance year (CST)
    penalty_kind: PenaltyKind = PenaltyKind.PRICE_MULTIPLE
    penalty_fixed_fen: int = 0
    penalty_multiple_bps: int = 0
    deduct_shortfall: bool = True  # the shortfall is added to the next year's obligation


class AllowancesAllocated(DomainEvent, frozen=True):
    """Allowances of `year` allocated to a covered entity; intake logs the `CreditsIssued` of the block
    right after it (vintage = the compliance year), so every core sees the tonnes as a new block."""

    participant: str
    scheme: str
    year: int
    instrument: str
    serials: SerialRange


class EmissionsSubmitted(DomainEvent, frozen=True):
    """A verifier's figure of an entity's emissions in one compliance year (integer t CO2e)."""

    participant: str  # the verifier
    client_order_id: str
    entity: str
    scheme: str
    year: int
    tonnes: int
    report_hash: str


class EmissionsVerified(DomainEvent, frozen=True):
    """Accepted: the entity owes `tonnes` (plus any deduction carried in) for the year."""

    verifier: str
    client_order_id: str
    entity: str
    scheme: str
    year: int
    tonnes: int
    report_hash: str


class ComplianceRejected(DomainEvent, frozen=True):
    """A compliance request (record_emissions, close_compliance_year) refused; `action` names it."""

    participant: str
    client_order_id: str
    action: str
    reason: Reason
    text: str


class SurrenderRequested(DomainEvent, frozen=True):
    participant: str  # the covered entity
    client_order_id: str
    scheme: str
    year: int
    instrument: str
    quantity: int


class SerialRule(msgspec.Struct, frozen=True, array_like=True):
    """Which serials of the holding a surrender may take, fixed by verification when it approves, so
    settlement picks serials without knowing schemes or projects."""

    offset: bool
    standards: tuple[str, ...] = ()
    min_vintage: int = 0
    max_vintage: int = 0
    excluded_projects: tuple[str, ...] = ()
    max_year: int = 0  # allowances: allocated for this year or earlier (banking yes, borrowing no)
    default_year: int = 0  # the year of allowance blocks not allocated for a year (the listing's vintage)

    def allows(self, origin: Origin | None) -> bool:
        if not self.offset:
            year = origin.vintage if origin is not None and origin.vintage else self.default_year
            return not self.max_year or year <= self.max_year
        if origin is None or not origin.project:
            return False
        return (
            (not self.standards or origin.standard in self.standards)
            and (not self.min_vintage or origin.vintage >= self.min_vintage)
            and (not self.max_vintage or origin.vintage <= self.max_vintage)
            and origin.project not in self.excluded_projects
        )


class SurrenderApproved(DomainEvent, frozen=True):
    """Verification froze `quantity` t for the surrender; settlement moves the serials next."""

    participant: str
    client_order_id: str
    scheme: str
    year: int
    instrument: str
    quantity: int
    rule: SerialRule
    request_seq: int


class SurrenderRejected(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    scheme: str
    year: int
    instrument: str
    quantity: int
    reason: Reason
    text: str


class CreditsSurrendered(DomainEvent, frozen=True):
    """Serials surrendered against a compliance obligation: out of the market for good (state
    `surrendered`); the certificate is this entry (`SC-<seq of the approval>`)."""

    certificate_id: str
    participant: str
    scheme: str
    year: int
    instrument: str
    serials: tuple[SerialRange, ...]
    tonnes: int
    offset: bool
    client_order_id: str
    request_seq: int


class ComplianceCloseRequested(DomainEvent, frozen=True):
    participant: str  # the operator
    client_order_id: str
    scheme: str
    year: int


class ComplianceShortfall(DomainEvent, frozen=True):
    """One entity's account of a closed year: what it owed, surrendered, and what it is short."""

    participant: str
    scheme: str
    year: int
    emissions: int
    carried_in: int  # deducted from this year for last year's shortfall
    obligation: int  # emissions + carried_in
    allowances: int  # surrendered
    offsets: int
    shortfall: int
    penalty_basis_fen: int  # shortfall x the allowance reference price
    penalty_fen: int
    deduction: int  # carried to next year's obligation
    client_order_id: str


class ComplianceYearClosed(DomainEvent, frozen=True):
    scheme: str
    year: int
    entities: int
    shortfall: int  # tonnes, all entities
    client_order_id: str


def offset_cap(basis: int, cap_bps: int) -> int:
    """Tonnes of offsets a basis allows: floor(basis x bps / 10000), so the share is never exceeded."""
    return basis * cap_bps // BPS


def penalty(scheme: SchemeDefined, shortfall: int, price_fen: int) -> tuple[int, int]:
    """(penalty basis, penalty) in fen for a shortfall under the scheme's rule."""
    basis = shortfall * price_fen
    if shortfall <= 0:
        return 0, 0
    if scheme.penalty_kind is PenaltyKind.FIXED:
        return basis, scheme.penalty_fixed_fen
    return basis, basis * scheme.penalty_multiple_bps // BPS


def deadline_ns(scheme: SchemeDefined, year: int) -> int:
    """The first nanosecond after the year's surrender deadline (end of MM-DD of year + 1, CST)."""
    month, day = (int(part) for part in scheme.deadline.split("-"))
    last = datetime.datetime(year + 1, month, day, tzinfo=_CST) + datetime.timedelta(days=1)
    return int(last.timestamp()) * 1_000_000_000


def surrender_certificate(
    ev: CreditsSurrendered, seq: int, entry_hash: bytes, origins: SerialOrigins
) -> dict[str, Any]:
    """The surrender certificate of a CreditsSurrendered entry, built and hashed like a retirement's
    (shared/domain/certificates.certificate): anyone holding the log can recompute it."""
    pieces = [
        {"label": serial_label(ev.instrument, origin, piece.start, piece.end), "start": piece.start,
         "end": piece.end, "tonnes": piece.tonnes, "project": origin.project if origin else "",
         "vintage": origin.vintage if origin else 0}
        for block in ev.serials
        for piece, origin in origins.split(ev.instrument, block)
    ]  # fmt: skip
    body: dict[str, Any] = {
        "id": ev.certificate_id, "kind": "surrender", "participant": ev.participant, "scheme": ev.scheme,
        "year": ev.year, "instrument": ev.instrument, "offset": ev.offset, "serials": pieces,
        "tonnes": ev.tonnes, "seq": seq, "entry_hash": entry_hash.hex(),
    }  # fmt: skip
    body["hash"] = certificate_hash(body)
    return body


ComplianceEvent = (
    SchemeDefined
    | AllowancesAllocated
    | EmissionsSubmitted
    | EmissionsVerified
    | ComplianceRejected
    | SurrenderRequested
    | SurrenderApproved
    | SurrenderRejected
    | CreditsSurrendered
    | ComplianceCloseRequested
    | ComplianceShortfall
    | ComplianceYearClosed
)
