"""Intake's Redis shell for client commands: decide a batch, append what passed, report the rest, ack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.intake.batch import Input, Row, decide_batch
from services.intake.core import Intake, Rejection
from services.intake.pending import (
    CONSUMER,
    GROUP,
    Pending,
    arrival,
    bury_commands,
    list_commands,
    next_run,
    pending_of,
    read_commands,
)
from services.intake.reports import Delivery, rejection_report
from services.intake.snapshot import intake_state, restore_intake
from services.runtime.snapshots import Snapshot, SnapshotStore
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import GENESIS_HASH, Entry, NewEntry
from shared.eventlog.freshness import Freshness
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import Effect
from shared.eventlog.redis_wire import fields_of
from shared.keys import Keys
from shared.order_reports import report_effect
from shared.resp import Command, RespClient

__all__ = [
    "CONSUMER",
    "GROUP",
    "AppendInDoubt",
    "BatchWrite",
    "Gateway",
    "IntakeLog",
    "Row",
    "out_of_memory",
]

log = structlog.get_logger("greenex.intake")


class IntakeLog(Protocol):
    """What intake needs of the log: read its own history, and append with effects, also as a command
    it sends in a write of its own (shared/eventlog/redis_log.RedisEventLog)."""

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]: ...

    async def position(self, producer: str) -> str: ...

    async def append(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        *,
        position: str | None = None,
        expect_seq: int | None = None,
        effects: Sequence[Effect] = (),
    ) -> list[Entry]: ...

    def append_command(
        self, producer: str, entries: Sequence[NewEntry], *, position: str, effects: Sequence[Effect] = ()
    ) -> tuple[Command, Callable[[list[Any]], list[Entry]]]: ...


class AppendInDoubt(Exception):  # noqa: N818  -- named as the fact, like the log's exceptions
    """A batch's append may or may not have landed, and intake's memory assumes it did: rebuild."""


class BatchWrite(NamedTuple):
    """The write that completes a decided batch, and for an append, what checks its reply."""

    commands: list[Command]
    check_reply: Callable[[list[Any]], list[Entry]] | None = None  # given the first reply: raises if refused
    resend: Callable[[], Awaitable[None]] | None = None  # the append again, after NOSCRIPT

    def landed(self, replies: list[Any]) -> None:
        if self.check_reply is not None:
            self.check_reply(replies[0])

    async def after_noscript(self, error: NoScriptError) -> None:
        """Redis lost its scripts (a restart) and the EVALSHA did nothing: append the slow way."""
        if self.resend is None:
            raise error
        await self.resend()


NOTHING = BatchWrite([])


class Gateway:
    """Reads every sender's command stream (the operator's and each registered participant's) through
    intake's consumer group; a participant's stream joins once its registration is in the log."""

    def __init__(
        self,
        core: Intake,
        event_log: IntakeLog,
        redis: Redis,
        resp: RespClient,
        keys: Keys,
        producer_keys: ProducerKeys | None = None,
        clock: Callable[[], int] = time.time_ns,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = 0,
    ) -> None:
        self.core, self.log, self.redis, self.resp, self.keys = core, event_log, redis, resp, keys
        self.producer_keys, self.clock = producer_keys, clock
        self.snapshots, self.snapshot_every = snapshots, snapshot_every
        self.senders: list[str] = []  # whose streams are read: each has intake's group
        self.freshness = Freshness()  # the marks of intake's own entries (a snapshot keeps them)
        # The log entry intake's state is as of (its last own entry, or the head it rebuilt to), and that
        # of its newest snapshot.
        self.point: tuple[int, bytes] = (0, GENESIS_HASH)
        self.snapshot_seq = 0

    async def rebuild(self) -> int:
        """Intake's state is a projection of its own entries in the log: from its newest valid snapshot
        (if any) and the entries after it. Returns how many entries it read."""
        snap = await self.snapshots.load(self.core.name, self.log) if self.snapshots is not None else None
        if snap is not None:
            restore_intake(self.core, snap.state)
            self.freshness = Freshness(snap.freshness)
            self.point, self.snapshot_seq = (snap.seq, snap.head_hash), snap.seq
        after, read = self.point[0], 0
        while entries := await self.log.read(after, 2000):
            if entries[0].seq != after + 1:
                raise LogCorrupt(after + 1, _trimmed(after, entries[0].seq))
            for entry in entries:
                if entry.producer == self.core.name:
                    self._check(entry)
                    self.core.recall(entry)
            after, read = entries[-1].seq, read + len(entries)
            self.point = (after, entries[-1].hash)
        log.info(
            "intake_rebuilt", log_seq=after, from_snapshot=self.snapshot_seq, entries_read=read,
            inputs=self.core.logged_inputs, orders=self.core.orders_submitted,
        )  # fmt: skip
        if read:
            await self.save_snapshot()
        return read

    def _check(self, entry: Entry) -> None:
        """Intake folds only what its own service wrote (the tag), and never a copy of it (freshness)."""
        if self.producer_keys is not None:
            self.producer_keys.check_entry(entry)
            self.freshness.check(entry)

    def _landed(self, entries: list[Entry]) -> list[Entry]:
        """An append of intake's landed: its state is now as of its last entry."""
        for entry in entries:
            self.freshness.check(entry)
        if entries:
            self.point = (entries[-1].seq, entries[-1].hash)
        return entries

    def snapshot_due(self) -> bool:
        return bool(self.snapshot_every) and self.point[0] - self.snapshot_seq >= self.snapshot_every

    async def save_snapshot(self) -> bool:
        """Save the state as of `point`; only between batches, when everything decided is in the log."""
        seq, head_hash = self.point
        if self.snapshots is None or seq == self.snapshot_seq:
            return False
        snap = Snapshot(
            service=self.core.name, seq=seq, head_hash=head_hash, logged_position=self.core.position,
            taken_ns=time.time_ns(), state=intake_state(self.core), freshness=self.freshness.state(),
        )  # fmt: skip
        await self.snapshots.save(snap)
        self.snapshot_seq = seq
        log.info("snapshot_saved", service=self.core.name, seq=seq, bytes=len(snap.state))
        return True

    async def join_new_senders(self) -> None:
        """Create intake's consumer group (at 0: a group created at `$`, FastStream's default, would skip
        commands sent before it) on every registered sender's stream not read yet, and read it from now."""
        for sender in sorted(self.core.state.participants - set(self.senders)):
            try:
                await self.redis.xgroup_create(self.keys.commands(sender), GROUP, id="0", mkstream=True)
            except Exception as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self.senders.append(sender)

    def read_command(self, count: int, block_ms: int | None = None) -> Command:
        """XREADGROUP of new entries (`>`) over every sender's stream, waiting up to `block_ms`."""
        streams = [self.keys.commands(sender) for sender in self.senders]
        wait = () if block_ms is None else ("BLOCK", block_ms)
        return ("XREADGROUP", "GROUP", GROUP, CONSUMER, "COUNT", count, *wait,
                "STREAMS", *streams, *[">"] * len(streams))  # fmt: skip

    def inputs_of(self, reply: Any) -> list[Input]:
        """(sender, row) of every entry of an XREADGROUP reply from the lean client, in the order Redis
        took them in (by stream id, which Redis stamps with its own clock): a batch from many streams
        is decided in arrival order, not stream by stream. A client that picks its own ids (XADD with
        an explicit, increasing id) sorts first within a batch; it gains that batch's place in line
        and nothing more, since batches are decided in the order they were read (docs/protocol.md)."""
        inputs = [
            (self.keys.sender_of(key.decode()), (stream_id, fields_of(flat)))
            for key, rows in (reply or [])
            for stream_id, flat in rows
        ]
        return sorted(inputs, key=lambda item: arrival(item[1][0]))

    async def drain_pending(self) -> None:
        """Re-handle entries read but never acked (the live read only asks for new ones, `>`).

        At start these are a previous run's; while running, they can be entries whose XREADGROUP reply
        was lost when the connection to Redis broke (Redis delivered them, intake never saw them). An
        entry delivered DEAD_AFTER times goes to the dead-letter stream instead; one delivered more than
        once is decided alone (services/intake/pending.py).
        """
        while pending := await self._pending():
            if dead := [entry for entry in pending if entry.dead]:
                await self._bury(dead)
                continue
            replies = await self.resp.execute(read_commands(self.keys, next_run(pending)))
            inputs = self.inputs_of([stream for reply in replies for stream in reply or []])
            if not inputs:  # listed as pending, yet not delivered: the group changed under intake
                raise RuntimeError(f"pending entries listed but not delivered: {pending[:3]}")
            await self.send(self.decide(inputs))

    async def _pending(self) -> list[Pending]:
        if not self.senders:
            return []
        return pending_of(self.senders, await self.resp.execute(list_commands(self.keys, self.senders)))

    async def _bury(self, dead: list[Pending]) -> None:
        """Move entries intake kept failing on to the dead-letter stream, acked in the same MULTI."""
        rows = await self.resp.execute(
            [("XRANGE", self.keys.commands(e.sender), e.input_id, e.input_id) for e in dead]
        )
        # A writer may have trimmed an entry from its stream after delivery: its data is gone.
        found = [
            (entry, fields_of(row[0][1]).get(b"data", b"") if row else b"")
            for entry, row in zip(dead, rows, strict=True)
        ]
        await self.resp.execute(bury_commands(self.keys, found, self.clock()))
        for entry, _ in found:
            log.error(
                "command_dead_lettered", sender=entry.sender, input_id=entry.input_id.decode(),
                deliveries=entry.deliveries, hint="greenex dead-letters list",
            )  # fmt: skip

    async def send(self, write: BatchWrite) -> None:
        """Send a decided batch on its own (the command loop sends it with its next read instead).

        Redis out of memory (maxmemory, noeviction) refuses every write, this one included, until an
        operator frees memory: the same write is sent again until it lands, and nothing is read
        meanwhile. Crashing instead would deliver the batch's commands again at every restart, and
        after DEAD_AFTER deliveries good commands would be dead-lettered for Redis's fault.
        """
        waited = 0.0
        while True:
            try:
                replies = await self.resp.execute(write.commands)
            except NoScriptError as exc:
                await write.after_noscript(exc)
                return
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if write.check_reply is not None:
                    raise AppendInDoubt(f"connection lost with an append in flight: {exc!r}") from exc
                raise  # reports and XACK only: the re-drain finishes the batch exactly once
            except ResponseError as exc:
                if not out_of_memory(exc):
                    raise
                if not waited:
                    log.error("redis_out_of_memory", error=str(exc), hint="greenex status; free memory")
                waited = min(max(0.5, 2 * waited), 5.0)
                await asyncio.sleep(waited)
                continue
            if waited:
                log.warning("redis_memory_back")
            write.landed(replies)
            return

    def decide(self, inputs: Sequence[Input]) -> BatchWrite:
        """Decide every input; return what the batch needs sent: the append of the authenticated, with
        the rejection reports and the XACKs of the batch run by the append script once the append lands
        (or, with nothing to append, in a MULTI). No re-drain may run until it is sent: it would see a
        batch read and not yet acked, and report its rejections twice."""
        batch = decide_batch(self.core, inputs, self.clock())
        effects: list[Effect] = []
        for sender, input_id, rejection in batch.rejections:
            effects.extend(self._report(sender, input_id, rejection))
        effects += [Effect("XACK", self.keys.commands(s), (GROUP, *ids)) for s, ids in batch.acks.items()]
        if not batch.entries:
            return BatchWrite([("MULTI",), *(e.as_command() for e in effects), ("EXEC",)])
        # Intake's memory counts these inputs as logged now: the next batch is decided only once this
        # append's reply is checked, and intake crashes and rebuilds if it did not land.
        name, entries, position = self.core.name, batch.entries, batch.position
        command, sealed = self.log.append_command(name, entries, position=position, effects=effects)

        def check(reply: list[Any]) -> list[Entry]:
            return self._landed(sealed(reply))

        async def resend() -> None:
            self._landed(await self.log.append(name, entries, position=position, effects=effects))

        return BatchWrite([command], check, resend)

    def _report(self, sender: str, input_id: str, r: Rejection) -> list[Effect]:
        log.warning(
            "command_rejected", sender=sender, input_id=input_id, client_order_id=r.client_order_id,
            reason=r.reason, text=r.text,
        )  # fmt: skip
        if r.participant is None:
            return []  # nobody we could deliver to: an unknown sender gets no stream of ours
        return [report_effect(self.keys, Delivery(r.participant, rejection_report(input_id, r)))]


def out_of_memory(exc: ResponseError) -> bool:
    """Redis refused a write because it is at maxmemory (noeviction): nothing was written."""
    return str(exc).startswith("OOM")


def _trimmed(after: int, first: int) -> str:
    return (
        f"the log holds no entry {after + 1} (it starts at {first}: trimmed by `greenex log archive`) and "
        f"no snapshot of this service covers seq {first - 1}; see docs/operations.md, 'A trimmed log'"
    )
