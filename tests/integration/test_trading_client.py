"""The client library against a running exchange: typed outcomes, refusals as exceptions with the reason
code, a fill reported to both sides, a retry with the same client order id that executes nothing twice,
balances, open orders and order status answered on the report stream, and a mass cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from services.cli.demo import seed_exchange
from services.intake.limits import QUERY_BURST
from shared.domain.values import Side
from shared.reports import BalancesReport, ExecType, ExecutionReport, Report, SettlementReport
from shared.trading import Rejected, TradingClient
from tests.integration.exchange import provisioned
from tests.integration.load_support import log_entries, settled_exchange
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


async def test_trade_refusal_and_retry_through_the_client_library(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    ex = provisioned(redis_server_factory, tmp_path, "lib")
    settings, venue, redis = ex.settings, ex.venue, ex.redis
    sup = ex.supervisor()
    await sup.start()
    try:
        await seed_exchange(venue)
        await settled_exchange(redis, settings, timeout=60)

        async def session(name: str) -> TradingClient:
            creds = venue.credentials[name]
            return await TradingClient.connect(
                settings.redis_url, name, creds.redis_password, creds.signing_key, venue=settings.venue,
                prefix=settings.prefix,
            )  # fmt: skip

        async with await session("cementco") as seller, await session("greenfund") as buyer:
            ask = await seller.sell("SZEA-2025", 7, price="50.00")
            new = await seller.outcome(ask)
            assert isinstance(new, ExecutionReport)
            assert new.exec_type is ExecType.NEW

            with pytest.raises(Rejected) as refused:
                await buyer.outcome(await buyer.buy("SZEA-2025", 1, price="50.005"))
            assert refused.value.code == "invalid_tick"

            start = await buyer.balances()
            bid = await buyer.buy("SZEA-2025", 7, price="50.00", client_order_id="gf-bid-1")
            assert isinstance(await buyer.outcome(bid), ExecutionReport)
            again = await buyer.buy("SZEA-2025", 7, price="50.00", client_order_id="gf-bid-1")  # a retry
            assert again == bid
            copy = await _next(buyer, lambda r: _refused(r, bid))
            assert isinstance(copy, ExecutionReport)
            assert not isinstance(copy.reason, msgspec.UnsetType)
            assert copy.reason.code == "duplicate_client_order_id"
            settled = await _next(seller, lambda r: isinstance(r, SettlementReport))
            assert isinstance(settled, SettlementReport)
            assert settled.quantity == 7
            await _after_the_trade(buyer, start)
            await _mass_cancel(seller)
            await _throttled_queries_are_asked_again(buyer)
        await settled_exchange(redis, settings, timeout=60)
        entries = await log_entries(redis, settings)
        assert len([e for e in entries if e.event_id.startswith("greenfund/gf-bid-1/")]) == 1  # nothing twice
    finally:
        await sup.stop()
        await venue.aclose()


async def _after_the_trade(buyer: TradingClient, start: BalancesReport) -> None:
    """The seller saw the trade settle, so the settlement is in the log before the buyer's query: 7 t more,
    350.00 + 0.18 taker fee less."""
    end = await buyer.balances()
    held = {h.instrument: h.held for h in end.holdings}
    held_before = {h.instrument: h.held for h in start.holdings}
    assert held["SZEA-2025"] - held_before.get("SZEA-2025", 0) == 7
    assert Decimal(start.cash) - Decimal(end.cash) == Decimal("350.18")
    assert end.as_of > start.as_of
    assert await buyer.open_orders() == []


async def _throttled_queries_are_asked_again(client: TradingClient) -> None:
    """Past the query burst the exchange refuses `rate_limited`; the client pauses and asks again, so the
    call still answers."""
    throttled: list[Report] = []

    def heard(report: Report) -> None:
        if isinstance(report, ExecutionReport) and report.reason and report.reason.code == "rate_limited":
            throttled.append(report)

    client.listener = heard
    burst = [client._client.command("query", client_order_id=f"burst-{n}", query="balances")
             for n in range(QUERY_BURST + 50)]  # fmt: skip
    await client._client.send_many(burst)  # one pipeline, answers not awaited: the bucket runs dry
    # Asked together right behind it: refused at first, then asked again until answered.
    answers = await asyncio.gather(*(client.balances(timeout=30) for _ in range(40)))
    client.listener = None
    assert all(isinstance(a, BalancesReport) for a in answers)
    mine = [r for r in throttled if isinstance(r, ExecutionReport) and r.client_order_id.startswith("q-")]
    assert mine, "the client's own query was never throttled: the retry path did not run"


async def _mass_cancel(seller: TradingClient) -> None:
    asks = [await seller.sell("SZEA-2025", 1, price=p) for p in ("52.00", "51.50")]
    bid = await seller.buy("SZEA-2025", 1, price="44.00")
    for cid in (*asks, bid):
        await seller.outcome(cid)
    status = await seller.order_status(asks[1])
    assert status.exec_type is ExecType.ORDER_STATUS
    assert (status.orig_client_order_id, status.price, status.leaves_qty) == (asks[1], "51.50", 1)
    assert [o.client_order_id for o in await seller.open_orders("SZEA-2025")] == [*asks, bid]
    done = await seller.mass_cancel("SZEA-2025", side="sell")
    assert done.cancelled == 2
    left = await seller.open_orders()
    assert [(o.client_order_id, o.side) for o in left] == [(bid, Side.BUY)]
    with pytest.raises(Rejected) as gone:
        await seller.order_status(asks[0])
    assert gone.value.code == "unknown_order"


def _refused(report: Report, client_order_id: str) -> bool:
    return (
        isinstance(report, ExecutionReport)
        and report.exec_type is ExecType.REJECTED
        and report.client_order_id == client_order_id
    )


async def _next(client: TradingClient, wanted: Callable[[Report], bool], timeout: float = 15) -> Report:
    async def first() -> Report:
        async for report in client.reports(block_ms=200):
            if wanted(report):
                return report
        raise AssertionError("reports() ended")

    return await asyncio.wait_for(first(), timeout)
