"""kill -9 each service and Redis itself mid-load: after recovery nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.demo import seed_exchange
from services.cli.local import service_env
from services.cli.provision import ACL_FILE, init_keys
from services.cli.supervisor import PROCESSES, Supervisor
from services.cli.venue import Venue
from services.system import SYSTEM
from shared.config import ADMIN
from tests.integration.exchange import exchange_settings
from tests.integration.load_support import OrderLoad, exchange_problems, settled_exchange
from tests.redis_server import RedisServer
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

BURSTS, PER_CLIENT = 30, 12  # 6 participants x 12 x 30 = 2160 signed commands
SNAPSHOT_EVERY = 400  # small, so restarts resume from snapshots rather than from seq 0


async def kill_service(sup: Supervisor, name: str) -> None:
    """SIGKILL the running process of `name`, waiting for the supervisor's restart if one is under way."""
    await eventually(lambda: sup.procs[name].returncode is None, timeout=10)
    sup.procs[name].kill()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_kill_each_service_and_redis_mid_load(
    seed: int, redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """Every service and Redis are SIGKILLed once each, at seeded points of a bursty signed-order load.

    Services are restarted by the supervisor, Redis by the test from its AOF on the same port. Then every
    submitted order has exactly one verdict and one outcome (or rests), every trade settles exactly once,
    the log verifies, cash and tonnes conserve, each participant's reports are exactly those the log
    implies, and every service's live digest equals the replayed one.
    """
    rng = random.Random(seed)
    targets = [*PROCESSES, "redis"]
    rng.shuffle(targets)
    kill_at = dict(zip(sorted(rng.sample(range(2, BURSTS - 2), len(targets))), targets, strict=True))
    print(f"seed={seed} kills after bursts: {kill_at}")

    # ACLs on as deployed: the users (and the locked default) come from the ACL file at every start.
    keys_dir = tmp_path / "keys"
    server = redis_server_factory(appendonly=True, extra_args=("--aclfile", str(keys_dir / ACL_FILE)))
    settings = exchange_settings(server.url, "crash", keys_dir, snapshot_every=SNAPSHOT_EVERY)
    init_keys(settings, SYSTEM)
    server.start()
    venue = Venue(settings)
    redis = venue.redis(ADMIN)  # the test looks at everything
    sup = Supervisor(env=service_env(settings, GREENEX_LOG_LEVEL="WARNING"), log_dir=tmp_path / "logs")
    await sup.start()
    watcher = asyncio.create_task(sup.watch())
    try:
        await seed_exchange(venue)
        load = OrderLoad(venue, seed)
        for burst in range(BURSTS):
            await load.burst(PER_CLIENT)
            target = kill_at.get(burst)
            if target == "redis":
                server.kill()
                await asyncio.sleep(0.3)
                server.start()
                # Our own pooled connections died with it; nothing was in flight, so nothing to resend.
                await venue.disconnect()
            elif target is not None:
                await asyncio.sleep(rng.uniform(0.0, 0.1))  # somewhere inside the burst's processing
                await kill_service(sup, target)
            await asyncio.sleep(0.05)
        entries = await settled_exchange(redis, settings, timeout=60)
        assert await exchange_problems(redis, settings, entries) == []
        assert sum(sup.restarts.values()) >= len(PROCESSES), sup.restarts
        assert sum(e.type == "OrderSubmitted" for e in entries) > 1000
    finally:
        await sup.stop()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await venue.aclose()
