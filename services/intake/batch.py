"""Intake's decision over a batch of raw inputs from the senders' streams: what to append, what to
report at once, what to acknowledge. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from services.intake.core import Intake, Rejection
from shared.domain.codec import encode_event, event_type
from shared.eventlog.entry import NewEntry

__all__ = ["DecidedBatch", "Input", "Row", "decide_batch"]

# An input as Redis returns it: its stream id and its fields (a client writes `data <json>`).
Row = tuple[bytes, Mapping[bytes, bytes]]
Input = tuple[str, Row]  # (the sender whose stream it came from, the row)


class DecidedBatch(NamedTuple):
    entries: list[NewEntry]  # the authenticated inputs' verdicts, to append in this order
    position: str  # intake's producer position after this batch; "" when nothing is appended
    rejections: list[tuple[str, str, Rejection]]  # (sender, input id, why), to report at once
    acks: dict[str, list[bytes]]  # sender -> the input ids to acknowledge once the batch is sent


def decide_batch(core: Intake, inputs: Sequence[Input], now: int) -> DecidedBatch:
    """Decide every input not yet in the log (inputs already logged before a crash are only
    acknowledged); the core's state moves with every authenticated one."""
    entries: list[NewEntry] = []
    rejections: list[tuple[str, str, Rejection]] = []
    acks: dict[str, list[bytes]] = {}
    for sender, (stream_id, fields) in inputs:
        acks.setdefault(sender, []).append(stream_id)
        input_id = stream_id.decode()
        if core.already_logged(sender, input_id):
            continue
        verdict = core.decide(sender, input_id, fields.get(b"data"), now)
        if isinstance(verdict, Rejection):
            rejections.append((sender, input_id, verdict))
            continue
        entries.extend(
            NewEntry(
                event_id=f"{sender}/{verdict.client_order_id}/{i}",
                causation=f"in:{sender}:{input_id}",
                type=event_type(event),
                event_ns=now,
                body=encode_event(event),
            )
            for i, event in enumerate(verdict.events)
        )
        core.note_logged(sender, input_id)
    return DecidedBatch(entries, core.position if entries else "", rejections, acks)
