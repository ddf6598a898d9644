"""`greenex loadtest`'s run against the real services: every order answered, nothing left behind."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from loadtests.live import RunConfig, run_load
from shared.keys import Keys

pytestmark = pytest.mark.integration


async def test_a_short_run_answers_every_order_and_leaves_no_keys(redis_server: str) -> None:
    """A small open-loop run through the four real services: all orders answered, match latency
    measured, per-process CPU read; and once the services have stopped (they write a last snapshot and
    digest as they stop) not one key of the run's prefix is left in Redis."""
    redis = Redis.from_url(redis_server)
    try:
        before = {k async for k in redis.scan_iter("{greenex-lt-*")}
        result = await run_load(RunConfig(rate=200, duration_s=None, count=200, redis_url=redis_server))
        summary = result.summary()
        assert (summary["sent"], summary["unanswered"]) == (200, 0)
        assert summary["match_ms"]["count"] > 0
        assert set(summary["cpu_us_per_order"]) >= {"intake", "verification", "matching", "settlement"}
        assert {k async for k in redis.scan_iter(Keys(result.prefix).everything)} == set()
        assert {k async for k in redis.scan_iter("{greenex-lt-*")} == before
    finally:
        await redis.aclose()
