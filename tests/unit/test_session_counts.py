"""The demo's summary adds up: every logged command is counted once, every new order has one fate."""

from __future__ import annotations

import re

from loadtests.replay_bench import build_exchange_log
from services.cli.readmodel import replay_entries
from services.cli.views import session_lines


def _numbers(line: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", line)]


async def test_the_session_lines_reconcile() -> None:
    log = await build_exchange_log(2000, 5)
    state = replay_entries(await log.read(0, 10**9))
    logged, orders, _, queries = session_lines(state)
    total, *parts = _numbers(logged)
    assert total == sum(parts) == 2000  # every command the seeded session sent
    new, verified, by_verification, by_matching = _numbers(orders)
    assert new == verified + by_verification
    assert new >= verified > 0
    assert 0 <= by_matching < verified
    asked, *answered, mass_cancels = _numbers(queries)
    assert asked == sum(answered)  # every query answered once (none in this log: 0 = 0)
    assert mass_cancels == 0
