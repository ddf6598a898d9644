"""Losing every Redis key but the log costs time, never a second answer: positions come from the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.demo import seed_exchange
from services.system import SYSTEM
from shared.eventlog.verify import ChainVerifier
from tests.integration.exchange import provisioned
from tests.integration.load_support import OrderLoad, exchange_problems, settled_exchange
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

PER_CLIENT = 12


async def test_deleting_positions_snapshots_digests_and_cursor_then_restarting_does_nothing_twice(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """Trade, stop every service, DEL the producer positions, every snapshot, the digests and the report
    cursor, start
    again and trade on: no entry is answered twice (the log verifies with freshness), every order has
    one verdict, every trade settles once, every report is delivered once, the digests match."""
    ex = provisioned(redis_server_factory, tmp_path, "lost", snapshot_every=300)
    settings, venue, redis = ex.settings, ex.venue, ex.redis
    keys = settings.keys
    sup = ex.supervisor()
    await sup.start()
    try:
        await seed_exchange(venue)
        load = OrderLoad(venue, seed=5)
        for _ in range(4):
            await load.burst(PER_CLIENT)
        before = await settled_exchange(redis, settings, timeout=60)
        await sup.stop()
        kept = [*SYSTEM.core_names, *(name for p in SYSTEM.processes for name in p.keeps)]
        snapshots = [keys.snapshots(name) for name in kept]
        assert await redis.exists(keys.snapshots("intake"), keys.snapshots("intake-reports")) == 2
        assert await redis.exists(keys.positions, *snapshots) >= 4  # there was something to lose
        await redis.delete(keys.positions, keys.digests, keys.report_cursor, *snapshots)
        sup = ex.supervisor()
        await sup.start()
        for _ in range(3):
            await load.burst(PER_CLIENT)
        entries = await settled_exchange(redis, settings, timeout=60)
        assert len(entries) > len(before)
        assert await exchange_problems(redis, settings, entries) == []
        verifier = ChainVerifier(
            producer_keys=settings.keyring.producer_keys(),
            answers={core.name: core.answers_to for core in SYSTEM.cores},
        )
        for entry in entries:
            verifier.check(entry)  # an answer given twice would be named here
    finally:
        await sup.stop()
        await venue.aclose()
