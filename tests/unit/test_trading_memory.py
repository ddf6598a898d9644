"""The client library remembers answers for `outcome`, but not forever: a long session stays bounded."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

import shared.trading
from shared.reports import BalancesReport, encode_report
from shared.trading import TradingClient


async def test_the_oldest_answers_are_forgotten_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared.trading, "SEEN_LIMIT", 3)
    client = TradingClient(Redis(), "ann", "key", venue="v", prefix="p")  # never connects: reads are fed
    def answer(n: int) -> bytes:
        return encode_report(BalancesReport(seq=n, client_order_id=f"q{n}", as_of=n, cash="0.00",
                                            frozen_cash="0.00", free_cash="0.00", holdings=[]))  # fmt: skip

    answers = [answer(n) for n in range(5)]

    async def fed(count: int, block_ms: int) -> list[bytes]:
        return answers

    monkeypatch.setattr(client._client, "report_data", fed)
    assert len(await client._read(10, 1)) == 5
    assert list(client._seen) == ["q2", "q3", "q4"]
    await client.aclose()
