"""Service snapshots: a core's state at a log seq, sealed, kept in Redis beside the log (newest 2).

Snapshots are derived data: each is tied to the log by the hash of the entry it covers, so one taken on
another log (or past a tail that was lost) is refused, and deleting them all only costs a full replay.
They live in Redis rather than in files because the log does: one AOF holds both, so a snapshot can
never survive a log it describes, services on different hosts need no shared disk, and the write and
the trim of older ones are one MULTI (no half-written file to detect).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import cast

import msgspec
import structlog
from redis.asyncio import Redis

from services.runtime.processor import Processor
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.freshness import FreshnessState
from shared.eventlog.port import LogReader
from shared.keys import Keys

__all__ = ["KEEP", "Snapshot", "SnapshotStore", "decode_record", "encode_record", "new_snapshot"]

log = structlog.get_logger("greenex.runtime")

KEEP = 2  # the newest is enough; the one before it covers a newest that turns out damaged
# 5: verifier accreditations in verification (who may record verified emissions); 4: issue 15
# (verification folds compliance and verifier facts; registry, claims); 3: the follower's freshness marks;
# 2: serial origins in verification and settlement
_VERSION = 5


class Snapshot(msgspec.Struct, frozen=True, array_like=True, kw_only=True):
    version: int = _VERSION
    service: str
    seq: int  # the last log seq folded into `state`
    head_hash: bytes  # that entry's hash: ties the snapshot to this very log
    logged_position: str  # the producer position already in the log: answers up to it are not re-appended
    taken_ns: int
    state: bytes  # the processor's own snapshot bytes
    freshness: FreshnessState = FreshnessState()  # the marks a copy of an earlier entry is refused by


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


def encode_record(snap: Snapshot, keys: ProducerKeys) -> bytes:
    """The seal (an HMAC under the core's snapshot key, from the log master key), then the encoded
    snapshot: damage anywhere, or a snapshot written by anyone without the key, fails the seal."""
    body = _encoder.encode(snap)
    return keys.snapshot_seal(snap.service, body) + body


def decode_record(record: bytes, keys: ProducerKeys | None) -> Snapshot:
    """The snapshot in a record, or ValueError saying why it cannot be trusted. Without `keys` the seal
    is not checked: only for looking at a snapshot (compare-live names a difference with it), never for
    restoring one."""
    seal, body = record[:32], record[32:]
    if len(seal) < 32:
        raise ValueError("truncated record")
    try:
        snap = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"undecodable: {exc}") from exc
    if keys is not None and not hmac.compare_digest(keys.snapshot_seal(snap.service, body), seal):
        raise ValueError("seal mismatch: damaged, or not written by a holder of the log master key")
    if snap.version != _VERSION:
        raise ValueError(f"unknown snapshot version {snap.version}")
    return snap


class SnapshotStore:
    """A Redis list per core (Keys.snapshots), newest first, trimmed to KEEP; sealed with `sealer`."""

    def __init__(self, redis: Redis, keys: Keys, sealer: ProducerKeys, keep: int = KEEP) -> None:
        self.redis, self.keys, self.sealer, self.keep = redis, keys, sealer, keep

    def key(self, service: str) -> str:
        return self.keys.snapshots(service)

    async def save(self, snap: Snapshot) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(self.key(snap.service), encode_record(snap, self.sealer))
        pipe.ltrim(self.key(snap.service), 0, self.keep - 1)
        await pipe.execute()

    async def records(self, service: str) -> list[bytes]:
        return cast(list[bytes], await self.redis.lrange(self.key(service), 0, -1))

    async def load(
        self, service: str, event_log: LogReader, restore: Callable[[Snapshot], None] | None = None
    ) -> Snapshot | None:
        """The newest snapshot that is intact, matches the log and (with `restore`) restores; None (full
        replay) if there is none. A state this code cannot read (written by an older version, say) is
        refused like a damaged one: `restore` must raise ValueError and leave its state as it was."""
        for index, record in enumerate(await self.records(service)):
            try:
                snap = decode_record(record, self.sealer)
                if snap.service != service:
                    raise ValueError(f"snapshot of {snap.service!r}")
                await _check_against_log(snap, event_log)
                if restore is not None:
                    restore(snap)
            except ValueError as exc:
                log.warning("snapshot_refused", service=service, index=index, reason=str(exc))
                continue
            return snap
        return None


async def _check_against_log(snap: Snapshot, event_log: LogReader) -> None:
    if snap.seq == 0:
        return
    entries = await event_log.read(snap.seq - 1, 1)
    if not entries or entries[0].seq != snap.seq:
        raise ValueError(f"the log has no entry {snap.seq}: it is shorter than the snapshot")
    if entries[0].hash != snap.head_hash:
        raise ValueError(f"entry {snap.seq} has another hash: the snapshot is of a different log")


def new_snapshot(
    proc: Processor,
    seq: int,
    head_hash: bytes,
    logged_position: str,
    freshness: FreshnessState | None = None,
) -> Snapshot:
    return Snapshot(
        service=proc.name,
        seq=seq,
        head_hash=head_hash,
        logged_position=logged_position,
        taken_ns=time.time_ns(),
        state=proc.snapshot(),
        freshness=freshness or FreshnessState(),
    )
