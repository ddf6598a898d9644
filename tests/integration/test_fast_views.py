"""Operator views from the services' snapshots plus the tail: the same state as a replay of the whole
log, core by core, and a snapshot nobody sealed is refused (the view then replays further back)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.demo import run_session, seed_exchange
from services.cli.fastview import view_state
from services.cli.history import history
from services.cli.readmodel import replay_log
from services.runtime.snapshots import Snapshot, encode_record
from shared.eventlog.auth import ProducerKeys
from tests.integration.exchange import provisioned, run_greenex
from tests.integration.load_support import settled_exchange
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]


async def test_views_from_snapshots_equal_a_full_replay(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    ex = provisioned(redis_server_factory, tmp_path, "fast", snapshot_every=150)
    settings, redis = ex.settings, ex.redis
    sup = ex.supervisor()
    await sup.start()
    try:
        await seed_exchange(ex.venue)
        await run_session(ex.venue, 600, 7, lambda n: None)
        await settled_exchange(redis, settings, timeout=90)
        full = await replay_log(history(settings, redis))
        fast = await view_state(settings, redis)
        assert fast.partial  # it started from snapshots, not from seq 0
        assert (fast.seq, fast.head_hash) == (full.seq, full.head_hash)
        assert fast.core_digests() == full.core_digests()

        # A forged newest snapshot of settlement (sealed with another key) is refused, not shown.
        real = await redis.lindex(settings.keys.snapshots("settlement"), 0)
        assert real is not None
        forged = Snapshot(service="settlement", seq=full.seq, head_hash=full.head_hash, logged_position="",
                          taken_ns=0, state=b"\x90")  # fmt: skip
        stranger = ProducerKeys(b"x" * 32)
        await redis.lpush(settings.keys.snapshots("settlement"), encode_record(forged, stranger))
        again = await view_state(settings, redis)
        assert again.core_digests() == full.core_digests()

        shown = run_greenex(ex.env, "balances", "greenfund")
        assert shown.returncode == 0, shown.stderr
        assert "greenfund" in shown.stdout
    finally:
        await sup.stop()
        await ex.venue.aclose()
