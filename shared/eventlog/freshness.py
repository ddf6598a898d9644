"""Every input answered once, in order: what makes a copy of a genuine entry stand out.

A producer tag proves who wrote an entry's content, not where in the log it sits: the tag cannot cover
the seq (the append script picks it, after the producer tagged), so a writer holding a service's Redis
password could append a byte-for-byte copy of a genuine entry (a CashDeposited, say) and every tag
would verify. What the tag does cover is the entry's event id and causation, and those name the input
it answers and its place among that input's answers:

| producer | causation | event id | order along the log |
|---|---|---|---|
| a core (and the checkpoint process) | `log:<n>` | `<producer>:<n>:<i>` | (n, i) rises, per producer |
| intake | `in:<sender>:<stream id>` | `<sender>/<client order id>/<i>` | (stream id, i) rises, per sender |
| transfers | `xfer:<partition>:<n>` | `<producer>:p<partition>:<n>` | n rises, per source partition |

A core answers log entries in log order and appends all the answers to one entry at once; intake
decides each sender's stream in stream-id order (a lost read is re-drained before the next one). So a
copy always breaks the rise, and so does an answer given twice. The state is one key per producer and
per sender: small enough to keep in a follower's snapshot.
"""

from __future__ import annotations

import re

import msgspec

from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt
from shared.partitions import TransferRef, transfer_event_id, transfer_of_causation

__all__ = ["Freshness", "FreshnessState"]

Mark = tuple[int, int, int]  # (cause seq or stream-id ms, 0 or stream-id sequence, answer index)


class FreshnessState(msgspec.Struct, frozen=True, array_like=True):
    """What a snapshot keeps: the last mark of every producer (log causes) and sender (intake)."""

    answers: dict[str, Mark] = {}
    inputs: dict[str, Mark] = {}


class Freshness:
    """Refuses an entry that does not come after its producer's (or its sender's) previous one."""

    def __init__(self, state: FreshnessState | None = None) -> None:
        state = state or FreshnessState()
        self._answers: dict[str, Mark] = dict(state.answers)
        self._inputs: dict[str, Mark] = dict(state.inputs)

    def state(self) -> FreshnessState:
        return FreshnessState(dict(self._answers), dict(self._inputs))

    def check(self, entry: Entry) -> None:
        kind, _, ref = entry.causation.partition(":")
        if kind == "log":
            key, last = entry.producer, self._answers
            mark = self._answer_mark(entry, ref)
        elif kind == "xfer":  # one source partition's transfers, credited in its log order
            transfer = self._transfer(entry, ref)
            key, last = f"{entry.producer}<-{transfer.source}", self._answers
            mark = transfer.seq, 0, 0
        elif kind == "in":
            sender, _, stream_id = ref.rpartition(":")
            key, last = sender, self._inputs
            mark = self._input_mark(entry, sender, stream_id)
        else:
            raise LogCorrupt(entry.seq, f"names no input it answers (causation {entry.causation!r})")
        previous = last.get(key)
        if previous is not None and mark <= previous:
            raise LogCorrupt(
                entry.seq,
                f"{entry.event_id!r} does not come after {key}'s previous entry: a copy, or an answer "
                "given twice",
            )
        last[key] = mark

    @staticmethod
    def _answer_mark(entry: Entry, cause: str) -> Mark:
        # One anchored regex: every entry of every replay passes here (loadtests/RESULTS.md, "Replay").
        match = _ANSWER_ID.fullmatch(entry.event_id)
        if match is None or match[1] != entry.producer or match[2] != cause:
            raise LogCorrupt(entry.seq, f"event id {entry.event_id!r} is not {entry.producer}:{cause}:<i>")
        return int(match[2]), 0, int(match[3])

    @staticmethod
    def _transfer(entry: Entry, ref: str) -> TransferRef:
        transfer = transfer_of_causation(ref)
        if transfer is None or entry.event_id != transfer_event_id(entry.producer, transfer):
            raise LogCorrupt(entry.seq, f"event id {entry.event_id!r} does not answer transfer {ref!r}")
        return transfer

    @staticmethod
    def _input_mark(entry: Entry, sender: str, stream_id: str) -> Mark:
        match, stream = _INPUT_ID.fullmatch(entry.event_id), _STREAM_ID.fullmatch(stream_id)
        if match is None or stream is None or match[1] != sender:
            raise LogCorrupt(entry.seq, f"event id {entry.event_id!r} does not answer {sender}'s {stream_id}")
        return int(stream[1]), int(stream[2]), int(match[2])


# ASCII digits only (`\d` would take "²") and at most 20 of them (int() of a huge string is slow).
_ANSWER_ID = re.compile(r"([^:]+):([0-9]{1,20}):([0-9]{1,20})")
_INPUT_ID = re.compile(r"([^/]+)/.*/([0-9]{1,20})", re.DOTALL)
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
