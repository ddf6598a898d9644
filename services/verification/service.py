"""The verification service: pre-trade checks and reservations, plus the registry, projections of the log.

The registry runs in the same process as a second follower with its own producer name ("registry") and
its own position in the log: the two cores share nothing but the process, so either could move out.
"""

from __future__ import annotations

import asyncio
import contextlib

from faststream import FastStream
from redis.asyncio import Redis

from services.runtime.app import fail_fast, follower_app
from services.runtime.follower import LogFollower
from services.verification.core import Verification
from services.verification.registry import Registry
from shared.config import Settings
from shared.eventlog.redis_log import RedisEventLog

__all__ = ["build_app"]


def build_app(settings: Settings) -> FastStream:
    redis = Redis.from_url(settings.redis_url)
    app, _ = follower_app(Verification(), settings, redis=redis)
    event_log = RedisEventLog(redis, settings.log_key)
    registry = LogFollower(Registry(), event_log, batch=settings.batch_size, block_ms=settings.block_ms)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def run_registry() -> None:
        try:
            await registry.run(stop)
        except Exception as exc:  # noqa: BLE001 - the registry's broken invariant stops the process too
            fail_fast(Registry.name, exc)

    @app.after_startup
    async def start_registry() -> None:
        tasks.append(asyncio.create_task(run_registry()))

    @app.on_shutdown
    async def stop_registry() -> None:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=2.0)

    return app
