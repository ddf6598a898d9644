"""Operator read models: fold the log through the services' own cores to see books, balances, holdings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from services.matching.processor import MatchingProcessor
from services.runtime.processor import Processor
from services.settlement.core import Settlement
from services.verification.core import Verification
from shared.domain.codec import decode_event
from shared.domain.ledger import CashDeposited, CashWithdrawn, CreditsIssued
from shared.eventlog.entry import GENESIS_HASH, Entry
from shared.eventlog.port import EventLog

__all__ = ["ExchangeState", "replay_log"]


@dataclass
class ExchangeState:
    """Every service core, rebuilt by the same `process` path the services run live."""

    matching: MatchingProcessor = field(default_factory=MatchingProcessor)
    verification: Verification = field(default_factory=Verification)
    settlement: Settlement = field(default_factory=Settlement)
    seq: int = 0
    head_hash: bytes = GENESIS_HASH
    counts: dict[str, int] = field(default_factory=dict)
    deposited: int = 0
    withdrawn: int = 0
    issued: dict[str, int] = field(default_factory=dict)

    @property
    def processors(self) -> tuple[Processor, ...]:
        return (self.matching, self.verification, self.settlement)

    def apply(self, entry: Entry) -> None:
        event = None
        for proc in self.processors:
            if entry.producer != proc.name and entry.type in proc.inputs:
                event = event or decode_event(entry.body)
                proc.process(entry.seq, entry.event_ns, event)
        self.counts[entry.type] = self.counts.get(entry.type, 0) + 1
        if entry.type in ("CashDeposited", "CashWithdrawn", "CreditsIssued"):
            fact = event or decode_event(entry.body)
            if isinstance(fact, CashDeposited):
                self.deposited += fact.amount
            elif isinstance(fact, CashWithdrawn):
                self.withdrawn += fact.amount
            elif isinstance(fact, CreditsIssued):
                self.issued[fact.instrument] = self.issued.get(fact.instrument, 0) + fact.serials.tonnes
        self.seq, self.head_hash = entry.seq, entry.hash

    def digest(self) -> str:
        """One hash over every core's canonical state and the log position it reflects."""
        h = hashlib.sha256(f"{self.seq}|".encode())
        for part in (self.matching.digest(), self.verification.digest(), self.settlement.digest()):
            h.update(part.encode())
        return h.hexdigest()


async def replay_log(
    event_log: EventLog,
    *,
    until: int | None = None,
    page: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> ExchangeState:
    """Rebuild the exchange's state from the log, up to and including seq `until` when given."""
    state = ExchangeState()
    while True:
        entries = await event_log.read(state.seq, page)
        for entry in entries:
            if until is not None and entry.seq > until:
                return state
            state.apply(entry)
        if progress is not None and entries:
            progress(len(entries))
        if len(entries) < page:
            return state
