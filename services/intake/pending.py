"""Intake's pending entries (read, never acked): how often each was delivered, which to read next and how
many together, and the MULTI that buries one in the dead-letter stream. Builds commands; no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from services.intake.deadletters import DEAD_AFTER, dead_letter_fields
from shared.keys import Keys
from shared.resp import Command

__all__ = [
    "CONSUMER",
    "GROUP",
    "Pending",
    "arrival",
    "list_commands",
    "pending_of",
    "next_run",
    "read_commands",
    "bury_commands",
]

GROUP = "intake"
CONSUMER = "intake-1"  # one consumer: command order is the order entries reach the log
_PAGE = 500  # pending entries listed per stream at a time; the re-drain lists again once they are done


class Pending(NamedTuple):
    """One entry Redis delivered to intake's consumer and intake has not acked."""

    sender: str
    input_id: bytes
    # How often Redis handed it to intake: every XREADGROUP that returns it counts, `>` or an explicit id
    # (but not one trimmed from its stream, which comes back empty and is decided as malformed anyway).
    deliveries: int

    @property
    def dead(self) -> bool:
        return self.deliveries >= DEAD_AFTER

    @property
    def suspect(self) -> bool:
        """Delivered and not acked more than once: its batch failed again after a re-drain, and this may
        be why. It is decided alone, so that it cannot take good commands down with it."""
        return self.deliveries > 1


def arrival(input_id: bytes) -> tuple[int, int]:
    """A stream id as a sortable pair (Redis stamps ids with its clock: this is the order it took them in)."""
    ms, _, n = input_id.partition(b"-")
    return int(ms), int(n or 0)


def list_commands(keys: Keys, senders: Sequence[str]) -> list[Command]:
    """XPENDING (extended form) of this consumer's entries on every sender's stream."""
    return [("XPENDING", keys.commands(s), GROUP, "-", "+", _PAGE, CONSUMER) for s in senders]


def pending_of(senders: Sequence[str], replies: Sequence[Any]) -> list[Pending]:
    """The entries the XPENDING replies list, in the order Redis took them in (as the live read)."""
    found = [
        Pending(sender, input_id, int(deliveries))
        for sender, reply in zip(senders, replies, strict=True)
        for input_id, _consumer, _idle_ms, deliveries in reply
    ]
    return sorted(found, key=lambda p: arrival(p.input_id))


def next_run(pending: Sequence[Pending]) -> list[Pending]:
    """What to decide next, in arrival order: the first entry alone if it is a suspect, otherwise every
    entry up to the first suspect (none of them is dead: those are buried first)."""
    if pending[0].suspect:
        return [pending[0]]
    run: list[Pending] = []
    for entry in pending:
        if entry.suspect:
            break
        run.append(entry)
    return run


def read_commands(keys: Keys, run: Sequence[Pending]) -> list[Command]:
    """XREADGROUPs that deliver exactly `run` and nothing after it: a run is the start of the pending
    list in arrival order, so on each stream it is that stream's first n pending entries (`0`, COUNT n).
    Reading only what is decided now matters: every read counts as a delivery, and an entry read while
    the one before it crashed intake would be counted toward its own dead letter unjustly."""
    counts = Counter(entry.sender for entry in run)
    return [("XREADGROUP", "GROUP", GROUP, CONSUMER, "COUNT", n, "STREAMS", keys.commands(sender), "0")
            for sender, n in counts.items()]  # fmt: skip


def bury_commands(keys: Keys, buried: Sequence[tuple[Pending, bytes]], now_ns: int) -> list[Command]:
    """One MULTI that copies each (entry, its data) to the dead-letter stream and XACKs it: never lost
    (acked, no copy), never both (a copy, still pending). Inside it an XADD could fail only on a key of
    the wrong type, which only admin could make."""
    commands: list[Command] = [("MULTI",)]
    for entry, data in buried:
        fields = dead_letter_fields(entry.sender, entry.input_id, data, entry.deliveries, now_ns)
        commands += [
            ("XADD", keys.dead_letters, "*", *fields),
            ("XACK", keys.commands(entry.sender), GROUP, entry.input_id),
        ]
    return [*commands, ("EXEC",)]
