"""`greenex log archive`: move the oldest entries out of Redis, never one a service still needs.

The stream is cut at seq `cut` (entries below it go to a segment file, then XTRIM MINID) where:

- every snapshot holder of the system map (each core, intake, its report publisher) has a valid
  snapshot at or after `cut`: each restarts from its snapshot and the tail, never from the archive;
- `cut - 1` is an entry the exchange signed a checkpoint of (its LogCheckpoint stays in the stream):
  the checkpoint process restarts on the trimmed stream trusting the link it continues from, and the
  next checkpoint it signs names that one as its `previous`;
- `cut` is at most the operator's `--before`.

Nothing is trimmed before the segment is written, synced, renamed into place and read back: the chain
from the last archived entry through the segment to the entry the stream keeps must verify.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from redis.asyncio import Redis

from services.runtime.snapshots import SnapshotStore
from services.runtime.system import System
from shared.eventlog.archive import ArchiveWriter, iter_archive
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.checkpoints import checkpoint_in
from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.segments import ArchiveDir, segment_name
from shared.eventlog.verify import ChainVerifier, unvouched

__all__ = ["ArchiveRefused", "Archived", "archive_log", "choose_cut", "snapshot_holders"]

_PAGE = 5000


class ArchiveRefused(Exception):  # noqa: N818  -- named as the fact, like the log's exceptions
    """Nothing can be archived (or it would be unsafe): the reason and what to do, for the operator."""


class Archived(NamedTuple):
    first: int  # the first entry archived
    cut: int  # the stream now starts here
    path: Path
    bytes: int
    limited_by: str  # what kept the cut where it is


def snapshot_holders(system: System) -> list[str]:
    """Everything that restarts from a snapshot: each core, and what a process keeps besides."""
    return [*system.core_names, *(name for process in system.processes for name in process.keeps)]


def choose_cut(before: int, snapshot_seqs: Mapping[str, int], checkpointed: Iterable[int]) -> tuple[int, str]:
    """The seq the stream is to start at (0: nothing can go) and what limited it."""
    limit, why = before, "--before"
    for holder, seq in sorted(snapshot_seqs.items()):
        if seq < limit:
            limit, why = seq, f"{holder}'s newest snapshot (seq {seq})"
    cuts = [seq + 1 for seq in checkpointed if seq + 1 <= limit]
    if not cuts:
        return 0, f"no signed checkpoint below {why} at {limit}"
    return max(cuts), why


async def archive_log(
    redis: Redis,
    stream: RedisEventLog,
    system: System,
    archives: ArchiveDir,
    *,
    before: int | None,
    before_ns: int | None,
    verifier: Callable[[int, bytes], ChainVerifier],
    sealer: ProducerKeys | None,
    progress: Callable[[str, int], None] = lambda _what, _n: None,
) -> Archived:
    """Archive and trim (see the module docstring). `verifier(start_seq, prev_hash)` checks the stream
    as it is read; `sealer` (the log master key, if held) checks the snapshots' seals."""
    if before is None and before_ns is None:
        raise ArchiveRefused("give --before SEQ or --before DATE")
    first = await stream.read(0, 1)
    if not first:
        raise ArchiveRefused("the log is empty")
    start, link = first[0].seq, first[0].prev_hash
    await _drop_unfinished(stream, archives, start)
    archived = archives.last_seq
    if start != archived + 1:
        raise ArchiveRefused(
            f"the stream starts at seq {start} but the archives in {archives.path} end at {archived}: "
            "they do not join up (docs/operations.md, 'A trimmed log')"
        )
    if archived and _last_hash(archives) != link:
        raise ArchiveRefused(f"seq {start} does not link to the last archived entry: another log's archives?")
    checker = verifier(start, link)
    if checker.checkpoint_key is None:
        raise ArchiveRefused(
            "this machine holds no checkpoint public key (checkpoint.pub in the key ring): the cut rests "
            "on a signed checkpoint, which must be checked"
        )
    snapshot_seqs = await _snapshot_seqs(redis, stream, system, sealer)
    checkpointed, before_seq = await _scan(stream, checker, before_ns, progress)
    cut, why = choose_cut(before if before is not None else before_seq, snapshot_seqs, checkpointed)
    if cut <= start:
        raise ArchiveRefused(f"nothing to archive: the stream starts at {start} and is held by {why}")
    archives.path.mkdir(parents=True, exist_ok=True)
    path = archives.path / segment_name(start, cut - 1)
    await _write_segment(stream, path, start, cut, progress)
    _check_segment(path, start, link, checkpointed[cut - 1])
    await redis.xtrim(stream.key, minid=f"{cut}-0", approximate=False)
    kept = await stream.read(0, 1)
    if not kept or kept[0].seq != cut:
        raise LogCorrupt(cut, f"after the trim the stream starts at {kept[0].seq if kept else 'nothing'}")
    return Archived(start, cut, path, path.stat().st_size, why)


