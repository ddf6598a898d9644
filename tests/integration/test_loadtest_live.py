"""`greenex loadtest`'s run against the real services: every order answered, nothing left behind."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from loadtests.live import RunConfig, run_load, run_partitioned
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
        redis_work = summary["redis_per_order"]  # every order is at least logged by the append script
        assert redis_work["evalsha"]["calls"] >= 1
        assert redis_work["evalsha"]["us"] > 0
        assert redis_work["xadd"]["calls"] >= redis_work["evalsha"]["calls"]  # the script's own XADDs
        assert {k async for k in redis.scan_iter(Keys(result.prefix).everything)} == set()
        assert {k async for k in redis.scan_iter("{greenex-lt-*")} == before
    finally:
        await redis.aclose()


async def test_a_partitioned_run_loads_every_partition_and_leaves_no_keys(redis_server: str) -> None:
    """`--partitions 2`: each partition's processes answer their share, each partition's keys are gone
    after."""
    redis = Redis.from_url(redis_server)
    try:
        before = {k async for k in redis.scan_iter("{greenex-lt-*")}
        results = await run_partitioned(
            RunConfig(rate=200, duration_s=None, count=200, redis_url=redis_server, partitions=2)
        )
        assert [(r.summary()["sent"], r.summary()["unanswered"]) for r in results] == [(100, 0), (100, 0)]
        assert {r.prefix for r in results} == {results[0].prefix}
        assert results[1].book.match.get_total_count() > 0
        assert {"intake@p2", "matching@p2", "transfers@p2"} <= set(results[0].summary()["cpu_cores"])
        assert {k async for k in redis.scan_iter("{greenex-lt-*")} == before
    finally:
        await redis.aclose()
