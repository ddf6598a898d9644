"""Operator read models: fold the log through the services' own cores to see books, balances, holdings."""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from services.matching.processor import MatchingProcessor
from services.registry.core import Registry
from services.runtime.processor import Processor
from services.runtime.system import System
from services.settlement.core import Settlement
from services.system import SYSTEM
from services.verification.core import Verification
from shared.domain.codec import Event, decode_event, tags
from shared.domain.ledger import (
    CashDeposited,
    CashTransferredIn,
    CashTransferredOut,
    CashWithdrawn,
    CreditsIssued,
)
from shared.eventlog.archive import iter_archive
from shared.eventlog.entry import GENESIS_HASH, Entry
from shared.eventlog.port import LogReader
from shared.eventlog.verify import ChainVerifier

__all__ = ["Checkpoint", "ExchangeState", "Stop", "replay_archive", "replay_entries", "replay_log"]

_TOTALS = tags(CashDeposited, CashWithdrawn, CreditsIssued, CashTransferredIn, CashTransferredOut)
_REFUSALS = frozenset({"OrderRejected", "CommandRejected"})

Checkpoint = Callable[["ExchangeState"], None]


C = TypeVar("C")


def _as(core: Processor, kind: type[C]) -> C:
    if not isinstance(core, kind):
        raise TypeError(f"core {core.name!r} is a {type(core).__name__}, not a {kind.__name__}")
    return core


