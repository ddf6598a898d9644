"""The verification service: pre-trade checks and reservations, plus the registry, projections of the log.

The registry runs in the same process as a second follower with its own producer name ("registry") and
its own position in the log, fed from verification's reads: the two cores share nothing but the process
and the read, so either could move out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from faststream import FastStream
from redis.asyncio import Redis

from services.runtime.app import cancel_tasks, follower_app, publish_digests, resume_follower
from services.runtime.follower import LogFollower
from services.runtime.snapshots import SnapshotStore
from services.verification.core import Verification
from services.verification.registry import Registry
from shared.config import Settings
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog

__all__ = ["build_app"]


def build_app(settings: Settings) -> FastStream:
    redis = Redis.from_url(settings.redis_url)
    event_log = RedisEventLog(redis, settings.log_key)
    registry = LogFollower(
        Registry(),
        event_log,
        batch=settings.batch_size,
        block_ms=settings.block_ms,
        snapshots=SnapshotStore(redis, settings.prefix),
        snapshot_every=settings.snapshot_every,
    )

    async def feed_registry(entries: Sequence[Entry], _: Sequence[Entry]) -> None:
        # One read of the log serves both cores: a second reader would double every wake-up. The
        # registry's own snapshot may be ahead of verification's: it skips what it already folded.
        fresh = [e for e in entries if e.seq > registry.cursor]
        if fresh:
            await registry.step(fresh)

    app, verification = follower_app(
        Verification(), settings, redis=redis, on_batch=feed_registry, also_answers=Registry.answers_to
    )
    tasks: list[asyncio.Task[None]] = []

    @app.on_startup
    async def catch_up_registry() -> None:
        """Resume the registry from its snapshot, then bring it to where verification resumes."""
        await resume_follower(registry)
        while registry.cursor < verification.cursor:
            entries = await event_log.read(registry.cursor, min(2000, verification.cursor - registry.cursor))
            if not entries:
                break
            await registry.step(entries)

    @app.after_startup
    async def start_registry_digests() -> None:
        tasks.append(asyncio.create_task(publish_digests(registry, redis, settings.prefix)))

    @app.on_shutdown
    async def save_registry() -> None:
        await cancel_tasks(tasks)
        with contextlib.suppress(Exception):
            await registry.save_snapshot()

    return app
