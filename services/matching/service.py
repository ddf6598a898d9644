"""The matching service: the pure core behind a FastStream shell, one consumer in strict log order."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from faststream import FastStream
from redis.asyncio import Redis

from services.matching.processor import MatchingProcessor
from services.runtime.app import follower_app
from shared.config import Settings
from shared.domain.values import fen_to_price
from shared.eventlog.entry import Entry

__all__ = ["build_app", "depth_view"]


def depth_view(processor: MatchingProcessor, symbol: str, levels: int = 10) -> bytes:
    """The public L2 view of one book as JSON."""
    book = processor.engine.book(symbol)
    bids, asks = book.depth(levels)
    return msgspec.json.encode(
        {
            "instrument": symbol,
            "halted": book.halted,
            "bids": [[fen_to_price(p), q] for p, q in bids],
            "asks": [[fen_to_price(p), q] for p, q in asks],
        }
    )


def build_app(settings: Settings) -> FastStream:
    processor = MatchingProcessor()
    redis = Redis.from_url(settings.redis_url)

    async def publish_depth(_: Sequence[Entry], __: Sequence[Entry]) -> None:
        # Depth is a view, overwritten whole each batch: idempotent, so a replay may rewrite it freely.
        if not processor.touched:
            return
        pipe = redis.pipeline(transaction=False)
        for symbol in processor.touched:
            if symbol in processor.engine.books:
                pipe.set(f"{settings.prefix}:md:depth:{symbol}", depth_view(processor, symbol))
        processor.touched.clear()
        await pipe.execute()

    app, _ = follower_app(processor, settings, on_batch=publish_depth, redis=redis)
    return app
