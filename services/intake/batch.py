"""Intake's decision over a batch of raw inputs: what to append, what to reject. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from services.intake.core import Intake, Rejection
from shared.domain.codec import encode_event, event_type
from shared.eventlog.entry import NewEntry, position_of_stream_id

__all__ = ["DecidedBatch", "Row", "decide_batch"]

# An input as Redis returns it: its stream id and its fields (a client writes `data <json>`).
Row = tuple[bytes, Mapping[bytes, bytes]]


class DecidedBatch(NamedTuple):
    entries: list[NewEntry]  # the accepted inputs' events, to append in this order
    position: str  # the producer position of the last accepted input; "" when nothing is appended
    rejections: list[tuple[str, Rejection]]  # (input id, why), to report to their senders
    input_ids: list[bytes]  # every input of the batch, to acknowledge once the batch is sent


def decide_batch(core: Intake, rows: Sequence[Row], now: int, logged_position: str) -> DecidedBatch:
    """Decide every input after `logged_position` (inputs at or below it were appended before a crash
    and are only acknowledged); the core's state moves with every accepted one."""
    entries: list[NewEntry] = []
    rejections: list[tuple[str, Rejection]] = []
    last_position = ""
    for stream_id, fields in rows:
        input_id = stream_id.decode()
        position = position_of_stream_id(input_id)
        if position <= logged_position:
            continue
        result = core.decide(fields.get(b"data", b""))
        if isinstance(result, Rejection):
            rejections.append((input_id, result))
            continue
        entries.extend(
            NewEntry(
                event_id=f"in:{input_id}:{i}",
                causation=f"in:{input_id}",
                type=event_type(event),
                event_ns=now,
                body=encode_event(event),
            )
            for i, event in enumerate(result)
        )
        last_position = position
    return DecidedBatch(entries, last_position if entries else "", rejections, [i for i, _ in rows])
