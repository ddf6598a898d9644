"""Verification's compliance state: schemes, each entity's account per scheme and year, the surrenders in
flight, and the tonnes each holding has by standard, project and vintage (what the offset rules read)."""

from __future__ import annotations

import bisect

import msgspec

from shared.domain.certificates import Origin, split_serials
from shared.domain.compliance import CreditsSurrendered, SchemeDefined
from shared.domain.integrity import VerifierAccredited
from shared.domain.ledger import SerialRange

__all__ = [
    "ComplianceAccount",
    "ComplianceState",
    "Piece",
    "ProjectFact",
    "Surrendering",
    "account_key",
    "move_pieces",
]


class ComplianceAccount(msgspec.Struct, array_like=True):
    """One entity under one scheme in one year; surrendered tonnes count from the approval on."""

    emissions: int = 0
    verified: bool = False
    carried_in: int = 0  # last year's shortfall, deducted from this year
    allocated: int = 0
    allowances: int = 0  # surrendered
    offsets: int = 0
    closed: bool = False
    shortfall: int = 0
    penalty_fen: int = 0

    @property
    def obligation(self) -> int:
        return self.emissions + self.carried_in

    @property
    def remaining(self) -> int:
        return self.obligation - self.allowances - self.offsets


class ProjectFact(msgspec.Struct, array_like=True):
    owner: str
    started: str = ""  # the first day of its earliest accepted monitoring period (ISO)


class Piece(msgspec.Struct, array_like=True):
    """Held tonnes of one (standard, project, vintage); allowances have no standard nor project."""

    standard: str
    project: str
    vintage: int
    tonnes: int

    def origin(self) -> Origin:
        return Origin(0, 0, self.standard, self.project, self.vintage)


class Surrendering(msgspec.Struct, array_like=True):
    """Tonnes frozen for an approved surrender until settlement moves the serials out."""

    request_seq: int
    participant: str
    instrument: str
    qty: int


class ComplianceState(msgspec.Struct):
    schemes: dict[str, SchemeDefined] = {}
    closed: dict[str, list[int]] = {}  # scheme -> closed years
    accounts: dict[str, ComplianceAccount] = {}  # account_key(scheme, year, entity)
    roles: dict[str, tuple[str, ...]] = {}
    projects: dict[str, ProjectFact] = {}
    held: dict[str, dict[str, list[Piece]]] = {}  # participant -> instrument -> pieces, sorted
    surrendering: list[Surrendering] = []  # in approval order, the order settlement answers in
    certificates: dict[str, CreditsSurrendered] = {}
    # who may record verified emissions (the registry folds the same events for its own rules)
    accreditations: dict[str, VerifierAccredited] = {}

    def account(self, scheme: str, year: int, entity: str) -> ComplianceAccount:
        key = account_key(scheme, year, entity)
        found = self.accounts.get(key)
        if found is None:
            found = self.accounts[key] = ComplianceAccount()
        return found

    def pieces(self, participant: str, instrument: str) -> list[Piece]:
        return self.held.get(participant, {}).get(instrument, [])


def account_key(scheme: str, year: int, entity: str) -> str:
    """`<scheme>|<year>|<entity>`: str keys keep the snapshot canonical; none of the ids holds a `|`."""
    return f"{scheme}|{year}|{entity}"


def move_pieces(
    state: ComplianceState,
    origins: list[Origin],
    instrument: str,
    serials: tuple[SerialRange, ...],
    source: str | None,
    to: str | None,
) -> None:
    """The tonnes of `serials` leave `source`'s pieces (None: newly issued) and join `to`'s (None: gone)."""
    for block in serials:
        for piece, origin in split_serials(origins, block):
            key = (origin.standard, origin.project, origin.vintage) if origin is not None else ("", "", 0)
            for who, sign in ((source, -1), (to, 1)):
                if who is not None:
                    _add(state, who, instrument, key, sign * piece.tonnes)


def _add(state: ComplianceState, who: str, instrument: str, key: tuple[str, str, int], tonnes: int) -> None:
    """Pieces stay sorted and without empty entries, so equal holdings snapshot equally."""
    by_instrument = state.held.setdefault(who, {})
    pieces = by_instrument.setdefault(instrument, [])
    at = bisect.bisect_left(pieces, key, key=lambda p: (p.standard, p.project, p.vintage))
    if at < len(pieces) and (pieces[at].standard, pieces[at].project, pieces[at].vintage) == key:
        pieces[at].tonnes += tonnes
        if not pieces[at].tonnes:
            del pieces[at]
    else:
        pieces.insert(at, Piece(*key, tonnes))
    if not pieces:
        del by_instrument[instrument]
        if not by_instrument:
            del state.held[who]
