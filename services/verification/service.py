"""The verification service: pre-trade checks and reservations, plus the registry, projections of the log.

The registry runs in the same process as a second follower with its own producer name ("registry") and
its own position in the log, fed from verification's reads: the two cores share nothing but the process
and the read, so either could move out.
"""

from __future__ import annotations

from collections.abc import Sequence

from faststream import FastStream
from redis.asyncio import Redis

from services.runtime.app import follower_app
from services.runtime.follower import LogFollower
from services.verification.core import Verification
from services.verification.registry import Registry
from shared.config import Settings
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog

__all__ = ["build_app"]


def build_app(settings: Settings) -> FastStream:
    redis = Redis.from_url(settings.redis_url)
    event_log = RedisEventLog(redis, settings.log_key)
    registry = LogFollower(Registry(), event_log, batch=settings.batch_size, block_ms=settings.block_ms)

    async def feed_registry(entries: Sequence[Entry], _: Sequence[Entry]) -> None:
        # One read of the log serves both cores: a second reader would double every wake-up.
        await registry.step(entries)

    app, verification = follower_app(Verification(), settings, redis=redis, on_batch=feed_registry)

    @app.on_startup
    async def catch_up_registry() -> None:
        """Bring the registry to where verification resumes (its snapshot may be ahead of seq 0)."""
        registry.floor = await event_log.position(Registry.name)
        while registry.cursor < verification.cursor:
            entries = await event_log.read(registry.cursor, min(2000, verification.cursor - registry.cursor))
            if not entries:
                break
            await registry.step(entries)

    return app
