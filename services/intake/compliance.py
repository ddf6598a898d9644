"""Compliance commands at the edge: the operator's schemes, allocations and year closes, a verifier's
emissions figure, an entity's surrender. Pure: what intake knows is passed in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from services.intake.fields import MONTH_DAY, REGISTRY_ID, SHA256_HEX, iso_date
from shared.domain.base import Refused
from shared.domain.codec import Event
from shared.domain.compliance import (
    AllowancesAllocated,
    CapBasis,
    ComplianceCloseRequested,
    EmissionsSubmitted,
    PenaltyKind,
    SchemeDefined,
    SurrenderRequested,
)
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.ledger import OPERATOR, CreditsIssued, SerialRange
from shared.domain.reasons import Reason
from shared.protocol import MAX_QUANTITY, OperatorMessage, RegistryMsg, SurrenderMsg

__all__ = ["COMPLIANCE_OPERATOR_ACTIONS", "COMPLIANCE_REGISTRY_ACTIONS", "compliance_events"]

_YEARS = range(2000, 2101)
COMPLIANCE_OPERATOR_ACTIONS = frozenset({"define_scheme", "allocate_allowances", "close_compliance_year"})
COMPLIANCE_REGISTRY_ACTIONS = frozenset({"record_emissions"})


class _Scheme(msgspec.Struct, forbid_unknown_fields=True):
    scheme: str
    name: str
    allowance_instruments: tuple[str, ...]
    offset_instruments: tuple[str, ...] = ()
    offset_standards: tuple[str, ...] = ()
    offset_cap_bps: int = 0
    cap_basis: CapBasis = CapBasis.EMISSIONS
    offset_min_vintage: int = 0
    offset_max_vintage: int = 0
    projects_started_from: str = ""
    exclude_own_projects: bool = True
    deadline: str = "12-31"
    penalty_kind: PenaltyKind = PenaltyKind.PRICE_MULTIPLE
    penalty_fixed_fen: int = 0
    penalty_multiple_bps: int = 0
    deduct_shortfall: bool = True


class _Allocation(msgspec.Struct, forbid_unknown_fields=True):
    participant: str
    scheme: str
    year: int
    instrument: str
    serial_start: int
    serial_end: int


class _Close(msgspec.Struct, forbid_unknown_fields=True):
    scheme: str
    year: int


class _Emissions(msgspec.Struct, forbid_unknown_fields=True):
    entity: str
    scheme: str
    year: int
    tonnes: int
    report_hash: str


def _year(year: int) -> int:
    if year not in _YEARS:
        raise ValueError(f"year must be in {_YEARS.start}..{_YEARS.stop - 1}")
    return year


def _scheme(args: dict[str, Any], instruments: Mapping[str, Instrument], schemes: set[str]) -> Event:
    s = msgspec.convert(args, _Scheme)
    if not REGISTRY_ID.fullmatch(s.scheme):
        raise ValueError("scheme must be 1-64 of [A-Za-z0-9_.]")
    if s.scheme in schemes:
        raise Refused(Reason.DUPLICATE_SCHEME, f"scheme {s.scheme!r} is already defined")
    for symbols, kind in ((s.allowance_instruments, InstrumentKind.ALLOWANCE),
                          (s.offset_instruments, InstrumentKind.OFFSET)):  # fmt: skip
        for symbol in symbols:
            inst = instruments.get(symbol)
            if inst is None:
                raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {symbol!r}")
            if inst.kind is not kind:
                raise Refused(Reason.NOT_PERMITTED, f"{symbol} is not an {kind} instrument")
    if not s.allowance_instruments or not 0 <= s.offset_cap_bps <= 10_000:
        raise ValueError("a scheme needs an allowance instrument and an offset cap of 0..10000 bps")
    if min(s.penalty_fixed_fen, s.penalty_multiple_bps, s.offset_min_vintage, s.offset_max_vintage) < 0:
        raise ValueError("penalties and vintages must not be negative")
    if not MONTH_DAY.fullmatch(s.deadline):
        raise ValueError(f"deadline {s.deadline!r} is not MM-DD")
    iso_date(f"2001-{s.deadline}", "deadline")  # a real MM-DD (not 02-29)
    if s.projects_started_from:
        iso_date(s.projects_started_from, "projects_started_from")
    return SchemeDefined(**msgspec.structs.asdict(s))


def _allocation(args: dict[str, Any], schemes: Mapping[str, SchemeDefined]) -> list[Event]:
    a = msgspec.convert(args, _Allocation)
    scheme = schemes.get(a.scheme)
    if scheme is None:
        raise Refused(Reason.UNKNOWN_SCHEME, f"no scheme {a.scheme!r}")
    if a.instrument not in scheme.allowance_instruments:
        raise Refused(Reason.NOT_ELIGIBLE_FOR_SCHEME, f"{a.instrument} is not an allowance of {a.scheme}")
    if not 0 < a.serial_start <= a.serial_end:
        raise ValueError("serial_start must be positive and not after serial_end")
    serials = SerialRange(a.serial_start, a.serial_end)
    year = _year(a.year)
    return [
        AllowancesAllocated(participant=a.participant, scheme=a.scheme, year=year, instrument=a.instrument,
                            serials=serials),
        # The block itself, so every core sees the tonnes; its vintage is the compliance year.
        CreditsIssued(participant=a.participant, instrument=a.instrument, serials=serials, vintage=year),
    ]  # fmt: skip


def compliance_events(
    msg: OperatorMessage | RegistryMsg | SurrenderMsg,
    instruments: Mapping[str, Instrument],
    schemes: Mapping[str, SchemeDefined],
) -> list[Event]:
    """The events a compliance command records. Raises Refused for domain refusals and ValueError or
    msgspec errors for malformed arguments; the CreditsIssued of an allocation is for the caller to check
    like any issuance (participant known, serials free)."""
    if isinstance(msg, SurrenderMsg):
        if msg.instrument not in instruments:
            raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {msg.instrument!r}")
        if not 0 < msg.quantity <= MAX_QUANTITY:
            raise Refused(Reason.INVALID_QUANTITY, f"quantity {msg.quantity} must be in 1..{MAX_QUANTITY}")
        return [SurrenderRequested(
            participant=msg.participant, client_order_id=msg.client_order_id, scheme=msg.scheme,
            year=_year(msg.year), instrument=msg.instrument, quantity=msg.quantity,
        )]  # fmt: skip
    if isinstance(msg, RegistryMsg):  # record_emissions, a verifier's; verification checks the role
        e = msgspec.convert(msg.args, _Emissions)
        if not 0 <= e.tonnes <= MAX_QUANTITY:
            raise ValueError(f"tonnes must be in 0..{MAX_QUANTITY}")
        if not SHA256_HEX.fullmatch(e.report_hash):
            raise ValueError("report_hash must be the lower-case hex sha256 of the verification report")
        return [EmissionsSubmitted(
            participant=msg.participant, client_order_id=msg.client_order_id, entity=e.entity,
            scheme=e.scheme, year=_year(e.year), tonnes=e.tonnes, report_hash=e.report_hash,
        )]  # fmt: skip
    if msg.action == "define_scheme":
        return [_scheme(msg.args, instruments, set(schemes))]
    if msg.action == "allocate_allowances":
        return _allocation(msg.args, schemes)
    c = msgspec.convert(msg.args, _Close)
    return [ComplianceCloseRequested(participant=OPERATOR, client_order_id=msg.client_order_id,
                                     scheme=c.scheme, year=_year(c.year))]  # fmt: skip
