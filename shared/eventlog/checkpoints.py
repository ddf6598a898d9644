"""What a log checkpoint signs, and its check: anyone holding the log (or an archive of it) and the
exchange's Ed25519 public key can confirm the log up to the checkpoint is the one the exchange signed."""

from __future__ import annotations

import msgspec

from shared.crypto import verify_checkpoint
from shared.domain.codec import tags
from shared.domain.ledger import LogCheckpoint
from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt
from shared.partitions import partition_of_signed_venue

__all__ = ["checkpoint_in", "checkpoint_message", "checkpoint_problem"]

_CHECKPOINT = next(iter(tags(LogCheckpoint)))


def checkpoint_in(entry: Entry) -> LogCheckpoint | None:
    """The checkpoint a log entry carries (None for any other entry); LogCorrupt naming the entry if it
    is a checkpoint that does not decode."""
    if entry.type != _CHECKPOINT:
        return None
    try:
        return msgspec.msgpack.decode(entry.body, type=LogCheckpoint)
    except msgspec.DecodeError as exc:
        raise LogCorrupt(entry.seq, f"an undecodable checkpoint: {exc}") from exc


def checkpoint_message(venue: str, seq: int, link: bytes, previous: int) -> bytes:
    """The signed text: the venue (a checkpoint cannot be passed off as another exchange's), the seq and
    its chain link (which commits to every entry up to seq through the hash chain), and the seq of the
    checkpoint before it (so checkpoints chain too: none can be removed from between two others)."""
    return f"greenex checkpoint:{venue}:{seq}:{link.hex()}:{previous}".encode()


def checkpoint_problem(
    checkpoint: LogCheckpoint, link_at_seq: bytes | None, public_key: bytes, partition: int | None = None
) -> str | None:
    """Why a checkpoint does not hold against the log (None when it does). `partition`: the partition
    this log is meant to be; its checkpoints must say so (shared/partitions.partition_venue)."""
    if partition is not None and (signed := partition_of_signed_venue(checkpoint.venue)) != partition:
        return f"signed for partition {signed} ({checkpoint.venue!r}), not partition {partition}"
    if checkpoint.public_key != public_key.hex():
        return f"signed by key {checkpoint.public_key[:16]}..., not the exchange's {public_key.hex()[:16]}..."
    if link_at_seq is None:
        return f"covers seq {checkpoint.seq}, which was not seen within the lookback"
    if checkpoint.link != link_at_seq.hex():
        return f"its link for seq {checkpoint.seq} is not the log's"
    message = checkpoint_message(checkpoint.venue, checkpoint.seq, link_at_seq, checkpoint.previous)
    if not verify_checkpoint(public_key, message, bytes.fromhex(checkpoint.signature)):
        return "its Ed25519 signature does not verify"
    return None
