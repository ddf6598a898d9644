"""Runs a Processor against the event log: read a batch, decide, append the answers in one atomic call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

from services.runtime.processor import Processor
from shared.domain.codec import decode_event, encode_event, event_type
from shared.eventlog.entry import Entry, NewEntry, position_of_seq
from shared.eventlog.port import EventLog

__all__ = ["LogFollower"]

log = structlog.get_logger("greenex.runtime")

BatchHook = Callable[[Sequence[Entry], Sequence[Entry]], Awaitable[None]]


class LogFollower:
    """Feeds one processor every log entry in order; exactly-once answers through producer positions.

    On start it replays the log from seq 0 through the same `process` path; answers to inputs at or below
    the producer's stored position are already in the log and are dropped, later ones are appended.
    """

    def __init__(
        self,
        processor: Processor,
        event_log: EventLog,
        *,
        batch: int = 500,
        block_ms: int = 100,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.processor = processor
        self.log = event_log
        self.batch = batch
        self.block_ms = block_ms
        self.on_batch = on_batch
        self.cursor = 0  # last log seq fed to the processor
        self.floor = ""  # producer position already in the log
        self.caught_up = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self.floor = await self.log.position(self.processor.name)
        log.info("follower_started", producer=self.processor.name, position=self.floor)
        while not stop.is_set():
            entries = await self.log.follow(self.cursor, self.batch, self.block_ms)
            if not entries:
                self.caught_up.set()
                continue
            await self.step(entries)

    async def step(self, entries: Sequence[Entry]) -> list[Entry]:
        """Process one batch; return what was appended."""
        proc = self.processor
        name, inputs, floor = proc.name, proc.inputs, self.floor
        pending: list[NewEntry] = []
        last_answered = 0
        for entry in entries:
            if entry.producer == name or entry.type not in inputs:
                continue
            answers = proc.process(entry.seq, entry.event_ns, decode_event(entry.body))
            if not answers or position_of_seq(entry.seq) <= floor:
                continue
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
        self.cursor = entries[-1].seq
        appended: list[Entry] = []
        if pending:
            position = position_of_seq(last_answered)
            appended = await self.log.append(name, pending, position=position)
            self.floor = position
        if self.on_batch is not None:
            await self.on_batch(entries, appended)
        return appended
