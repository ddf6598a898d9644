"""The matching process: the generic follower app around the matching core, plus its L2 depth views."""

from __future__ import annotations

import asyncio

import structlog
from faststream import FastStream
from redis.asyncio import Redis

from services.matching.processor import MatchingProcessor
from services.matching.reports import MatchingReports
from services.runtime.app import cancel_tasks, follower_app
from services.runtime.system import Process, System
from shared.config import Settings
from shared.domain.values import fen_to_price
from shared.keys import Keys
from shared.reports import DEPTH_LEVELS, DepthView, encode_report

__all__ = ["DEPTH_INTERVAL_S", "build_app", "depth_view"]

DEPTH_INTERVAL_S = 0.05
log = structlog.get_logger("greenex.matching")


def depth_view(processor: MatchingProcessor, symbol: str, levels: int = DEPTH_LEVELS) -> bytes:
    """The public L2 view of one book as JSON."""
    book = processor.engine.book(symbol)
    bids, asks = book.depth(levels)
    return encode_report(
        DepthView(
            instrument=symbol,
            halted=book.halted,
            bids=[(fen_to_price(p), q) for p, q in bids],
            asks=[(fen_to_price(p), q) for p, q in asks],
        )
    )


async def publish_depth(processor: MatchingProcessor, redis: Redis, keys: Keys) -> None:
    """Rewrite the L2 view of every book that changed, at most every DEPTH_INTERVAL_S.

    Depth is a view, overwritten whole: idempotent, and off the matching path (a write per batch
    cost a round trip on every order).
    """
    while True:
        await asyncio.sleep(DEPTH_INTERVAL_S)
        if not processor.touched:
            continue
        touched, processor.touched = processor.touched, set()
        pipe = redis.pipeline(transaction=False)
        for symbol in touched:
            if symbol in processor.engine.books:
                pipe.set(keys.depth(symbol), depth_view(processor, symbol))
        try:
            await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - a view; the next round rewrites it
            processor.touched |= touched
            log.warning("depth_publish_failed", error=repr(exc))


def build_app(settings: Settings, system: System, process: Process) -> FastStream:
    hosted = follower_app(settings, system, process)
    processor = hosted.followers[0].processor
    if not isinstance(processor, MatchingProcessor):
        raise TypeError(f"the matching process must host the matching core first, not {processor.name}")
    if settings.reports_in_append:  # its events' reports go out in the append that logs them
        hosted.followers[0].reports = MatchingReports(processor, hosted.keys)  # before startup: it restores
    depth: list[asyncio.Task[None]] = []

    @hosted.app.after_startup
    async def start_depth() -> None:
        depth.append(asyncio.create_task(publish_depth(processor, hosted.redis, hosted.keys)))

    @hosted.app.on_shutdown
    async def stop_depth() -> None:
        await cancel_tasks(depth)

    return hosted.app
