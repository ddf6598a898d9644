"""Builds a follower process: the cores the system map gives it, fed by one read loop over the log.

FastStream provides the process lifecycle here (startup, shutdown, signals); the read loop is the
runtime's own (LogFollower.run), measured faster than FastStream's batch subscriber on this path
(loadtests/RESULTS.md, "follower read path").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import structlog
from faststream import FastStream
from faststream.redis import RedisBroker
from faststream.security import SASLPlaintext
from redis.asyncio import Redis

from services.runtime.digests import publish_digest
from services.runtime.follower import LogFollower, last_cause_answered
from services.runtime.snapshots import SnapshotStore
from services.runtime.system import Process, System
from shared.config import Settings, connect
from shared.eventlog.entry import Entry, position_of_seq
from shared.eventlog.redis_log import RedisEventLog
from shared.keys import Keys
from shared.resp import RespClient

__all__ = [
    "DIGEST_INTERVAL_S",
    "DIGEST_QUIET_S",
    "FollowerProcess",
    "cancel_tasks",
    "fail_fast",
    "follower_app",
    "lifecycle_app",
    "publish_digests",
    "resume_follower",
]

log = structlog.get_logger("greenex.runtime")

# How often a follower checks whether to republish its state digest. A digest costs a full canonical
# encoding of the state (~100+ ms for a large book or ledger, on the event loop), so it is published only
# once the follower has been quiet for DIGEST_QUIET_S: under load it would stall matching (measured: the
# p99 of the verification and matching stages went from ~20 ms to ~170 ms with a digest every 0.25 s).
DIGEST_INTERVAL_S = 0.25
DIGEST_QUIET_S = 0.5


def fail_fast(service: str, exc: BaseException) -> NoReturn:
    """A broken invariant or a lost write: stop now; the supervisor restarts us, we rebuild from the log."""
    log.critical("service_crashed", service=service, error=repr(exc), exc_info=exc)
    os._exit(70)


def lifecycle_app(settings: Settings, process: str) -> FastStream:
    """A FastStream app used for its lifecycle only: FastStream requires a broker, which declares no
    subscribers here (the read loops are the runtime's own), logs nothing per message, and logs in as
    the process's own Redis user (its partition's) like every other connection of the process."""
    user = settings.user(process)
    login = SASLPlaintext(username=user, password=settings.keyring.redis_password(user))
    broker = RedisBroker(settings.redis_url, logger=None, security=login)  # type: ignore[arg-type]  # no log
    return FastStream(broker, logger=None)


@dataclass
class FollowerProcess:
    """What follower_app built, for a process that adds tasks of its own (e.g. matching's depth views)."""

    app: FastStream
    redis: Redis
    keys: Keys
    followers: list[LogFollower]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def follower_app(settings: Settings, system: System, process: Process) -> FollowerProcess:
    """The process's cores behind one read of the log: the first core's follower reads (woken by the
    process's bell) and hands each batch to the others, so a second reader never doubles the wake-ups.
    Each core keeps its own producer position, snapshots and digest."""
    redis = connect(settings, settings.user(process.name))
    resp = RespClient.like(redis)
    keys, producer_keys = settings.keys, settings.producer_keys()
    event_log = RedisEventLog(
        redis, keys, resp=resp, bells=system.bells(keys), reader=process.name, producer_keys=producer_keys,
        lease=settings.writer_lease(process.name),
    )  # fmt: skip
    store = SnapshotStore(redis, keys, producer_keys)
    followers = [
        LogFollower(
            core.make(),
            event_log,
            batch=settings.batch_size,
            block_ms=settings.block_ms,
            snapshots=store,
            snapshot_every=settings.snapshot_every,
            producer_keys=producer_keys,
        )
        for core in process.cores
    ]
    reader, guests = followers[0], followers[1:]

    async def feed_guests(entries: Sequence[Entry], _appended: Sequence[Entry]) -> None:
        # A guest's own snapshot may be ahead of the reader's: it skips what it already folded.
        for guest in guests:
            if fresh := [e for e in entries if e.seq > guest.cursor]:
                await guest.step(fresh)

    if guests:
        reader.on_batch = feed_guests
    app = lifecycle_app(settings, process.name)
    hosted = FollowerProcess(app, redis, keys, followers)
    stop = asyncio.Event()

    @app.on_startup
    async def recover() -> None:
        for follower in followers:
            await resume_follower(follower)
        for guest in guests:  # bring each guest to where the reader resumes
            while guest.cursor < reader.cursor:
                entries = await event_log.read(guest.cursor, min(2000, reader.cursor - guest.cursor))
                if not entries:
                    break
                await guest.step(entries)

    @app.after_startup
    async def start_reading() -> None:
        hosted.tasks.append(asyncio.create_task(_read_log(reader, stop)))
        hosted.tasks.extend(asyncio.create_task(publish_digests(f, redis, keys)) for f in followers)

    @app.after_shutdown
    async def close() -> None:
        stop.set()
        await cancel_tasks(hosted.tasks)
        # The read loop has stopped: no batch is running, so a settled state is safe to save.
        with contextlib.suppress(Exception):
            for follower in followers:
                await follower.save_snapshot()
                await _publish_once(follower, redis, keys)
        await resp.aclose()
        await redis.aclose()

    return hosted


async def cancel_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel a service's background tasks and wait until each has stopped."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def resume_follower(follower: LogFollower) -> None:
    """Set the follower's state from the newest valid snapshot and its logged position from the log.

    The positions hash is only a shortcut: the follower's own entries after the snapshot name the
    entries they answer, so it reads that tail once before it starts (time, not correctness, is what a
    lost positions hash or snapshot costs)."""
    name = follower.processor.name
    stored = await follower.log.position(name)
    follower.logged_position = stored
    if follower.snapshots is not None:
        snap = await follower.snapshots.load(name, follower.log, lambda s: follower.restore(s, stored))
        if snap is None:
            log.warning("snapshot_missing_full_replay", service=name)
    answered = await last_cause_answered(follower.log, name, follower.cursor, follower.producer_keys)
    if answered:
        follower.logged_position = max(follower.logged_position, position_of_seq(answered))
    log.info(
        "service_starting", service=name, position=follower.logged_position, resume_after=follower.cursor
    )


async def _read_log(follower: LogFollower, stop: asyncio.Event) -> None:
    try:
        await follower.run(stop)
    except Exception as exc:  # noqa: BLE001 - any failure here must stop the process, see fail_fast
        fail_fast(follower.processor.name, exc)


async def _publish_once(follower: LogFollower, redis: Redis, keys: Keys) -> int:
    if not follower.settled:
        return -1
    seq = follower.cursor
    await publish_digest(redis, keys, follower.processor.name, seq, follower.processor.digest())
    return seq


async def publish_digests(follower: LogFollower, redis: Redis, keys: Keys) -> None:
    """Republish `<seq>:<digest>` whenever the state moved, between batches (never mid-batch)."""
    published = -1
    while True:
        await asyncio.sleep(DIGEST_INTERVAL_S)
        if follower.cursor == published or time.monotonic() - follower.last_batch_at < DIGEST_QUIET_S:
            continue
        try:
            seq = await _publish_once(follower, redis, keys)
        except Exception as exc:  # noqa: BLE001 - Redis away: the read loop's own errors decide; retry later
            log.warning("digest_publish_failed", error=repr(exc))
            continue
        if seq >= 0:
            published = seq
