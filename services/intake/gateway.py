"""Intake's Redis shell for client commands: decide a batch, append what passed, report the rest, ack."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.intake.batch import Input, Row, decide_batch
from services.intake.core import Intake, Rejection
from services.intake.reports import Delivery, delivery_effect, rejection_report
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import Entry, NewEntry
from shared.eventlog.freshness import Freshness
from shared.eventlog.redis_log import Effect
from shared.eventlog.redis_wire import fields_of
from shared.keys import Keys
from shared.resp import Command, RespClient

__all__ = ["CONSUMER", "GROUP", "AppendInDoubt", "BatchWrite", "Gateway", "IntakeLog", "Row"]

log = structlog.get_logger("greenex.intake")
GROUP = "intake"
CONSUMER = "intake-1"  # one consumer: command order is the order entries reach the log


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
    check_reply: Callable[[list[Any]], object] | None = None  # given the first reply: raises if refused
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


def _arrival(item: Input) -> tuple[int, int]:
    ms, _, n = item[1][0].partition(b"-")
    return int(ms), int(n or 0)


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
    ) -> None:
        self.core, self.log, self.redis, self.resp, self.keys = core, event_log, redis, resp, keys
        self.producer_keys, self.clock = producer_keys, clock
        self.senders: list[str] = []  # whose streams are read: each has intake's group

    async def rebuild(self) -> None:
        """Intake's state is a projection of its own entries in the log."""
        after, freshness = 0, Freshness()
        while entries := await self.log.read(after, 2000):
            if self.producer_keys is not None:
                self.producer_keys.check(entries)  # intake rebuilds only from what its services wrote
                for entry in entries:
                    freshness.check(entry)  # and never from a copy of an entry they wrote
            for entry in entries:
                if entry.producer == self.core.name:
                    self.core.recall(entry)
            after = entries[-1].seq
        log.info(
            "intake_rebuilt", log_seq=after, inputs=self.core.logged_inputs, orders=self.core.orders_submitted
        )

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

    def read_command(self, count: int, block_ms: int | None = None, start: str = ">") -> Command:
        """XREADGROUP over every sender's stream: `>` for new entries (waiting up to `block_ms`), `0` for
        this consumer's pending ones (never waits)."""
        streams = [self.keys.commands(sender) for sender in self.senders]
        wait = () if block_ms is None else ("BLOCK", block_ms)
        return ("XREADGROUP", "GROUP", GROUP, CONSUMER, "COUNT", count, *wait,
                "STREAMS", *streams, *[start] * len(streams))  # fmt: skip

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
        return sorted(inputs, key=_arrival)

    async def drain_pending(self) -> None:
        """Re-handle entries read but never acked (the live read only asks for new ones, `>`).

        At start these are a previous run's; while running, they can be entries whose XREADGROUP reply
        was lost when the connection to Redis broke (Redis delivered them, intake never saw them).
        """
        while True:
            reply = await self.resp.call(*self.read_command(500, start="0"))
            inputs = self.inputs_of(reply)
            if not inputs:
                return
            await self.send(self.decide(inputs))

    async def send(self, write: BatchWrite) -> None:
        """Send a decided batch on its own (the command loop sends it with its next read instead)."""
        try:
            replies = await self.resp.execute(write.commands)
        except NoScriptError as exc:
            await write.after_noscript(exc)
            return
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if write.check_reply is not None:
                raise AppendInDoubt(f"connection lost with an append in flight: {exc!r}") from exc
            raise  # reports and XACK only: the re-drain finishes the batch exactly once
        write.landed(replies)

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

        async def resend() -> None:
            await self.log.append(name, entries, position=position, effects=effects)

        return BatchWrite([command], sealed, resend)

    def _report(self, sender: str, input_id: str, r: Rejection) -> list[Effect]:
        log.warning(
            "command_rejected", sender=sender, input_id=input_id, client_order_id=r.client_order_id,
            reason=r.reason, text=r.text,
        )  # fmt: skip
        if r.participant is None:
            return []  # nobody we could deliver to: an unknown sender gets no stream of ours
        return [delivery_effect(self.keys, Delivery(r.participant, rejection_report(input_id, r)))]
