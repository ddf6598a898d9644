"""Intake's report publisher: follows the log and writes each participant's reports exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import cast

import msgspec
from redis.asyncio import Redis

from services.intake.reports.execution import REPORTED_TYPES, Reporter
from services.runtime.snapshots import Snapshot, SnapshotStore, encode_record
from shared.domain.codec import decode_event
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import GENESIS_HASH, Entry
from shared.eventlog.freshness import Freshness
from shared.eventlog.port import LogCorrupt, LogReader
from shared.keys import Keys
from shared.order_reports import ORDER_REPORTED_TYPES, report_effect, written_by_matching
from shared.resp import Command

__all__ = ["PUBLISHED_TYPES", "SNAPSHOT_NAME", "ReportPublisher"]

SNAPSHOT_NAME = "intake-reports"  # its snapshots' key member (intake's Redis user writes only its own)

# Matching reports its own events (services/matching/reports.py); this publisher every other kind.
PUBLISHED_TYPES = REPORTED_TYPES - ORDER_REPORTED_TYPES
_LOOK_BACK = 200  # reports read back at a time per stream for a lost cursor
_json = msgspec.json.Decoder()


_Rows = list[tuple[bytes, dict[bytes, bytes]]]


def _last_seq(rows: _Rows, *, matching_reports: bool) -> int:
    """The seq of the newest report this publisher wrote (rows newest first) that answers a log entry;
    0 if none. `matching_reports`: matching wrote its kinds, which say nothing of how far this got."""
    for _, fields in rows:
        try:
            report = _json.decode(fields.get(b"data", b"{}"))
            seq = report.get("seq")
        except (msgspec.DecodeError, AttributeError):
            continue
        if matching_reports and written_by_matching(report):
            continue
        if isinstance(seq, int):
            return seq
    return 0


class ReportPublisher:
    """Reports and the cursor go in one MULTI: after a crash nothing is sent twice or skipped.

    Entries at or below the stored cursor only rebuild the reporter's memory of open orders. That memory
    is snapshotted every `snapshot_every` entries in the MULTI of a batch (so a snapshot is never ahead
    of the cursor), and a start reads the log from the newest snapshot, not from its first entry.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        producer_keys: ProducerKeys,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = 0,
        *,
        matching_reports: bool = True,
    ) -> None:
        self.redis, self.keys, self.producer_keys = redis, keys, producer_keys
        # Whether matching writes its events' reports (Settings.reports_in_append); when not (the strict
        # profile), this publisher writes every report.
        self.matching_reports = matching_reports
        self.published = PUBLISHED_TYPES if matching_reports else REPORTED_TYPES
        self.snapshots, self.snapshot_every = snapshots, snapshot_every
        self.reporter = Reporter()
        self.freshness = Freshness()
        self.cursor = 0  # the last seq whose reports are written
        self.folded, self.folded_hash = 0, GENESIS_HASH  # the last entry folded into the reporter
        self.snapshot_seq = 0

    async def resume(self, participants: Iterable[str], event_log: LogReader) -> None:
        """The cursor, and the reporter's memory from its newest valid snapshot (which is never ahead of
        the cursor: both are written in one MULTI)."""
        await self.load_cursor(participants)
        snap = await self.snapshots.load(SNAPSHOT_NAME, event_log) if self.snapshots is not None else None
        if snap is None:
            return
        self.reporter.restore(snap.state)
        self.freshness = Freshness(snap.freshness)
        self.folded, self.folded_hash, self.snapshot_seq = snap.seq, snap.head_hash, snap.seq
        self.cursor = max(self.cursor, snap.seq)

    async def load_cursor(self, participants: Iterable[str] = ()) -> None:
        """The stored cursor; without one (a lost key), the highest seq any report stream already holds:
        reports and cursor are written in one MULTI, so the streams say how far it got."""
        stored = await self.redis.get(self.keys.report_cursor)
        if stored is not None:
            self.cursor = int(stored)
            return
        tape = [] if self.matching_reports else [self.keys.trades]  # the trade tape is matching's, or ours
        streams = [*tape, *(self.keys.reports(p) for p in sorted(participants))]
        self.cursor = max([await self._newest_seq(stream) for stream in streams], default=0)

    async def _newest_seq(self, stream: str) -> int:
        """The seq of the newest report of this publisher's on `stream`, reading back page by page: an
        active participant's newest reports may all be matching's (or seq-less rejections)."""
        newest = "+"
        while rows := cast(_Rows, await self.redis.xrevrange(stream, max=newest, count=_LOOK_BACK)):
            if seq := _last_seq(rows, matching_reports=self.matching_reports):
                return seq
            newest = "(" + rows[-1][0].decode()
        return 0

    def prepare(self, entries: Sequence[Entry]) -> list[Command]:
        """The MULTI that writes the batch's reports and moves the cursor ([] when nothing is new);
        the caller sends it (the report loop, ahead of its next read)."""
        if entries and entries[0].seq != self.folded + 1:
            expected = self.folded + 1
            why = f"the report publisher expected seq {expected}, the log gave {entries[0].seq} (trimmed?)"
            raise LogCorrupt(expected, why)
        for entry in entries:
            if entry.type in REPORTED_TYPES:  # published or only remembered
                self.producer_keys.check_entry(entry)  # a forged entry never becomes a report,
                self.freshness.check(entry)  # nor a copy of a genuine one
        writes: list[Command] = [("MULTI",)]
        for entry in entries:
            if entry.type not in self.published:
                if entry.type in ORDER_REPORTED_TYPES:  # matching reports it; remembered all the same, so
                    self.reporter.order_reports(entry.seq, decode_event(entry.body))  # a switch to the
                continue  # strict profile (the publisher writes them all then) knows each open order
            deliveries = self.reporter.reports(entry.seq, decode_event(entry.body), entry.hash)
            if entry.seq <= self.cursor:
                continue
            writes.extend(report_effect(self.keys, delivery).as_command() for delivery in deliveries)
        if not entries:
            return []
        self.folded, self.folded_hash = entries[-1].seq, entries[-1].hash
        snapshot = self._snapshot_commands()
        if entries[-1].seq <= self.cursor and not snapshot:
            return []
        self.cursor = max(self.cursor, entries[-1].seq)
        if len(writes) == 1 and not snapshot:
            return []
        return [*writes, ("SET", self.keys.report_cursor, self.cursor), *snapshot, ("EXEC",)]

    def _snapshot_commands(self) -> list[Command]:
        """LPUSH and LTRIM of a snapshot as of `folded`, when one is due."""
        if self.snapshots is None or not self.snapshot_every:
            return []
        if self.folded - self.snapshot_seq < self.snapshot_every:
            return []
        snap = Snapshot(
            service=SNAPSHOT_NAME, seq=self.folded, head_hash=self.folded_hash, logged_position="",
            taken_ns=time.time_ns(), state=self.reporter.snapshot(), freshness=self.freshness.state(),
        )  # fmt: skip
        self.snapshot_seq = self.folded
        key = self.snapshots.key(SNAPSHOT_NAME)
        record = encode_record(snap, self.producer_keys)
        return [("LPUSH", key, record), ("LTRIM", key, 0, self.snapshots.keep - 1)]
