"""The running exchange shared by an end-to-end test module: its own prefix, the four real services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from shared.config import Settings
from tests.integration.exchange import Exchange


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exchange(redis_server: str) -> AsyncIterator[Exchange]:
    """One exchange per module on the session's Redis; tests keep apart by unique names, not flushes."""
    settings = Settings(redis_url=redis_server, prefix=f"e2e{uuid.uuid4().hex[:8]}")
    redis = Redis.from_url(redis_server)
    ex = Exchange(redis, settings)
    await ex.start()
    yield ex
    await ex.stop()
    await redis.aclose()