@dataclass
class ExchangeState:
    """Every follower core of the system map, rebuilt by the same `decide` path the services run live."""

    system: System = SYSTEM
    cores: dict[str, Processor] = field(init=False)
    seq: int = 0
    head_hash: bytes = GENESIS_HASH
    logged_ns: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    # Refusals (OrderRejected, CommandRejected) by (who refused, the command refused).
    refusals: dict[tuple[str, str], int] = field(default_factory=dict)
    deposited: int = 0  # transfers from other partitions included: a deposit here
    withdrawn: int = 0  # transfers to other partitions included: a withdrawal here
    # Transfers between partitions (shared/partitions.py), by their request's seq in the source's log:
    # (participant, fen, destination) sent from here; (source, request seq) -> (participant, fen) credited
    # here, and how many times each was debited or credited (once, unless the log is wrong).
    transfers_out: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    transfers_in: dict[tuple[int, int], tuple[str, int]] = field(default_factory=dict)
    debited: dict[int, int] = field(default_factory=dict)
    credited: dict[tuple[int, int], int] = field(default_factory=dict)
    issued: dict[str, int] = field(default_factory=dict)
    # True when the cores came from snapshots (services/cli/fastview.py): the totals above and `counts`
    # then cover only the tail, so nothing may read them.
    partial: bool = False
    # type tag -> the cores that read it: one dict lookup per entry instead of a scan of every core
    _readers: dict[str, tuple[Processor, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.cores = {core.name: core.make() for core in self.system.cores}
        readers: dict[str, list[Processor]] = {}
        for proc in self.cores.values():
            for tag in proc.inputs:
                readers.setdefault(tag, []).append(proc)
        self._readers = {tag: tuple(procs) for tag, procs in readers.items()}

    def core(self, name: str) -> Processor:
        return self.cores[name]

    # The cores the operator views read, typed.
    @property
    def matching(self) -> MatchingProcessor:
        return _as(self.cores["matching"], MatchingProcessor)

    @property
    def verification(self) -> Verification:
        return _as(self.cores["verification"], Verification)

    @property
    def settlement(self) -> Settlement:
        return _as(self.cores["settlement"], Settlement)

    @property
    def registry(self) -> Registry:
        return _as(self.cores["registry"], Registry)

    def apply(self, entry: Entry) -> None:
        tag = entry.type
        event: Event | None = None
        for proc in self._readers.get(tag, ()):
            if entry.producer != proc.name:
                event = event or decode_event(entry.body)
                proc.decide(entry.seq, entry.event_ns, event)
        counts = self.counts
        counts[tag] = counts.get(tag, 0) + 1
        if tag in _REFUSALS:
            event = event or decode_event(entry.body)
            key = (entry.producer, getattr(event, "command", ""))
            self.refusals[key] = self.refusals.get(key, 0) + 1
        if tag in _TOTALS:
            self._total(event or decode_event(entry.body))
        self.seq, self.head_hash, self.logged_ns = entry.seq, entry.hash, entry.logged_ns

    def apply_beyond(self, entry: Entry, covered: Mapping[str, int]) -> None:
        """`apply` for the cores whose snapshot (at seq `covered[name]`) does not hold the entry yet."""
        event: Event | None = None
        for proc in self._readers.get(entry.type, ()):
            if entry.seq > covered[proc.name] and entry.producer != proc.name:
                event = event or decode_event(entry.body)
                proc.decide(entry.seq, entry.event_ns, event)
        self.seq, self.head_hash, self.logged_ns = entry.seq, entry.hash, entry.logged_ns

    def _total(self, fact: Event) -> None:
        if isinstance(fact, CashTransferredIn):
            transfer = (fact.from_partition, fact.from_seq)
            self.transfers_in[transfer] = (fact.participant, fact.amount)
            self.credited[transfer] = self.credited.get(transfer, 0) + 1
        elif isinstance(fact, CashTransferredOut):
            self.transfers_out[fact.request_seq] = (fact.participant, fact.amount, fact.to_partition)
            self.debited[fact.request_seq] = self.debited.get(fact.request_seq, 0) + 1
        if isinstance(fact, CashDeposited):
            self.deposited += fact.amount
        elif isinstance(fact, CashWithdrawn):
            self.withdrawn += fact.amount
        elif isinstance(fact, CreditsIssued):
            self.issued[fact.instrument] = self.issued.get(fact.instrument, 0) + fact.serials.tonnes

    def core_digests(self) -> dict[str, str]:
        """Each core's own digest: what its live service publishes for the same seq."""
        return {name: core.digest() for name, core in self.cores.items()}

    def digest(self) -> str:
        """One hash over every core's canonical state and the log position it reflects."""
        h = hashlib.sha256(f"{self.seq}|".encode())
        for part in self.core_digests().values():
            h.update(part.encode())
        return h.hexdigest()


class Stop:
    """Where a replay ends: after seq `until`, or before the first entry logged after `until_ns`."""

    def __init__(self, until: int | None = None, until_ns: int | None = None) -> None:
        self.until, self.until_ns = until, until_ns

    def reached(self, entry: Entry) -> bool:
        # Writers stamp logged_ns with their own clocks, so it need not rise along the log: the state
        # "at time T" is the longest prefix logged at or before T, a state the exchange really was in.
        return (self.until is not None and entry.seq > self.until) or (
            self.until_ns is not None and entry.logged_ns > self.until_ns
        )


def replay_entries(
    entries: Iterable[Entry],
    *,
    stop: Stop | None = None,
    verify: bool = True,
    checkpoints: Mapping[int, Checkpoint] | None = None,
    state: ExchangeState | None = None,
    verifier: ChainVerifier | None = None,
    covered: Mapping[str, int] | None = None,
) -> ExchangeState:
    """Fold entries into a state, checking the hash chain (LogCorrupt names the first bad seq) with
    `verifier` (one holding keys also checks producer tags, causations and signed checkpoints). With
    `covered`, a core skips the entries its snapshot already holds (ExchangeState.apply_beyond).

    `checkpoints` run right after the entry of their seq is applied, e.g. to take a core's digest at the
    seq a live service reported.
    """
    state = state or ExchangeState()
    if verify and verifier is None:
        verifier = ChainVerifier(start_seq=state.seq + 1, prev_hash=state.head_hash)
    elif not verify:
        verifier = None
    stop = stop or Stop()
    checks = checkpoints or {}
    with _cyclic_gc_paused():
        for entry in entries:
            if stop.reached(entry):
                break
            if verifier is not None:
                verifier.check(entry)
            if covered is None:
                state.apply(entry)
            else:
                state.apply_beyond(entry, covered)
            if entry.seq in checks:
                checks[entry.seq](state)
    return state


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """A replay builds a large, long-lived and acyclic state; the cyclic collector would walk it over
    and over for nothing (10-30 % of replay time measured). Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def replay_log(
    event_log: LogReader,
    *,
    until: int | None = None,
    until_ns: int | None = None,
    page: int = 5000,
    progress: Callable[[int], None] | None = None,
    checkpoints: Mapping[int, Checkpoint] | None = None,
    verify: bool = True,
    verifier: ChainVerifier | None = None,
) -> ExchangeState:
    """Rebuild the exchange's state from the log, up to and including seq `until` when given."""
    state = ExchangeState()
    stop = Stop(until, until_ns)
    verifier = verifier or (ChainVerifier() if verify else None)
    while True:
        entries = await event_log.read(state.seq, page)
        before = state.seq
        replay_entries(
            entries, stop=stop, verify=verify, checkpoints=checkpoints, state=state, verifier=verifier
        )
        if progress is not None and entries:
            progress(state.seq - before)
        if len(entries) < page or state.seq < entries[-1].seq:
            return state


def replay_archive(
    path: Path | str,
    *,
    until: int | None = None,
    until_ns: int | None = None,
    progress: Callable[[int], None] | None = None,
    checkpoints: Mapping[int, Checkpoint] | None = None,
    verify: bool = True,
    verifier: ChainVerifier | None = None,
    aside: bool = False,
) -> ExchangeState:
    """Rebuild the state from an exported archive (framing and chain checked as it streams). With
    `aside`, `verifier` checks the archive in a second process while this one folds it (verify_aside)."""
    entries: Iterable[Entry] = iter_archive(path)
    if progress is not None:
        entries = _counted(entries, progress)
    stop = Stop(until, until_ns)
    if aside and verify and verifier is not None:
        from services.cli.verify_aside import folded_while_verified  # noqa: PLC0415 - multiprocessing

        def fold() -> ExchangeState:
            return replay_entries(entries, stop=stop, verify=False, checkpoints=checkpoints)

        return folded_while_verified(Path(path), verifier, until, until_ns, fold)
    return replay_entries(entries, stop=stop, verify=verify, checkpoints=checkpoints, verifier=verifier)


def _counted(entries: Iterable[Entry], progress: Callable[[int], None], every: int = 5000) -> Iterable[Entry]:
    n = 0
    for entry in entries:
        yield entry
        n += 1
        if n == every:
            progress(n)
            n = 0
    progress(n)