async def _snapshot_seqs(
    redis: Redis, stream: RedisEventLog, system: System, sealer: ProducerKeys | None
) -> dict[str, int]:
    """Every holder's newest valid snapshot seq; ArchiveRefused naming those with none."""
    if sealer is None:
        raise ArchiveRefused("this machine holds no log master key: it cannot check the snapshots' seals")
    store = SnapshotStore(redis, stream.keys, sealer)
    seqs, missing = {}, []
    for holder in snapshot_holders(system):
        snap = await store.load(holder, stream)
        if snap is None:
            missing.append(holder)
        else:
            seqs[holder] = snap.seq
    if missing:
        raise ArchiveRefused(
            f"no valid snapshot of {', '.join(missing)}: nothing can be trimmed that it would need to "
            "restart (a service snapshots every GREENEX_SNAPSHOT_EVERY entries and at a clean stop)"
        )
    return seqs


async def _scan(
    stream: RedisEventLog,
    verifier: ChainVerifier,
    before_ns: int | None,
    progress: Callable[[str, int], None],
) -> tuple[dict[int, bytes], int]:
    """Verify the stream to its head; return the link of every entry a checkpoint in it signs, and the
    first seq logged at or after `before_ns` (the head + 1 if none is)."""
    head, _ = await stream.head()
    first = verifier.head_seq + 1
    signed: dict[int, bytes] = {}  # seq -> the link its checkpoint signs (the segment read-back checks it)
    before_seq = None
    after = verifier.head_seq
    while after < head and (entries := await stream.read(after, _PAGE)):
        for entry in entries:
            verifier.check(entry)
            if (checkpoint := checkpoint_in(entry)) is not None:  # verified just above
                signed[checkpoint.seq] = bytes.fromhex(checkpoint.link)
            if before_seq is None and before_ns is not None and entry.logged_ns >= before_ns:
                before_seq = entry.seq
        after = entries[-1].seq
        progress("verified", len(entries))
    if not verifier.start_vouched:
        raise LogCorrupt(first, unvouched(first))
    return signed, head + 1 if before_seq is None else before_seq


async def _write_segment(
    stream: RedisEventLog, path: Path, start: int, cut: int, progress: Callable[[str, int], None]
) -> None:
    with ArchiveWriter(path) as writer:
        after = start - 1
        while after < cut - 1:
            entries = [e for e in await stream.read(after, min(_PAGE, cut - 1 - after)) if e.seq < cut]
            if not entries:
                raise LogCorrupt(after + 1, "the stream lost entries while they were being archived")
            for entry in entries:
                writer.write(entry)
            after = entries[-1].seq
            progress("archived", len(entries))


def _check_segment(path: Path, start: int, link: bytes, last_hash: bytes) -> None:
    """Read the written segment back: whole, chained from `link`, ending at the entry the stream keeps
    linking to; a segment that fails is removed (nothing was trimmed)."""
    verifier = ChainVerifier(start_seq=start, prev_hash=link)
    try:
        for entry in iter_archive(path, start):
            verifier.check(entry)
        if verifier.head_hash != last_hash:
            raise LogCorrupt(verifier.head_seq, f"{path} read back does not end where the stream goes on")
    except LogCorrupt:
        path.unlink()
        raise


async def _drop_unfinished(stream: RedisEventLog, archives: ArchiveDir, start: int) -> None:
    """A run stopped between writing its segment and trimming leaves a segment of entries the stream
    still holds: verified against the stream and removed, it is written again by this run."""
    segments = archives.segments()
    if not segments or segments[-1].last < start:
        return
    segment = segments[-1]
    at_end = await stream.read(segment.last - 1, 1)
    if segment.first != start or not at_end or at_end[0].hash != _last_hash(archives):
        raise ArchiveRefused(
            f"{segment.path} overlaps the stream (which starts at {start}) and does not match it: "
            "another log's archive? Move it away"
        )
    segment.path.unlink()


def _last_hash(archives: ArchiveDir) -> bytes:
    segments = archives.segments()
    last: Entry | None = None
    for last in iter_archive(segments[-1].path, segments[-1].first):  # noqa: B007 - the last one is kept
        pass
    assert last is not None
    return last.hash
