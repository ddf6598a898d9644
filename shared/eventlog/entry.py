"""The log entry envelope: sequence, ids, causation, timestamps, content digest and chain link."""

from __future__ import annotations

import hashlib

import msgspec

__all__ = [
    "GENESIS_HASH",
    "Content",
    "Entry",
    "NewEntry",
    "content_digest",
    "encode_content",
    "entry_hash",
    "entry_of",
    "link_hash",
    "seal",
    "position_of_seq",
    "position_of_stream_id",
]

GENESIS_HASH = bytes(20)  # the SHA-1 link the first entry chains to


class NewEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What a writer hands the log: the log assigns seq, producer, logged_ns and the hashes."""

    event_id: str
    causation: str  # id of the command or event this entry answers
    type: str  # the event's tag, so readers can skip without decoding the body
    event_ns: int  # when it happened, as passed into the core
    body: bytes  # the encoded event


class Entry(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """A sealed entry; `prev_hash` and `hash` are 20-byte chain links (see link_hash)."""

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


class Content(msgspec.Struct, frozen=True, array_like=True):
    """An entry without its place in the chain: what the writer encodes and digests (SHA-256)."""

    event_id: str
    causation: str
    producer: str
    type: str
    event_ns: int
    logged_ns: int
    body: bytes


_encoder = msgspec.msgpack.Encoder()


def encode_content(new: NewEntry, producer: str, logged_ns: int) -> bytes:
    """The canonical msgpack of an entry's content: the bytes its content digest is taken over."""
    return _encoder.encode(
        Content(new.event_id, new.causation, producer, new.type, new.event_ns, logged_ns, new.body)
    )


def content_digest(content: bytes) -> str:
    """Lowercase hex SHA-256 of encoded content."""
    return hashlib.sha256(content).hexdigest()


def link_hash(prev_hash: bytes, seq: int, digest: str) -> bytes:
    """The chain link: SHA-1 over the text `<prev hex>:<seq>:<content sha256 hex>`.

    SHA-1 because the append script computes it inside Redis, whose Lua only has sha1hex: sealing there
    lets writers append without knowing the head (no race for it). Content integrity rests on SHA-256;
    SHA-1 only binds fixed-size digests in order, where collision attacks have nothing to steer.
    """
    text = b"%s:%d:%s" % (prev_hash.hex().encode(), seq, digest.encode())
    return hashlib.sha1(text, usedforsecurity=False).digest()


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
    """The link of an entry with these fields (see link_hash)."""
    content = _encoder.encode(Content(event_id, causation, producer, type_, event_ns, logged_ns, body))
    return link_hash(prev_hash, seq, content_digest(content))


def seal(new: NewEntry, *, seq: int, producer: str, logged_ns: int, prev_hash: bytes) -> Entry:
    """Turn a writer's entry into a chained log entry at `seq`."""
    digest = content_digest(encode_content(new, producer, logged_ns))
    return entry_of(new, seq=seq, producer=producer, logged_ns=logged_ns, prev_hash=prev_hash,
                    hash=link_hash(prev_hash, seq, digest))  # fmt: skip


def entry_of(
    new: NewEntry, *, seq: int, producer: str, logged_ns: int, prev_hash: bytes, hash: bytes
) -> Entry:
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
        hash=hash,
    )


def position_of_seq(seq: int) -> str:
    """A producer position for an input that is a log entry: sortable as a string."""
    return f"L{seq:020d}"


def position_of_stream_id(stream_id: str) -> str:
    """A producer position for an input that is a Redis stream entry id `ms-n`: sortable as a string."""
    ms, _, n = stream_id.partition("-")
    return f"S{int(ms):020d}-{int(n or 0):020d}"
