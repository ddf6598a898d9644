"""The registry read model: the state of every serial, and tonne totals per project and vintage.

A serial is in exactly one state: held by one account, frozen (by an open order or a retirement in
flight), retired, cancelled, or buffer (held by the BUFFER account). Settlement knows which account
holds which blocks and which serials left the market; verification knows how many tonnes of a holding
are frozen, and how many of those back retirements in flight rather than sells. Frozen serials are the
ones that would leave first if every claim settled now, sells first: the oldest eligible serials for
sells (then the oldest ineligible, for sells resting since a window tightened), then for retirements the
oldest ineligible serials left, then the oldest eligible ones; settlement picks serials the same way.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from services.cli.readmodel import ExchangeState
from services.settlement.blocks import Blocks, plan_preferring, remove_pieces
from shared.domain.certificates import Origin
from shared.domain.eligibility import split_eligibility
from shared.domain.ledger import BUFFER_ACCOUNT, SerialRange
from shared.domain.registry import RetirementKind, UnitState

__all__ = ["RegistryRow", "SerialState", "registry_rows", "serial_states"]


@dataclass
class RegistryRow:
    instrument: str
    project: str
    vintage: int
    issued: int = 0
    held: int = 0
    frozen: int = 0
    retired: int = 0
    cancelled: int = 0
    buffer: int = 0
    surrendered: int = 0  # against compliance obligations (by scheme: services/cli/compliance_view.py)

    @property
    def accounted(self) -> int:
        return self.held + self.frozen + self.retired + self.cancelled + self.buffer + self.surrendered

    def add(self, state: UnitState, tonnes: int) -> None:
        match state:
            case UnitState.HELD:
                self.held += tonnes
            case UnitState.FROZEN:
                self.frozen += tonnes
            case UnitState.RETIRED:
                self.retired += tonnes
            case UnitState.CANCELLED:
                self.cancelled += tonnes
            case UnitState.BUFFER:
                self.buffer += tonnes
            case UnitState.SURRENDERED:
                self.surrendered += tonnes


@dataclass(frozen=True)
class SerialState:
    instrument: str
    start: int
    end: int
    state: UnitState
    account: str  # the holder; the certificate id for retired and cancelled serials


def serial_states(state: ExchangeState) -> list[SerialState]:
    """Every issued serial with its one state; AssertionError if a serial has two or none."""
    out: list[SerialState] = []
    retiring: dict[tuple[str, str], int] = {}
    for r in state.verification.state.retiring:
        retiring[(r.participant, r.instrument)] = retiring.get((r.participant, r.instrument), 0) + r.qty
    for account in state.settlement.balances():
        _, _, credits = state.verification.account(account)
        for instrument, held in state.settlement.holdings(account).items():
            frozen = credits.get(instrument, (0, 0))[1]
            for_retirement = retiring.get((account, instrument), 0)
            blocks: Blocks = deque(held)
            for pieces in _frozen(state, instrument, blocks, frozen - for_retirement, for_retirement):
                out.extend(SerialState(instrument, p.start, p.end, UnitState.FROZEN, account) for p in pieces)
            kind = UnitState.BUFFER if account == BUFFER_ACCOUNT else UnitState.HELD
            out.extend(SerialState(instrument, b.start, b.end, kind, account) for b in blocks)
    for cert in state.registry.certificates():
        kind = UnitState.CANCELLED if cert.retired.kind is RetirementKind.CANCEL else UnitState.RETIRED
        out.extend(
            SerialState(cert.retired.instrument, r.start, r.end, kind, cert.retired.certificate_id)
            for r in cert.retired.serials
        )
    for spent in state.verification.state.compliance.certificates.values():
        out.extend(
            SerialState(spent.instrument, r.start, r.end, UnitState.SURRENDERED, spent.certificate_id)
            for r in spent.serials
        )
    _check_partition(state, out)
    return out


def _frozen(
    state: ExchangeState, instrument: str, blocks: Blocks, for_sells: int, for_retirement: int
) -> list[tuple[SerialRange, ...]]:
    """The serials frozen for sells, then for retirements, taken out of `blocks` (which keeps the rest)."""
    registry = state.registry.state
    inst, origins = registry.instruments.get(instrument), registry.origins.blocks.get(instrument, [])
    out: list[tuple[SerialRange, ...]] = []
    for quantity, prefer_eligible in ((for_sells, True), (for_retirement, False)):
        if quantity <= 0:
            continue
        pieces = plan_preferring(
            blocks, quantity, lambda b: split_eligibility(inst, origins, b), prefer_eligible
        )
        if pieces is None or not remove_pieces(blocks, pieces):
            raise AssertionError(f"{quantity} t of {instrument} frozen but not held")
        out.append(pieces)
    return out


def _check_partition(state: ExchangeState, pieces: list[SerialState]) -> None:
    by_instrument: dict[str, list[tuple[int, int]]] = {}
    for p in pieces:
        by_instrument.setdefault(p.instrument, []).append((p.start, p.end))
    issued = state.registry.state.origins.blocks
    for instrument in sorted(by_instrument.keys() | issued.keys()):
        ranges = sorted(by_instrument.get(instrument, []))
        for (_, end), (start, _) in itertools.pairwise(ranges):
            if start <= end:
                raise AssertionError(f"serial {start} of {instrument} is in two states or accounts")
        if _merge(ranges) != _merge([(o.start, o.end) for o in issued.get(instrument, [])]):
            raise AssertionError(f"the serials accounted for of {instrument} are not the serials issued")


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def registry_rows(state: ExchangeState) -> list[RegistryRow]:
    """Tonnes per (instrument, project, vintage): issued, and where each of them is now."""
    origins = state.registry.state.origins
    rows: dict[tuple[str, str, int], RegistryRow] = {}

    def row(instrument: str, origin: Origin | None) -> RegistryRow:
        key = (instrument, origin.project, origin.vintage) if origin else (instrument, "", 0)
        found = rows.get(key)
        if found is None:
            found = rows[key] = RegistryRow(*key)
        return found

    for (instrument, project, vintage), totals in state.registry.totals().items():
        r = row(instrument, Origin(0, 0, "", project, vintage))
        r.issued, r.retired, r.cancelled = totals.issued, totals.retired, totals.cancelled
    for piece in serial_states(state):
        if piece.state in (UnitState.RETIRED, UnitState.CANCELLED):
            continue  # counted by the registry from the certificates
        for part, origin in origins.split(piece.instrument, SerialRange(piece.start, piece.end)):
            r = row(piece.instrument, origin)
            r.add(piece.state, part.tonnes)
    return [rows[k] for k in sorted(rows)]
