"""Intake's report publisher: follows the log and writes each participant's reports exactly once."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from services.intake.reports import REPORTED_TYPES, Reporter
from shared.config import Settings
from shared.domain.codec import decode_event
from shared.eventlog.entry import Entry
from shared.resp import Command, RespClient

__all__ = ["ReportPublisher"]


class ReportPublisher:
    """Reports and the cursor go in one MULTI: after a crash nothing is sent twice or skipped.

    Entries at or below the stored cursor only rebuild the reporter's memory of open orders.
    """

    def __init__(self, redis: Redis, resp: RespClient, settings: Settings) -> None:
        self.redis, self.resp, self.settings = redis, resp, settings
        self.reporter = Reporter()
        self.cursor_key = f"{settings.prefix}:reports:cursor"
        self.cursor = 0

    async def load_cursor(self) -> None:
        self.cursor = int(await self.redis.get(self.cursor_key) or 0)

    async def publish(self, entries: Sequence[Entry]) -> None:
        if writes := self.prepare(entries):
            await self.resp.execute(writes)

    def prepare(self, entries: Sequence[Entry]) -> list[Command]:
        """The MULTI that writes the batch's reports and moves the cursor ([] when nothing is new);
        the caller sends it (the report loop, ahead of its next read)."""
        prefix = self.settings.prefix
        writes: list[Command] = [("MULTI",)]
        for entry in entries:
            if entry.type not in REPORTED_TYPES:
                continue
            reports = self.reporter.reports(entry.seq, decode_event(entry.body), entry.hash)
            if entry.seq <= self.cursor:
                continue
            writes.extend(
                ("XADD", f"{prefix}:{stream}", "*", "data", msgspec.json.encode(payload))
                for stream, payload in reports
            )
        if not entries or entries[-1].seq <= self.cursor:
            return []
        self.cursor = entries[-1].seq
        return [*writes, ("SET", self.cursor_key, self.cursor), ("EXEC",)] if len(writes) > 1 else []
