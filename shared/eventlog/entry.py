"""The log entry envelope: sequence, ids, causation, timestamps and the SHA-256 hash chain."""

from __future__ import annotations

import hashlib

import msgspec

__all__ = [
    "GENESIS_HASH",
    "Entry",
    "NewEntry",
    "seal",
    "entry_hash",
    "position_of_seq",
    "position_of_stream_id",
]

GENESIS_HASH = bytes(32)


class NewEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What a writer hands the log: the log assigns seq, producer, logged_ns and the hashes."""

    event_id: str
    causation: str  # id of the command or event this entry answers
    type: str  # the event's tag, so readers can skip without decoding the body
    event_ns: int  # when it happened, as passed into the core
    body: bytes  # the encoded event


class Entry(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    seq: int
    event_id: str
    causation: str
    producer: str
    type: str
    event_ns: int
    logged_ns: int
    body: bytes
    prev_hash: bytes
    hash: bytes


_encoder = msgspec.msgpack.Encoder()


def entry_hash(
    prev_hash: bytes,
    seq: int,
    event_id: str,
    causation: str,
    producer: str,
    type_: str,
    event_ns: int,
    logged_ns: int,
    body: bytes,
) -> bytes:
    """SHA-256 over the previous hash and a canonical msgpack array of every other field."""
    payload = _encoder.encode([seq, event_id, causation, producer, type_, event_ns, logged_ns, body])
    return hashlib.sha256(prev_hash + payload).digest()


def seal(new: NewEntry, *, seq: int, producer: str, logged_ns: int, prev_hash: bytes) -> Entry:
    """Turn a writer's entry into a chained log entry at `seq`."""
    digest = entry_hash(
        prev_hash, seq, new.event_id, new.causation, producer, new.type, new.event_ns, logged_ns, new.body
    )
    return Entry(
        seq=seq,
        event_id=new.event_id,
        causation=new.causation,
        producer=producer,
        type=new.type,
        event_ns=new.event_ns,
        logged_ns=logged_ns,
        body=new.body,
        prev_hash=prev_hash,
        hash=digest,
    )


def position_of_seq(seq: int) -> str:
    """A producer position for an input that is a log entry: sortable as a string."""
    return f"L{seq:020d}"


def position_of_stream_id(stream_id: str) -> str:
    """A producer position for an input that is a Redis stream entry id `ms-n`: sortable as a string."""
    ms, _, n = stream_id.partition("-")
    return f"S{int(ms):020d}-{int(n or 0):020d}"
