"""Operator actions: signed commands that become operator facts in the log."""

from __future__ import annotations

from typing import Any

import msgspec

from services.intake.footprints import claim_rules_event, publish_event
from services.intake.integrity import INTEGRITY_ACTIONS
from shared.crypto import SealedSecret
from shared.domain.codec import Event
from shared.domain.events import InstrumentListed
from shared.domain.instruments import Instrument
from shared.domain.ledger import (
    OPERATOR,
    CashDeposited,
    CreditsIssued,
    HaltRequested,
    LimitsSet,
    ParticipantRegistered,
    ResumeRequested,
    SerialRange,
    TradingDayClosed,
    TransferRequested,
    WithdrawalRequested,
)
from shared.domain.registry import (
    EligibilityChanged,
    IssuanceRequested,
    RetirementKind,
    RetirementRequested,
)
from shared.domain.values import price_to_fen
from shared.protocol import MAX_QUANTITY

__all__ = ["ACTIONS", "operator_event", "transfer_event"]


class _Participant(msgspec.Struct, forbid_unknown_fields=True):
    participant: str
    name: str
    key: SealedSecret  # its signing key, sealed by the operator's provisioning under the KEK
    roles: tuple[str, ...] = ("trader",)
    instruments: tuple[str, ...] = ()


class _Limits(msgspec.Struct, forbid_unknown_fields=True):
    participant: str
    commands_per_s: int = 0
    burst: int = 0
    max_open_orders: int = 0


class _Amount(msgspec.Struct, forbid_unknown_fields=True):
    participant: str
    amount: str  # CNY decimal string


class _Issue(msgspec.Struct, forbid_unknown_fields=True):
    participant: str
    instrument: str
    serial_start: int
    serial_end: int


