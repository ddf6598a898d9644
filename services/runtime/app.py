"""Builds a service process: a FastStream app whose subscriber feeds the log to a processor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any, NoReturn

import structlog
from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis

from services.runtime.digests import publish_digest
from services.runtime.follower import BatchHook, LogFollower
from services.runtime.processor import Processor
from services.runtime.snapshots import SnapshotStore
from services.runtime.streams import decode_log_batch, parse_raw_batch
from shared.config import Settings
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog
from shared.resp import RespClient

__all__ = [
    "DIGEST_INTERVAL_S",
    "cancel_tasks",
    "DIGEST_QUIET_S",
    "fail_fast",
    "follower_app",
    "log_subscription",
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


def log_subscription(settings: Settings, start_after: int = 0) -> StreamSub:
    """Read the whole log in order from `start_after`, in batches, without a consumer group.

    The cursor is the service's state, not a group's: replay and live reading are one path.
    """
    return StreamSub(
        settings.log_key,
        batch=True,
        max_records=settings.batch_size,
        last_id=f"{start_after}-0",
        polling_interval=settings.block_ms,
    )


def follower_app(
    processor: Processor,
    settings: Settings,
    *,
    on_batch: BatchHook | None = None,
    redis: Redis | None = None,
    also_answers: frozenset[str] = frozenset(),
) -> tuple[FastStream, LogFollower]:
    """`also_answers`: types a core fed from this follower's reads answers (see verification's registry)."""
    redis = redis or Redis.from_url(settings.redis_url)
    resp = RespClient.like(redis)
    event_log = RedisEventLog(redis, settings.log_key, resp=resp)
    follower = LogFollower(
        processor,
        event_log,
        batch=settings.batch_size,
        block_ms=settings.block_ms,
        on_batch=on_batch,
        snapshots=SnapshotStore(redis, settings.prefix) if hasattr(processor, "snapshot") else None,
        snapshot_every=settings.snapshot_every,
    )
    broker = RedisBroker(settings.redis_url, logger=None)  # type: ignore[arg-type]  # trap 6: no per-message log

    async def on_log(entries: Any) -> None:
        batch: list[Entry] = entries
        try:
            await follower.step(batch)
        except Exception as exc:  # noqa: BLE001 - any failure here must stop the process, see fail_fast
            fail_fast(processor.name, exc)

    app = FastStream(broker, logger=None)
    tasks: list[asyncio.Task[None]] = []

    stop = asyncio.Event()

    @app.on_startup
    async def recover() -> None:
        await resume_follower(follower)
        if settings.direct_read:
            await event_log.wake_on(processor.name, processor.answers_to | also_answers)
        else:
            # Declared here, not at build time, because where to start is known only once the snapshot
            # is loaded; the broker starts its subscribers after the startup hooks.
            broker.subscriber(
                stream=log_subscription(settings, start_after=follower.cursor),
                parser=parse_raw_batch,
                decoder=decode_log_batch,
            )(on_log)

    @app.after_startup
    async def start_reading() -> None:
        if settings.direct_read:
            tasks.append(asyncio.create_task(_read_log(follower, stop)))

    @app.after_startup
    async def start_digests() -> None:
        tasks.append(asyncio.create_task(publish_digests(follower, redis, settings.prefix)))

    @app.after_shutdown
    async def close() -> None:
        stop.set()
        await cancel_tasks(tasks)
        # The broker has stopped: no batch is running, so a settled state is safe to save.
        with contextlib.suppress(Exception):
            await follower.save_snapshot()
            await _publish_once(follower, redis, settings.prefix)
        await resp.aclose()
        await redis.aclose()

    return app, follower


async def cancel_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel a service's background tasks and wait until each has stopped."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def resume_follower(follower: LogFollower) -> None:
    """Set the follower's floor from the log and its state from the newest valid snapshot, if any."""
    name = follower.processor.name
    stored = await follower.log.position(name)
    follower.floor = stored
    if follower.snapshots is not None:
        snap = await follower.snapshots.load(name, follower.log)
        if snap is None:
            log.warning("snapshot_missing_full_replay", service=name)
        else:
            follower.restore(snap, stored)
    log.info("service_starting", service=name, position=follower.floor, resume_after=follower.cursor)


async def _read_log(follower: LogFollower, stop: asyncio.Event) -> None:
    """The follower's own XREAD loop: one blocking read per batch, no per-batch framework path.

    Measured against FastStream's batch subscriber in loadtests/RESULTS.md ("follower read path").
    """
    name = follower.processor.name
    try:
        await follower.run(stop)
    except Exception as exc:  # noqa: BLE001 - any failure here must stop the process, see fail_fast
        fail_fast(name, exc)


async def _publish_once(follower: LogFollower, redis: Redis, prefix: str) -> int:
    digest = getattr(follower.processor, "digest", None)
    if digest is None or not follower.settled:
        return -1
    seq = follower.cursor
    await publish_digest(redis, prefix, follower.processor.name, seq, digest())
    return seq


async def publish_digests(follower: LogFollower, redis: Redis, prefix: str) -> None:
    """Republish `<seq>:<digest>` whenever the state moved, between batches (never mid-batch)."""
    published = -1
    while True:
        await asyncio.sleep(DIGEST_INTERVAL_S)
        if follower.cursor == published or time.monotonic() - follower.last_batch_at < DIGEST_QUIET_S:
            continue
        try:
            seq = await _publish_once(follower, redis, prefix)
        except Exception as exc:  # noqa: BLE001 - Redis away: the subscriber's own errors decide; retry later
            log.warning("digest_publish_failed", error=repr(exc))
            continue
        if seq >= 0:
            published = seq
