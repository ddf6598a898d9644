"""Intake's I/O shell for client commands: decide a batch, append what passed, report and ack the rest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from services.intake.core import Intake, Rejection
from shared.config import Settings
from shared.domain.codec import decode_event, encode_event, event_type
from shared.eventlog.entry import NewEntry, position_of_stream_id
from shared.eventlog.port import EventLog
from shared.resp import Command, RespClient

__all__ = ["Gateway"]

log = structlog.get_logger("greenex.intake")
GROUP = "intake"
CONSUMER = "intake-1"  # one consumer: command order is the order entries reach the log

Row = tuple[bytes, Mapping[bytes, bytes]]


class Gateway:
    def __init__(
        self,
        core: Intake,
        event_log: EventLog,
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
                await self.resp.execute(await self.decide(rows))

    async def handle(self, rows: Sequence[Row]) -> None:
        """Decide a batch and send its reports and XACK (the FastStream subscriber's path)."""
        async with self.lock:
            await self.resp.execute(await self.decide(rows))

    async def decide(self, rows: Sequence[Row]) -> list[Command]:
        """Decide every entry and append the accepted in one call; return the MULTI that reports the
        rejected and XACKs the batch, for the caller to send (the command loop sends it in the same
        write as its next read). The re-drain must not run until that MULTI is sent: it would see a
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
        if pending:
            await self.log.append(self.core.name, pending, position=last_position)
            self.floor = last_position
        finish: list[Command] = [("MULTI",)]
        for stream_id, rejection in rejections:
            finish.extend(self._report(stream_id, rejection))
        finish += [("XACK", self.in_key, GROUP, *[stream_id for stream_id, _ in rows]), ("EXEC",)]
        return finish

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