class _Listing(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    kind: str
    standard: str
    registry: str
    vintage: int
    reference_price: str
    project_type: str = ""
    tick_size: str = "0.01"
    lot_size: int = 1
    band_bps: int = 1000
    eligible_standards: tuple[str, ...] = ()
    min_vintage: int = 0
    max_vintage: int = 0


class _Symbol(msgspec.Struct, forbid_unknown_fields=True):
    instrument: str


def _positive_fen(text: str) -> int:
    fen = price_to_fen(text)
    if fen <= 0:
        raise ValueError(f"amount {text} must be positive")
    return fen


def _register(args: dict[str, Any]) -> Event:
    p = msgspec.convert(args, _Participant)
    return ParticipantRegistered(
        participant=p.participant, name=p.name, key=p.key, roles=p.roles, instruments=p.instruments
    )


def _limits(args: dict[str, Any]) -> Event:
    limits = msgspec.convert(args, _Limits)
    if not all(0 <= v <= 1_000_000 for v in (limits.commands_per_s, limits.burst, limits.max_open_orders)):
        raise ValueError("limits must be 0 (the default) .. 1000000")
    return LimitsSet(
        participant=limits.participant, commands_per_s=limits.commands_per_s, burst=limits.burst,
        max_open_orders=limits.max_open_orders,
    )  # fmt: skip


def _deposit(args: dict[str, Any]) -> Event:
    a = msgspec.convert(args, _Amount)
    return CashDeposited(participant=a.participant, amount=_positive_fen(a.amount))


def _withdraw(args: dict[str, Any]) -> Event:
    a = msgspec.convert(args, _Amount)
    return WithdrawalRequested(participant=a.participant, amount=_positive_fen(a.amount))


class _Transfer(msgspec.Struct, forbid_unknown_fields=True):
    participant: str
    amount: str  # CNY decimal string
    to_partition: int


def _transfer(args: dict[str, Any]) -> Event:
    t = msgspec.convert(args, _Transfer)
    return transfer_event(t.participant, t.amount, t.to_partition)


def transfer_event(participant: str, amount: str, to_partition: int) -> TransferRequested:
    """A participant's cash to another partition; intake checks the partition exists (core.py)."""
    return TransferRequested(participant=participant, amount=_positive_fen(amount), to_partition=to_partition)


def _issue(args: dict[str, Any]) -> Event:
    i = msgspec.convert(args, _Issue)
    if not 0 < i.serial_start <= i.serial_end:
        raise ValueError("serial_start must be positive and not after serial_end")
    return CreditsIssued(
        participant=i.participant, instrument=i.instrument, serials=SerialRange(i.serial_start, i.serial_end)
    )


def _list(args: dict[str, Any]) -> Event:
    spec = msgspec.convert(args, _Listing)
    instrument = msgspec.convert(
        {
            "symbol": spec.symbol,
            "kind": spec.kind,
            "standard": spec.standard,
            "registry": spec.registry,
            "vintage": spec.vintage,
            "project_type": spec.project_type,
            "tick_size": price_to_fen(spec.tick_size),
            "lot_size": spec.lot_size,
            "reference_price": _positive_fen(spec.reference_price),
            "band_bps": spec.band_bps,
            "eligible_standards": spec.eligible_standards,
            "min_vintage": spec.min_vintage,
            "max_vintage": spec.max_vintage,
        },
        Instrument,
    )
    if instrument.tick_size <= 0 or instrument.lot_size <= 0 or not 0 < instrument.band_bps <= 10_000:
        raise ValueError("tick, lot and band must be positive (band at most 100 %)")
    return InstrumentListed(instrument=instrument)


def _halt(args: dict[str, Any]) -> Event:
    return HaltRequested(instrument=msgspec.convert(args, _Symbol).instrument)


def _resume(args: dict[str, Any]) -> Event:
    return ResumeRequested(instrument=msgspec.convert(args, _Symbol).instrument)


def _close_day(args: dict[str, Any]) -> Event:
    return TradingDayClosed(instrument=msgspec.convert(args, _Symbol).instrument)


class _IssueVerified(msgspec.Struct, forbid_unknown_fields=True):
    report_id: str
    tonnes: int


class _Eligibility(msgspec.Struct, forbid_unknown_fields=True):
    instrument: str
    eligible_standards: tuple[str, ...] = ()
    min_vintage: int = 0
    max_vintage: int = 0


class _Cancel(msgspec.Struct, forbid_unknown_fields=True):
    participant: str
    instrument: str
    quantity: int
    reason: str


def _issue_verified(args: dict[str, Any]) -> Event:
    i = msgspec.convert(args, _IssueVerified)
    if not 0 < i.tonnes <= MAX_QUANTITY:
        raise ValueError(f"tonnes must be in 1..{MAX_QUANTITY}")
    # the client order id is the operator command's own, filled in by intake
    return IssuanceRequested(participant=OPERATOR, client_order_id="", report_id=i.report_id, tonnes=i.tonnes)


def _eligibility(args: dict[str, Any]) -> Event:
    e = msgspec.convert(args, _Eligibility)
    if e.min_vintage < 0 or e.max_vintage < 0 or (e.max_vintage and e.min_vintage > e.max_vintage):
        raise ValueError("vintage window must be 0 (open) or min <= max")
    return EligibilityChanged(
        instrument=e.instrument,
        eligible_standards=e.eligible_standards,
        min_vintage=e.min_vintage,
        max_vintage=e.max_vintage,
    )


def _cancel(args: dict[str, Any]) -> Event:
    c = msgspec.convert(args, _Cancel)
    if not 0 < c.quantity <= MAX_QUANTITY:
        raise ValueError(f"quantity must be in 1..{MAX_QUANTITY}")
    return RetirementRequested(
        participant=c.participant, client_order_id="", instrument=c.instrument, quantity=c.quantity,
        beneficiary="", reason=c.reason, kind=RetirementKind.CANCEL,
    )  # fmt: skip


ACTIONS = {
    "register_participant": _register,
    "deposit_cash": _deposit,
    "withdraw_cash": _withdraw,
    "transfer_cash": _transfer,
    "issue_credits": _issue,
    "issue_verified": _issue_verified,
    "set_eligibility": _eligibility,
    "cancel_credits": _cancel,
    "list_instrument": _list,
    "halt_instrument": _halt,
    "resume_instrument": _resume,
    "close_day": _close_day,
    "set_limits": _limits,
    **INTEGRITY_ACTIONS,  # register_project, review_project, accredit_verifier, report_reversal
    "publish_factor_table": publish_event,
    "set_claim_rules": claim_rules_event,
    # rotate_key is intake's own (it needs the time): see services/intake/core.py
}


def operator_event(action: str, args: dict[str, Any]) -> Event:
    """The fact an operator action records; raises ValueError/msgspec errors on bad arguments."""
    build = ACTIONS.get(action)
    if build is None:
        raise ValueError(f"unknown operator action {action!r}")
    return build(args)
