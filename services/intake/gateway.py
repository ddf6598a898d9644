"""Intake's I/O shell for client commands: decide a batch, append what passed, report the rest, ack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.intake.core import Intake, Rejection
from shared.config import Settings
from shared.domain.codec import decode_event, encode_event, event_type
from shared.eventlog.entry import NewEntry, position_of_stream_id
from shared.eventlog.redis_log import RedisEventLog
from shared.resp import Command, RespClient

__all__ = ["AppendInDoubt", "Finish", "Gateway"]

log = structlog.get_logger("greenex.intake")
GROUP = "intake"
CONSUMER = "intake-1"  # one consumer: command order is the order entries reach the log

Row = tuple[bytes, Mapping[bytes, bytes]]


class AppendInDoubt(Exception):  # noqa: N818  -- named as the fact, like the log's exceptions
    """A batch's append may or may not have landed, and intake's memory assumes it did: rebuild."""


class Finish(NamedTuple):
    """What a decided batch still needs sent, and for an append, what checks its reply."""

    commands: list[Command]
    check: Callable[[list[Any]], object] | None = None  # given the first command's reply: raises if refused
    resend: Callable[[], Awaitable[None]] | None = None  # the append again, after NOSCRIPT

    def landed(self, replies: list[Any]) -> None:
        if self.check is not None:
            self.check(replies[0])

    async def after_noscript(self, error: NoScriptError) -> None:
        """Redis lost its scripts (a restart) and the EVALSHA did nothing: append the slow way."""
        if self.resend is None:
            raise error
        await self.resend()


class Gateway:
    def __init__(
        self,
        core: Intake,
        event_log: RedisEventLog,
        redis: Redis,
        resp: RespClient,
        settings: Settings,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.core, self.log, self.redis, self.settings, self.clock = core, event_log, redis, settings, clock
        self.resp = resp
        self.in_key = f"{settings.prefix}:in"
        self.floor = ""
        # One batch at a time: the periodic re-drain of pending entries must never see a batch that the
        # subscriber is still handling (read but not yet acked).
        self.lock = asyncio.Lock()

    async def rebuild(self) -> None:
        """Intake's state is a projection of its own events in the log."""
        after = 0
        while entries := await self.log.read(after, 2000):
            for entry in entries:
                if entry.producer == self.core.name:
                    self.core.evolve(decode_event(entry.body))
            after = entries[-1].seq
        self.floor = await self.log.position(self.core.name)
        log.info("intake_rebuilt", log_seq=after, position=self.floor, orders=self.core.orders_submitted)

    async def prepare_group(self) -> None:
        """Create the group at 0 (FastStream would create it at `$`, skipping earlier entries: trap 1)."""
        try:
            await self.redis.xgroup_create(self.in_key, GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def drain_pending(self) -> None:
        """Re-handle entries read but never acked (FastStream only reads `>`: trap 3).

        At start these are a previous run's; while running, they can be entries whose XREADGROUP reply
        was lost when the connection to Redis broke (Redis delivered them, intake never saw them).
        """
        async with self.lock:
            while True:
                reply: Any = await self.redis.xreadgroup(GROUP, CONSUMER, {self.in_key: "0"}, count=500)
                rows: list[Row] = reply[0][1] if reply else []
                if not rows:
                    return
                await self.send(self.decide(rows))

    async def handle(self, rows: Sequence[Row]) -> None:
        """Decide a batch and send what it needs (the FastStream subscriber's path)."""
        async with self.lock:
            await self.send(self.decide(rows))

    async def send(self, finish: Finish) -> None:
        """Send a decided batch on its own (the command loop sends it with its next read instead)."""
        try:
            replies = await self.resp.execute(finish.commands)
        except NoScriptError as exc:
            await finish.after_noscript(exc)
            return
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if finish.check is not None:
                raise AppendInDoubt(f"connection lost with an append in flight: {exc!r}") from exc
            raise  # reports and XACK only: the re-drain finishes the batch exactly once
        finish.landed(replies)

    def decide(self, rows: Sequence[Row]) -> Finish:
        """Decide every entry; return what the batch needs sent: the append of the accepted, with the
        rejection reports and the XACK of the batch run by the append script once the append lands (or,
        with nothing to append, in a MULTI). The re-drain must not run until it is sent: it would see a
        batch read and not yet acked, and report its rejections twice (see `lock`)."""
        now = self.clock()
        pending: list[NewEntry] = []
        rejections: list[tuple[bytes, Rejection]] = []
        last_position = ""
        for stream_id, fields in rows:
            position = position_of_stream_id(stream_id.decode())
            if position <= self.floor:
                continue  # appended before a crash, not yet acked
            result = self.core.decide(fields.get(b"data", b""))
            if isinstance(result, Rejection):
                rejections.append((stream_id, result))
                continue
            sid = stream_id.decode()
            pending.extend(
                NewEntry(
                    event_id=f"in:{sid}:{i}",
                    causation=f"in:{sid}",
                    type=event_type(ev),
                    event_ns=now,
                    body=encode_event(ev),
                )
                for i, ev in enumerate(result)
            )
            last_position = position
        then: list[Command] = []
        for stream_id, rejection in rejections:
            then.extend(self._report(stream_id, rejection))
        then.append(("XACK", self.in_key, GROUP, *[stream_id for stream_id, _ in rows]))
        if not pending:
            return Finish([("MULTI",), *then, ("EXEC",)])
        # The floor moves now: the next batch is decided only once this append's reply is checked, and
        # intake crashes and rebuilds if it did not land.
        self.floor = last_position
        command, sealed = self.log.append_command(self.core.name, pending, position=last_position, then=then)

        async def resend() -> None:
            await self.log.append(self.core.name, pending, position=last_position, then=then)

        return Finish([command], sealed, resend)

    def _report(self, stream_id: bytes, r: Rejection) -> list[Command]:
        log.warning(
            "command_rejected",
            input_id=stream_id.decode(),
            participant=r.participant,
            client_order_id=r.client_order_id,
            reason=r.reason,
            text=r.text,
        )
        if r.participant is None:
            return []  # nobody we could deliver to: an unknown sender gets no stream of ours
        report = {
            "type": "execution_report",
            "exec_type": "rejected",
            "ord_status": "rejected",
            "client_order_id": r.client_order_id,
            "command": r.command,
            "seq": None,
            "input_id": stream_id.decode(),
            "reason": {"code": r.reason, "text": r.text},
        }
        stream = f"{self.settings.prefix}:out:{r.participant}"
        return [("XADD", stream, "*", "data", msgspec.json.encode(report))]
