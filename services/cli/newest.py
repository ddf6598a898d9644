"""A stream's rows from the newest back, a page at a time: how a retry finds what its first copy got."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from redis.asyncio import Redis

__all__ = ["newest_first"]

Row = tuple[bytes, dict[bytes, bytes]]


async def newest_first(redis: Redis, key: str, *, page: int, pages: int) -> AsyncIterator[Row]:
    """Rows of `key`, newest first, at most `page` x `pages` of them (a search gives up that far back)."""
    top = "+"
    for _ in range(pages):
        rows = cast(list[Row], await redis.xrevrange(key, top, "-", page))
        for row in rows:
            yield row
        if len(rows) < page:
            return
        top = f"({rows[-1][0].decode()}"  # exclusive: the page after the last row seen
