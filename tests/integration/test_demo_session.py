"""The demo's seed reproduces its session: two exchanges driven with the same seed log the same
decisions (every order accepted, rejected, traded, cancelled, replaced, expired, in the same order)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.demo import run_session, seed_exchange
from services.cli.session import SessionCounts
from shared.domain.codec import Event, decode_event
from tests.integration.exchange import provisioned
from tests.integration.load_support import log_entries, settled_exchange
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

_MATCHING = frozenset({"OrderAccepted", "OrderRejected", "TradeExecuted", "OrderCancelled", "OrderExpired",
                       "OrderReplaced", "TradeSettled"})  # fmt: skip


async def _session(
    redis_server_factory: Callable[..., RedisServer], home: Path, seed: int
) -> tuple[SessionCounts, list[Event]]:
    ex = provisioned(redis_server_factory, home, "repro")
    sup = ex.supervisor()
    await sup.start()
    try:
        await seed_exchange(ex.venue)
        counts = await run_session(ex.venue, 160, seed)
        await settled_exchange(ex.redis, ex.settings, timeout=90)
        entries = await log_entries(ex.redis, ex.settings)
        return counts, [decode_event(e.body) for e in entries if e.type in _MATCHING]
    finally:
        await sup.stop()
        await ex.venue.aclose()


async def test_the_same_seed_gives_the_same_session(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    first_counts, first = await _session(redis_server_factory, tmp_path / "a", 11)
    second_counts, second = await _session(redis_server_factory, tmp_path / "b", 11)
    assert first_counts.trades > 10  # a session that trades, not an empty one
    assert sum(first_counts.sent.values()) == 160
    assert first_counts == second_counts
    assert first == second
    _, other = await _session(redis_server_factory, tmp_path / "c", 12)
    assert other != first  # the seed matters
