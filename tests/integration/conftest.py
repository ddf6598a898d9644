"""The running exchange shared by an end-to-end test module: its own prefix, the four real services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.integration.exchange import Exchange, exchange_settings


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exchange(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Exchange]:
    """One exchange per module on the session's Redis, ACLs on; tests keep apart by unique names."""
    keys_dir = tmp_path_factory.mktemp("keys")
    settings = exchange_settings(redis_server, f"e2e{uuid.uuid4().hex[:8]}", keys_dir)
    redis = Redis.from_url(redis_server)
    ex = Exchange(redis, settings)
    await ex.start()
    yield ex
    await ex.stop()
    await redis.aclose()
