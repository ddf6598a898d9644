"""Runs a Processor against the event log: read a batch, decide, append the answers in one atomic call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from services.runtime.agreement import LoggedAnswers
from services.runtime.processor import Processor
from services.runtime.snapshots import Snapshot, SnapshotStore, new_snapshot
from shared.domain.codec import Event, decode_event, encode_event, event_type
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.effects import Effect
from shared.eventlog.entry import GENESIS_HASH, Entry, NewEntry, position_of_seq
from shared.eventlog.freshness import Freshness
from shared.eventlog.port import EventLog, LogCorrupt

__all__ = ["AnswerReports", "BatchHook", "LogFollower"]

log = structlog.get_logger("greenex.runtime")

BatchHook = Callable[[Sequence[Entry], Sequence[Entry]], Awaitable[None]]


class AnswerReports(Protocol):
    """Reports a core writes in the append that logs its answers (matching's: services/matching/reports.py).

    Called with every answer in log order, those the log already holds too (`write` False: fold it into
    what the reports remember, report nothing: its reports went out with it). Each effect is completed
    by the append script with the seq of the answer it reports."""

    def __call__(self, event: Event, write: bool) -> list[Effect]: ...

    def restored(self) -> None:
        """The core's state was replaced by a snapshot's: rebuild what the reports remember from it."""
        ...


class LogFollower:
    """Feeds one processor every log entry in order; exactly-once answers through producer positions.

    On start it replays the log from seq 0 (or from a snapshot's seq) through the same `decide` path;
    answers to inputs at or below the producer's stored position are already in the log and are
    dropped, later ones are appended. With a snapshot store it saves a snapshot every
    `snapshot_every` entries, and only when every answer it decided is in the log.
    """

    def __init__(
        self,
        processor: Processor,
        event_log: EventLog,
        *,
        batch: int = 500,
        block_ms: int = 100,
        on_batch: BatchHook | None = None,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = 0,
        producer_keys: ProducerKeys | None = None,
        reports: AnswerReports | None = None,
    ) -> None:
        self.processor = processor
        self.reports = reports
        self.log = event_log
        self.batch = batch
        self.block_ms = block_ms
        self.on_batch = on_batch
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        self.producer_keys = producer_keys  # with them, an entry whose producer tag fails stops the core
        self.freshness = Freshness()  # with the keys: a copy of an earlier genuine entry stops it too
        self.cursor = 0  # last log seq fed to the processor
        self.head_hash = GENESIS_HASH  # that entry's hash: the next batch must link to it
        self.logged_position = ""  # the last input whose answers are in the log (producer position)
        # False from the moment a batch is decided until its answers are in the log: a snapshot or a
        # digest taken then would describe decisions the log may never hold.
        self.settled = True
        self.snapshot_seq = 0
        self.last_batch_at = 0.0  # time.monotonic() of the last batch, so costly extras can wait for a lull
        self.replayed = LoggedAnswers()  # what it re-decided for requests the log already answered

    def restore(self, snap: Snapshot, stored_position: str) -> None:
        """Continue from a snapshot: state, cursor and chain link from it, the logged position from both."""
        self.processor.restore(snap.state)
        if self.reports is not None:
            self.reports.restored()
        self.freshness = Freshness(snap.freshness)
        self.cursor = self.snapshot_seq = snap.seq
        self.head_hash = snap.head_hash
        # An imported log has entries but no positions: the snapshot's may be the only one.
        self.logged_position = max(stored_position, snap.logged_position)

    async def run(self, stop: asyncio.Event) -> None:
        """Read and decide batches from the cursor until `stop` (the logged position is set before: see
        runtime.app.resume_follower, which also restores a snapshot).

        A batch's answers go out with the wait for the next batch (`append_then_follow`): over Redis
        that is one round trip per batch instead of two.
        """
        entries: Sequence[Entry] = []
        while not stop.is_set():
            if not entries:
                entries = await self.log.follow(self.cursor, self.batch, self.block_ms)
                continue
            pending, position, effects = self._decide(entries)
            if not pending:
                await self._settle(entries, [], position)
                entries = []
                continue
            appended, following = await self.log.append_then_follow(
                self.processor.name, pending, position=position,
                after_seq=self.cursor, limit=self.batch, block_ms=self.block_ms, effects=effects,
            )  # fmt: skip
            await self._settle(entries, appended, position)
            entries = following

    async def step(self, entries: Sequence[Entry]) -> list[Entry]:
        """Decide one batch and append its answers; return what was appended."""
        pending, position, effects = self._decide(entries)
        appended = (
            await self.log.append(self.processor.name, pending, position=position, effects=effects)
            if pending
            else []
        )
        await self._settle(entries, appended, position)
        return appended

    def _decide(self, entries: Sequence[Entry]) -> tuple[list[NewEntry], str, list[Effect]]:
        """Fold a batch in; return the answers to append, the position they answer up to ("" if none)
        and their reports. The state is ahead of the log until they are appended (`settled` is False
        until then)."""
        proc = self.processor
        name, inputs, answers_to, logged = proc.name, proc.inputs, proc.answers_to, self.logged_position
        self._check_links(entries)
        self.settled = False
        pending: list[NewEntry] = []
        effects: list[Effect] = []
        last_answered = 0
        for entry in entries:
            if entry.producer == name:
                if (differs := self.replayed.check(entry)) is not None:
                    raise CannotFold(entry.seq, f"{name} disagrees with the log: {differs}; was the log "
                                                "written under other rules? Run it with the greenex that "
                                                "wrote it")  # fmt: skip
                continue
            if entry.type not in inputs:
                continue
            try:
                answers = proc.decide(entry.seq, entry.event_ns, decode_event(entry.body))
            except Exception as exc:
                # A log entry is never skipped: the core stops, naming it (the supervisor's crash-loop
                # limit then stops the exchange rather than restart it forever).
                raise CannotFold(entry.seq, f"{name} cannot fold {entry.type}: {exc!r}") from exc
            if position_of_seq(entry.seq) <= logged:
                if entry.type in answers_to:
                    self.replayed.expect(entry.seq, [(event_type(a), encode_event(a)) for a in answers])
                if self.reports is not None:
                    for answer in answers:
                        self.reports(answer, False)
                continue
            if not answers:
                continue
            if self.reports is not None:
                for i, answer in enumerate(answers, start=len(pending) + 1):
                    effects += [effect._replace(reports=i) for effect in self.reports(answer, True)]
            causation = f"log:{entry.seq}"
            pending.extend(
                NewEntry(
                    event_id=f"{name}:{entry.seq}:{i}",
                    causation=causation,
                    type=event_type(event),
                    event_ns=entry.event_ns,
                    body=encode_event(event),
                )
                for i, event in enumerate(answers)
            )
            last_answered = entry.seq
        self.cursor, self.head_hash = entries[-1].seq, entries[-1].hash
        self.last_batch_at = time.monotonic()
        return pending, position_of_seq(last_answered) if pending else "", effects

    async def _settle(self, entries: Sequence[Entry], appended: list[Entry], position: str) -> None:
        """The batch's answers are in the log: move the logged position, then the extras that need a
        settled state."""
        if position:
            self.logged_position = position
        self.settled = True
        if self.snapshot_every and self.cursor - self.snapshot_seq >= self.snapshot_every:
            await self.save_snapshot()
        if self.on_batch is not None:
            await self.on_batch(entries, appended)

    def _check_links(self, entries: Sequence[Entry]) -> None:
        """Refuse a batch that does not continue the chain we folded (e.g. a log rewound and rewritten),
        or holds an entry its producer did not write, or a copy of one it did (freshness.py).

        The links are compared, not recomputed (cheap enough for every entry; it catches a log that moved
        under a running service, which then crashes and rebuilds from what is there). The producer tag
        (an HMAC, ~1.5 us) and the freshness of every entry the core folds are checked: one appended by
        anyone without the service keys, or a copy of a genuine one, stops the core loudly, naming its
        seq, instead of being folded. Entries it does not fold cannot change its state, so it leaves
        them to the readers that check every entry (the checkpoint signer, `log verify`): on the order
        path that halves the cost of the checks (loadtests/RESULTS.md).
        """
        seq, prev, keys = self.cursor, self.head_hash, self.producer_keys
        for entry in entries:
            if entry.seq != seq + 1:
                trimmed = " (the log was trimmed past this core's snapshots: docs/operations.md)" * (seq == 0)
                raise LogCorrupt(seq + 1, f"expected seq {seq + 1}, got {entry.seq}{trimmed}")
            if entry.prev_hash != prev:
                raise LogCorrupt(entry.seq, "does not link to the entry this service folded before it")
            seq, prev = entry.seq, entry.hash
        if keys is not None:
            name, inputs = self.processor.name, self.processor.inputs
            for entry in entries:
                if entry.producer != name and entry.type in inputs:
                    keys.check_entry(entry)
                    self.freshness.check(entry)

    async def save_snapshot(self) -> bool:
        """Write a snapshot of the current state if it is settled; return whether one was written."""
        if self.snapshots is None or not self.settled:
            return False
        if self.cursor == self.snapshot_seq:
            return False  # the newest snapshot already holds this state: keep the older one as fallback
        proc = self.processor
        snap = new_snapshot(proc, self.cursor, self.head_hash, self.logged_position, self.freshness.state())
        await self.snapshots.save(snap)
        self.snapshot_seq = snap.seq
        log.info("snapshot_saved", service=proc.name, seq=snap.seq, bytes=len(snap.state))
        return True


async def last_cause_answered(
    event_log: EventLog, producer: str, after_seq: int, keys: ProducerKeys | None, page: int = 5000
) -> int:
    """The highest log seq `producer` answered in the entries after `after_seq` (0 if none): its own
    entries name what they answer (`log:<n>`), so the log alone says how far it got, whatever became of
    the positions hash (a lost position must cost time, never a second copy of an answer). With `keys`,
    an entry posing as its own without its tag stops it (it would otherwise silence its answers)."""
    answered, after = 0, after_seq
    while entries := await event_log.read(after, page):
        for entry in entries:
            if entry.producer != producer:
                continue
            if keys is not None:
                keys.check_entry(entry)
            kind, _, cause = entry.causation.partition(":")
            if kind == "log" and cause.isascii() and cause.isdigit():
                answered = max(answered, int(cause))
        after = entries[-1].seq
    return answered


class CannotFold(LogCorrupt):
    """A core failed on an entry of the log (a bug, or an entry no producer should have written)."""
