"""Intake's report publisher: follows the log and writes each participant's reports exactly once."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from services.intake.reports import REPORTED_TYPES, Reporter
from shared.config import Settings
from shared.domain.codec import decode_event
from shared.eventlog.entry import Entry

__all__ = ["ReportPublisher"]


class ReportPublisher:
    """Reports and the cursor go in one MULTI: after a crash nothing is sent twice or skipped.

    Entries at or below the stored cursor only rebuild the reporter's memory of open orders.
    """

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis, self.settings = redis, settings
        self.reporter = Reporter()
        self.cursor_key = f"{settings.prefix}:reports:cursor"
        self.cursor = 0

    async def load_cursor(self) -> None:
        self.cursor = int(await self.redis.get(self.cursor_key) or 0)

    async def publish(self, entries: Sequence[Entry]) -> None:
        prefix = self.settings.prefix
        pipe = self.redis.pipeline(transaction=True)
        fresh = 0
        for entry in entries:
            if entry.type not in REPORTED_TYPES:
                continue
            reports = self.reporter.reports(entry.seq, decode_event(entry.body), entry.hash)
            if entry.seq <= self.cursor:
                continue
            for stream, payload in reports:
                pipe.xadd(f"{prefix}:{stream}", {"data": msgspec.json.encode(payload)})
                fresh += 1
        if entries and entries[-1].seq > self.cursor:
            self.cursor = entries[-1].seq
            if fresh:
                pipe.set(self.cursor_key, self.cursor)
                await pipe.execute()
