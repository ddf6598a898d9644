"""Intake's report publisher: follows the log and writes each participant's reports exactly once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
from redis.asyncio import Redis

from services.intake.reports.delivery import Delivery
from services.intake.reports.execution import REPORTED_TYPES, Reporter
from shared.domain.codec import decode_event
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import Entry
from shared.eventlog.freshness import Freshness
from shared.eventlog.redis_log import Effect
from shared.keys import Keys
from shared.reports import encode_report
from shared.resp import Command

__all__ = ["ReportPublisher", "delivery_effect"]

_LOOK_BACK = 50  # reports read back per stream for a lost cursor: past any seq-less rejections at the end
_json = msgspec.json.Decoder()


def _last_seq(rows: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
    """The seq of the newest report (rows newest first) that answers a log entry; 0 if none."""
    for _, fields in rows:
        try:
            seq = _json.decode(fields.get(b"data", b"{}")).get("seq")
        except (msgspec.DecodeError, AttributeError):
            continue
        if isinstance(seq, int):
            return seq
    return 0


def delivery_effect(keys: Keys, delivery: Delivery) -> Effect:
    """The XADD that puts one report on its stream."""
    stream = keys.trades if delivery.participant is None else keys.reports(delivery.participant)
    return Effect("XADD", stream, ("*", "data", encode_report(delivery.report)))


class ReportPublisher:
    """Reports and the cursor go in one MULTI: after a crash nothing is sent twice or skipped.

    Entries at or below the stored cursor only rebuild the reporter's memory of open orders.
    """

    def __init__(self, redis: Redis, keys: Keys, producer_keys: ProducerKeys) -> None:
        self.redis, self.keys, self.producer_keys = redis, keys, producer_keys
        self.reporter = Reporter()
        self.freshness = Freshness()  # it reads the log from its first entry at every start
        self.cursor = 0

    async def load_cursor(self, participants: Iterable[str] = ()) -> None:
        """The stored cursor; without one (a lost key), the highest seq any report stream already holds:
        reports and cursor are written in one MULTI, so the streams say how far it got."""
        stored = await self.redis.get(self.keys.report_cursor)
        if stored is not None:
            self.cursor = int(stored)
            return
        streams = [self.keys.trades, *(self.keys.reports(p) for p in sorted(participants))]
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xrevrange(stream, count=_LOOK_BACK)
        self.cursor = max((_last_seq(rows) for rows in await pipe.execute()), default=0)

    def prepare(self, entries: Sequence[Entry]) -> list[Command]:
        """The MULTI that writes the batch's reports and moves the cursor ([] when nothing is new);
        the caller sends it (the report loop, ahead of its next read)."""
        for entry in entries:
            if entry.type in REPORTED_TYPES:
                self.producer_keys.check_entry(entry)  # a forged entry never becomes a report,
                self.freshness.check(entry)  # nor a copy of a genuine one
        writes: list[Command] = [("MULTI",)]
        for entry in entries:
            if entry.type not in REPORTED_TYPES:
                continue
            deliveries = self.reporter.reports(entry.seq, decode_event(entry.body), entry.hash)
            if entry.seq <= self.cursor:
                continue
            writes.extend(delivery_effect(self.keys, delivery).as_command() for delivery in deliveries)
        if not entries or entries[-1].seq <= self.cursor:
            return []
        self.cursor = entries[-1].seq
        if len(writes) == 1:
            return []
        return [*writes, ("SET", self.keys.report_cursor, self.cursor), ("EXEC",)]
