"""The whole exchange in one process over the in-memory log: the real intake core and every follower
core of the system map, with the reports they make. No Redis, no clock of its own: for tests, replay
benchmarks and anything that wants to run the exchange's decisions fast and deterministically."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from services.intake.batch import DecidedBatch, Row, decide_batch
from services.intake.core import Intake
from services.intake.reports import REPORTED_TYPES, Delivery, Reporter, rejection_report
from services.runtime.follower import LogFollower
from services.runtime.system import System
from services.system import SYSTEM
from shared.domain.codec import Event, decode_event, encode_event, event_type
from shared.eventlog.entry import NewEntry, position_of_stream_id
from shared.eventlog.memory import InMemoryEventLog

__all__ = ["InProcessExchange"]


class InProcessExchange:
    """Commands go in through intake's own decision, every core of the map follows the log until
    nothing moves, and reports come out of the same projection the report publisher runs.

    Inputs are numbered `<n>-0` as if read from the command stream; `logged_ns` comes from `clock`,
    so a fixed clock gives byte-identical logs for the same commands.
    """

    def __init__(
        self,
        operator_secret: str,
        *,
        system: System = SYSTEM,
        clock: Callable[[], int] = time.time_ns,
        batch: int = 10_000,
    ) -> None:
        self.log = InMemoryEventLog(clock=clock)
        self.clock = clock
        self.intake = Intake(operator_secret)
        self.followers = [LogFollower(core.make(), self.log, batch=batch) for core in system.cores]
        self.reporter = Reporter()
        self.reports: list[Delivery] = []  # every report, in the order the exchange made them
        self._logged_position = ""
        self._inputs = 0
        self._reported = 0  # the last log seq projected into reports

    def core(self, name: str) -> LogFollower:
        """The follower of one core of the map (its `processor` is the core)."""
        return next(f for f in self.followers if f.processor.name == name)

    async def submit(self, payloads: Iterable[bytes]) -> DecidedBatch:
        """Raw commands, as clients write them (`data` of a command stream entry), decided by intake as
        one batch; what passes is appended, then every core runs until the exchange is quiet."""
        rows: list[Row] = []
        for payload in payloads:
            self._inputs += 1
            rows.append((f"{self._inputs}-0".encode(), {b"data": payload}))
        batch = decide_batch(self.intake, rows, self.clock(), self._logged_position)
        for input_id, rejection in batch.rejections:
            if rejection.participant is not None:
                self.reports.append(Delivery(rejection.participant, rejection_report(input_id, rejection)))
        if batch.entries:
            await self.log.append(self.intake.name, batch.entries, position=batch.position)
            self._logged_position = batch.position
        await self.settle()
        return batch

    async def append_intake_events(self, events: Iterable[Event]) -> None:
        """Events exactly as intake would append them for one batch of inputs, without the commands
        (a benchmark building a large log fast); each event stands for one input."""
        event_ns = self.clock()
        entries: list[NewEntry] = []
        for event in events:
            self._inputs += 1
            input_id = f"{self._inputs}-0"
            entries.append(NewEntry(
                event_id=f"in:{input_id}:0", causation=f"in:{input_id}", type=event_type(event),
                event_ns=event_ns, body=encode_event(event),
            ))  # fmt: skip
            self.intake.evolve(event)
        if entries:
            self._logged_position = position_of_stream_id(f"{self._inputs}-0")
            await self.log.append(self.intake.name, entries, position=self._logged_position)
        await self.settle()

    async def settle(self) -> None:
        """Run every core over the log until none has anything left to read or answer, then make the
        reports of everything new."""
        moved = True
        while moved:
            moved = False
            for follower in self.followers:
                if entries := await self.log.read(follower.cursor, follower.batch):
                    await follower.step(entries)
                    moved = True
        while entries := await self.log.read(self._reported, 10_000):
            for entry in entries:
                if entry.type in REPORTED_TYPES:
                    event = decode_event(entry.body)
                    self.reports.extend(self.reporter.reports(entry.seq, event, entry.hash))
            self._reported = entries[-1].seq
