"""Losing every Redis key but the log costs time, never a second answer: positions come from the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.demo import seed_exchange
from services.cli.local import service_env
from services.cli.provision import ACL_FILE, init_keys
from services.cli.supervisor import Supervisor
from services.cli.venue import Venue
from services.runtime.acl import ADMIN
from services.system import SYSTEM
from shared.eventlog.verify import ChainVerifier
from tests.integration.exchange import exchange_settings
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
    keys_dir = tmp_path / "keys"
    server = redis_server_factory(extra_args=("--aclfile", str(keys_dir / ACL_FILE)))
    settings = exchange_settings(server.url, "lost", keys_dir, snapshot_every=300)
    init_keys(settings, SYSTEM)
    server.start()
    venue = Venue(settings)
    redis = venue.redis(ADMIN)
    keys = settings.keys

    def supervisor() -> Supervisor:
        return Supervisor(env=service_env(settings, GREENEX_LOG_LEVEL="WARNING"), log_dir=tmp_path / "logs")

    sup = supervisor()
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
        sup = supervisor()
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
