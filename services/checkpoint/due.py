"""Which entries the checkpoint process signs: pure, and light enough for the system map to import."""

from __future__ import annotations

from collections.abc import Sequence

from shared.crypto import CheckpointKey
from shared.domain.codec import tags
from shared.domain.ledger import LogCheckpoint, TradingDayClosed
from shared.eventlog.checkpoints import checkpoint_message
from shared.eventlog.entry import Entry

__all__ = ["CHECKPOINT", "WAKES_ON", "due_checkpoints", "due_reason"]

CHECKPOINT = "checkpoint"  # the producer name of LogCheckpoint entries
WAKES_ON = tags(TradingDayClosed)
_CLOSE = next(iter(WAKES_ON))


def due_reason(entry: Entry, every: int) -> str:
    """Why the checkpoint process signs this entry ("close_of_day", "interval"), or "" if it does not."""
    if entry.producer == CHECKPOINT:
        return ""
    return "close_of_day" if entry.type == _CLOSE else "interval" if entry.seq % every == 0 else ""


def due_checkpoints(
    entries: Sequence[Entry], every: int, key: CheckpointKey, venue: str, previous: int = 0
) -> list[LogCheckpoint]:
    """The checkpoints a batch of entries calls for: at seq multiples of `every` and at every close of
    day, each naming the one before it (`previous`: the last one due before the batch). Pure and
    deterministic (same log, same key: same checkpoints)."""
    due: list[LogCheckpoint] = []
    for entry in entries:
        if reason := due_reason(entry, every):
            signature = key.sign(checkpoint_message(venue, entry.seq, entry.hash, previous))
            due.append(LogCheckpoint(
                venue=venue, seq=entry.seq, link=entry.hash.hex(), previous=previous,
                public_key=key.public_key.hex(), signature=signature.hex(), reason=reason,
            ))  # fmt: skip
            previous = entry.seq
    return due
