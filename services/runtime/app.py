"""Builds a service process: a FastStream app whose subscriber feeds the log to a processor."""

from __future__ import annotations

import os
from typing import Any

import structlog
from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis

from services.runtime.follower import BatchHook, LogFollower
from services.runtime.processor import Processor
from services.runtime.streams import decode_log_batch, parse_raw_batch
from shared.config import Settings
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog

__all__ = ["fail_fast", "follower_app", "log_subscription"]

log = structlog.get_logger("greenex.runtime")


def fail_fast(service: str, exc: BaseException) -> None:
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
    processor: Processor, settings: Settings, *, on_batch: BatchHook | None = None, redis: Redis | None = None
) -> tuple[FastStream, LogFollower]:
    redis = redis or Redis.from_url(settings.redis_url)
    follower = LogFollower(
        processor, RedisEventLog(redis, settings.log_key), batch=settings.batch_size, on_batch=on_batch
    )
    broker = RedisBroker(settings.redis_url, logger=None)  # type: ignore[arg-type]  # trap 6: no per-message log

    @broker.subscriber(  # type: ignore[untyped-decorator]
        stream=log_subscription(settings), parser=parse_raw_batch, decoder=decode_log_batch
    )
    async def on_log(entries: Any) -> None:
        batch: list[Entry] = entries
        try:
            await follower.step(batch)
        except Exception as exc:  # noqa: BLE001 - any failure here must stop the process, see fail_fast
            fail_fast(processor.name, exc)

    app = FastStream(broker, logger=None)

    @app.on_startup
    async def load_position() -> None:
        follower.floor = await follower.log.position(processor.name)
        log.info("service_starting", service=processor.name, position=follower.floor)

    @app.on_shutdown
    async def close() -> None:
        await redis.aclose()

    return app, follower
