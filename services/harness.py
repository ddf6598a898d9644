"""The whole exchange in one process over the in-memory log: the real intake core and every follower
core of the system map, with the reports they make. No Redis, no clock of its own: for tests, replay
benchmarks and anything that wants to run the exchange's decisions fast and deterministically."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.intake.batch import DecidedBatch, Row, decide_batch
from services.intake.core import Intake
from services.intake.reports import REPORTED_TYPES, Delivery, Reporter, rejection_report
from services.runtime.follower import LogFollower
from services.runtime.system import System
from services.system import SYSTEM
from shared.crypto import ExchangeBox, Sealer, new_key
from shared.domain.codec import Event, decode_event, encode_event, event_type
from shared.domain.ledger import OPERATOR
from shared.eventlog.entry import NewEntry
from shared.eventlog.memory import InMemoryEventLog
from shared.protocol import signed

__all__ = ["Input", "InProcessExchange"]

Input = tuple[str, bytes]  # (sender, the command's JSON)


class InProcessExchange:
    """Commands go in through intake's own decision, every core of the map follows the log until
    nothing moves, and reports come out of the same projection the report publisher runs.

    Inputs are numbered `<n>-0` as if read from the command stream; `logged_ns` comes from `clock`,
    so a fixed clock gives byte-identical logs for the same commands.
    """

    def __init__(
        self,
        *,
        system: System = SYSTEM,
        clock: Callable[[], int] = time.time_ns,
        batch: int = 10_000,
        venue: str = "greenex-harness",
        partition: int = 1,
        partitions: int = 1,
    ) -> None:
        self.log = InMemoryEventLog(clock=clock)
        self.clock, self.venue = clock, venue
        # The exchange's secrets, made for this run: nothing outside the process holds them.
        self.operator_secret = secrets.token_hex(32)
        self.sealer = Sealer(new_key())
        self.box = ExchangeBox(X25519PrivateKey.generate().private_bytes_raw())
        self.intake = Intake(
            self.operator_secret, sealer=self.sealer, box=self.box, venue=venue, partition=partition,
            partitions=partitions,
        )  # fmt: skip
        self.followers = [
            LogFollower(core.make(), self.log, batch=batch, producer_keys=self.log.producer_keys)
            for core in system.cores
        ]
        self.reporter = Reporter()
        self.reports: list[Delivery] = []  # every report, in the order the exchange made them
        self._inputs = 0
        self._reported = 0  # the last log seq projected into reports

    def core(self, name: str) -> LogFollower:
        """The follower of one core of the map (its `processor` is the core)."""
        return next(f for f in self.followers if f.processor.name == name)

    def command(self, sender: str, secret: str, **fields: object) -> bytes:
        """A signed command of `sender` for this venue, stamped with the harness clock's time."""
        stamp = {"participant": sender, "venue": self.venue, "sent_ms": self.clock() // 1_000_000}
        return msgspec.json.encode(signed({**stamp, **fields}, secret))

    def operator_command(self, client_order_id: str, action: str, **args: object) -> Input:
        fields = {"type": "operator", "client_order_id": client_order_id, "action": action, "args": args}
        return OPERATOR, self.command(OPERATOR, self.operator_secret, **fields)

    def register(self, participant: str, secret: str, **args: object) -> Input:
        """The operator's command registering a participant with this signing key (sealed here)."""
        key = msgspec.to_builtins(self.sealer.seal(secret.encode(), participant, "k1"))
        return self.operator_command(f"reg-{participant}", "register_participant", participant=participant,
                                     name=participant, key=key, **args)  # fmt: skip

    async def submit(self, commands: Iterable[Input]) -> DecidedBatch:
        """Raw commands `(sender, data)`, as senders write them on their own streams, decided by intake as
        one batch; what passes is appended, then every core runs until the exchange is quiet."""
        inputs: list[tuple[str, Row]] = []
        for sender, payload in commands:
            self._inputs += 1
            inputs.append((sender, (f"{self._inputs}-0".encode(), {b"data": payload})))
        batch = decide_batch(self.intake, inputs, self.clock())
        for _sender, input_id, rejection in batch.rejections:
            if rejection.participant is not None:
                self.reports.append(Delivery(rejection.participant, rejection_report(input_id, rejection)))
        if batch.entries:
            await self.log.append(self.intake.name, batch.entries, position=batch.position)
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
                event_id=f"{OPERATOR}/bench-{self._inputs}/0", causation=f"in:{OPERATOR}:{input_id}",
                type=event_type(event), event_ns=event_ns, body=encode_event(event),
            ))  # fmt: skip
            self.intake.evolve(event)
            self.intake.note_logged(OPERATOR, input_id)
        if entries:
            await self.log.append(self.intake.name, entries, position=self.intake.position)
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
