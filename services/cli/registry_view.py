"""The registry read model: the state of every serial, and tonne totals per project and vintage.

A serial is in exactly one state: held by one account, frozen (by an open order or a retirement in
flight), retired, cancelled, or buffer (held by the BUFFER account). Settlement knows which account
holds which blocks and which serials left the market; verification knows how many tonnes of a holding
are frozen. Frozen serials are the holding's oldest, because those are the ones delivered next (FIFO).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from services.cli.readmodel import ExchangeState
from shared.domain.certificates import Origin
from shared.domain.ledger import BUFFER_ACCOUNT, SerialRange

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

    @property
    def accounted(self) -> int:
        return self.held + self.frozen + self.retired + self.cancelled + self.buffer


@dataclass(frozen=True)
class SerialState:
    instrument: str
    start: int
    end: int
    state: str  # held | frozen | retired | cancelled | buffer
    account: str  # the holder; the certificate id for retired and cancelled serials


def serial_states(state: ExchangeState) -> list[SerialState]:
    """Every issued serial with its one state; AssertionError if a serial has two or none."""
    out: list[SerialState] = []
    for account in state.settlement.balances():
        _, _, credits = state.verification.account(account)
        for instrument, blocks in state.settlement.holdings(account).items():
            frozen = credits.get(instrument, (0, 0))[1]
            for block in blocks:
                take = min(frozen, block.tonnes)
                frozen -= take
                if take:
                    out.append(
                        SerialState(instrument, block.start, block.start + take - 1, "frozen", account)
                    )
                if take < block.tonnes:
                    kind = "buffer" if account == BUFFER_ACCOUNT else "held"
                    out.append(SerialState(instrument, block.start + take, block.end, kind, account))
    for cert in state.registry.certificates():
        kind = "cancelled" if cert.retired.kind == "cancel" else "retired"
        out.extend(
            SerialState(cert.retired.instrument, r.start, r.end, kind, cert.retired.certificate_id)
            for r in cert.retired.serials
        )
    _check_partition(state, out)
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
        if piece.state in ("retired", "cancelled"):
            continue  # counted by the registry from the certificates
        for part, origin in origins.split(piece.instrument, SerialRange(piece.start, piece.end)):
            r = row(piece.instrument, origin)
            setattr(r, piece.state, getattr(r, piece.state) + part.tonnes)
    return [rows[k] for k in sorted(rows)]
