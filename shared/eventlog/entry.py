"""The log entry envelope: sequence, ids, causation, timestamps, producer tag, content digest, chain link.

Log format 3. An entry's content is what its writer vouches for: the seven fields below plus `auth`, an
HMAC-SHA256 under the producer's key over the other seven (shared/eventlog/auth.py). The content is
encoded as canonical msgpack; its SHA-256 goes into the chain link, which the append script computes.
"""

from __future__ import annotations

import hashlib

import msgspec

__all__ = [
    "FORMAT",
    "GENESIS_HASH",
    "Content",
    "Entry",
    "NewEntry",
    "content_digest",
    "encode_content",
    "entry_of",
    "link_hash",
    "position_of_seq",
    "position_of_stream_id",
    "signed_part",
]

FORMAT = 3  # 3: producer tags (and no participant secret anywhere); 2: script-sealed links
GENESIS_HASH = bytes(20)  # the SHA-1 link the first entry chains to


class NewEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What a writer hands the log: the log assigns seq, producer, logged_ns, the tag and the links."""

    event_id: str
    causation: str  # id of the command or event this entry answers: `in:<stream id>` or `log:<seq>`
    type: str  # the event's tag, so readers can skip without decoding the body
    event_ns: int  # when it happened, as passed into the core
    body: bytes  # the encoded event


class Content(msgspec.Struct, frozen=True, array_like=True):
    """An entry without its place in the chain: what the writer encodes and digests (SHA-256)."""

    event_id: str
    causation: str
    producer: str
    type: str
    event_ns: int
    logged_ns: int
    body: bytes
    auth: bytes  # HMAC-SHA256 under the producer's key over `signed_part` of the fields above


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
    auth: bytes
    prev_hash: bytes
    hash: bytes

    def content(self) -> Content:
        return Content(
            self.event_id, self.causation, self.producer, self.type, self.event_ns, self.logged_ns,
            self.body, self.auth,
        )  # fmt: skip


_encoder = msgspec.msgpack.Encoder()


def signed_part(event_id: str, causation: str, producer: str, type_: str, event_ns: int, logged_ns: int,
                body: bytes) -> bytes:  # fmt: skip
    """The bytes a producer's tag covers: every content field but the tag, as canonical msgpack."""
    return _encoder.encode((event_id, causation, producer, type_, event_ns, logged_ns, body))


def encode_content(content: Content) -> bytes:
    """The canonical msgpack of an entry's content: the bytes its content digest is taken over."""
    return _encoder.encode(content)


def content_digest(content: bytes) -> str:
    """Lowercase hex SHA-256 of encoded content."""
    return hashlib.sha256(content).hexdigest()


def link_hash(prev_hash: bytes, seq: int, digest: str) -> bytes:
    """The chain link: SHA-1 over the text `<prev hex>:<seq>:<content sha256 hex>`.

    SHA-1 because the append script computes it inside Redis, whose Lua only has sha1hex: sealing there
    lets writers append without knowing the head (no race for it). Content integrity rests on SHA-256,
    authorship on the producer's tag; SHA-1 only binds fixed-size digests in order (see
    docs/security.md, "The chain and its hashes").
    """
    text = b"%s:%d:%s" % (prev_hash.hex().encode(), seq, digest.encode())
    return hashlib.sha1(text, usedforsecurity=False).digest()


def entry_of(content: Content, *, seq: int, prev_hash: bytes, hash: bytes) -> Entry:
    return Entry(
        seq=seq,
        event_id=content.event_id,
        causation=content.causation,
        producer=content.producer,
        type=content.type,
        event_ns=content.event_ns,
        logged_ns=content.logged_ns,
        body=content.body,
        auth=content.auth,
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
