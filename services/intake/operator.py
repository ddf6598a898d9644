"""Operator actions: signed commands that become operator facts in the log."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.domain.codec import Event
from shared.domain.events import InstrumentListed
from shared.domain.instruments import Instrument
from shared.domain.ledger import (
    CashDeposited,
    CreditsIssued,
    HaltRequested,
    ParticipantRegistered,
    ResumeRequested,
    SerialRange,
    TradingDayClosed,
    WithdrawalRequested,
)
from shared.domain.values import price_to_fen

__all__ = ["ACTIONS", "operator_event"]


class _Participant(msgspec.Struct, forbid_unknown_fields=True):
    participant: str
    name: str
    secret: str
    roles: tuple[str, ...] = ("trader",)
    instruments: tuple[str, ...] = ()


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
        participant=p.participant, name=p.name, secret=p.secret, roles=p.roles, instruments=p.instruments
    )


def _deposit(args: dict[str, Any]) -> Event:
    a = msgspec.convert(args, _Amount)
    return CashDeposited(participant=a.participant, amount=_positive_fen(a.amount))


def _withdraw(args: dict[str, Any]) -> Event:
    a = msgspec.convert(args, _Amount)
    return WithdrawalRequested(participant=a.participant, amount=_positive_fen(a.amount))


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


ACTIONS = {
    "register_participant": _register,
    "deposit_cash": _deposit,
    "withdraw_cash": _withdraw,
    "issue_credits": _issue,
    "list_instrument": _list,
    "halt_instrument": _halt,
    "resume_instrument": _resume,
    "close_day": _close_day,
}


def operator_event(action: str, args: dict[str, Any]) -> Event:
    """The fact an operator action records; raises ValueError/msgspec errors on bad arguments."""
    build = ACTIONS.get(action)
    if build is None:
        raise ValueError(f"unknown operator action {action!r}")
    return build(args)
