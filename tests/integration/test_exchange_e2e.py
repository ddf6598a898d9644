"""End to end over real Redis and the four service processes: raw XADD in, reports and settlement out."""

from __future__ import annotations

import json
import os
import subprocess
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import pytest

from services.cli.demo import DEMO_PARTICIPANTS, run_session, seed_exchange
from services.cli.views import conservation_problems
from services.intake.gateway import CONSUMER, GROUP
from services.intake.service import PENDING_RECHECK_S
from shared.domain.fees import MAKER_FEE_BPS, TAKER_FEE_BPS, fee
from tests.integration.exchange import Exchange

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def kinds(reports: list[dict[str, Any]], cid: str) -> list[str]:
    return [r.get("exec_type") or r["type"] for r in reports if r.get("client_order_id") == cid]


def of(reports: list[dict[str, Any]], cid: str, exec_type: str) -> list[dict[str, Any]]:
    return [r for r in reports if r.get("client_order_id") == cid and r.get("exec_type") == exec_type]


async def test_crossing_limit_trades_reports_settles_and_moves_balances(exchange: Exchange) -> None:
    """A buy above the ask fills at the ask; both sides get trade and settlement reports; DVP moves
    cash (with maker/taker fees to the exchange) and serial numbers seller -> buyer."""
    sym = await exchange.instrument()
    seller = await exchange.participant("seller", credits={sym: (1001, 1100)})
    buyer = await exchange.participant("buyer", cash="10000.00")
    await seller.send(
        "new_order",
        client_order_id="s1",
        instrument=sym,
        side="sell",
        order_type="limit",
        price="58.00",
        quantity=10,
    )
    await exchange.reports_until(seller, lambda r: "new" in kinds(r, "s1"))
    await buyer.send(
        "new_order",
        client_order_id="b1",
        instrument=sym,
        side="buy",
        order_type="limit",
        price="58.10",
        quantity=4,
    )
    got = await exchange.reports_until(buyer, lambda r: any(x["type"] == "settlement" for x in r))
    trade = of(got, "b1", "trade")[0]
    assert (
        trade["last_qty"],
        trade["last_price"],
        trade["cum_qty"],
        trade["leaves_qty"],
        trade["ord_status"],
    ) == (4, "58.00", 4, 0, "filled")
    settlement = next(x for x in got if x["type"] == "settlement")
    assert (settlement["serials"], settlement["cash"], settlement["side"]) == (
        [[1001, 1004]],
        "232.00",
        "buy",
    )
    maker = await exchange.reports_until(seller, lambda r: any(x["type"] == "settlement" for x in r))
    assert of(maker, "s1", "trade")[0]["leaves_qty"] == 6
    assert of(maker, "s1", "trade")[0]["ord_status"] == "partially_filled"
    feed = [t for t in await exchange.trades_feed() if t["instrument"] == sym]
    assert [(t["price"], t["quantity"], t["aggressor"]) for t in feed] == [("58.00", 4, "buy")]
    state = await exchange.drained()
    depth = json.loads(await exchange.redis.get(exchange.settings.keys.depth(sym)) or b"{}")
    assert (depth["bids"], depth["asks"], depth["halted"]) == ([], [["58.00", 6]], False)
    balances = state.settlement.balances()
    assert balances[buyer.participant] == 1_000_000 - 23_200 - fee(23_200, TAKER_FEE_BPS)
    assert balances[seller.participant] == 100_000_000 + 23_200 - fee(23_200, MAKER_FEE_BPS)
    assert [(b.start, b.end) for b in state.settlement.holdings(buyer.participant)[sym]] == [(1001, 1004)]
    assert [(b.start, b.end) for b in state.settlement.holdings(seller.participant)[sym]] == [(1005, 1100)]


async def test_market_order_sweeps_three_levels_and_expires_the_rest(exchange: Exchange) -> None:
    """A market buy takes three ask levels in price order; the unfilled rest expires."""
    sym = await exchange.instrument()
    seller = await exchange.participant("mm", credits={sym: (1, 1000)})
    buyer = await exchange.participant("taker", cash="100000.00")
    for i, price in enumerate(("58.00", "58.05", "58.10")):
        await seller.send(
            "new_order",
            client_order_id=f"a{i}",
            instrument=sym,
            side="sell",
            order_type="limit",
            price=price,
            quantity=5,
        )
    await exchange.reports_until(seller, lambda r: len([x for x in r if x.get("exec_type") == "new"]) == 3)
    await buyer.send(
        "new_order",
        client_order_id="m1",
        instrument=sym,
        side="buy",
        order_type="market",
        quantity=20,
        time_in_force="IOC",
    )
    got = await exchange.reports_until(buyer, lambda r: "expired" in kinds(r, "m1"))
    assert [(t["last_price"], t["last_qty"]) for t in of(got, "m1", "trade")] == [
        ("58.00", 5),
        ("58.05", 5),
        ("58.10", 5),
    ]
    assert of(got, "m1", "expired")[0]["last_qty"] == 5


async def test_fok_kill_ioc_expiry_cancel_and_replace(exchange: Exchange) -> None:
    """FOK larger than the book is killed untraded; IOC trades then expires; cancel and replace work."""
    sym = await exchange.instrument()
    seller = await exchange.participant("mm", credits={sym: (1, 1000)})
    buyer = await exchange.participant("taker", cash="100000.00")
    await seller.send(
        "new_order",
        client_order_id="a1",
        instrument=sym,
        side="sell",
        order_type="limit",
        price="58.00",
        quantity=5,
    )
    await seller.send(
        "new_order",
        client_order_id="a2",
        instrument=sym,
        side="sell",
        order_type="limit",
        price="58.50",
        quantity=5,
    )
    await exchange.reports_until(seller, lambda r: "new" in kinds(r, "a2"))
    await buyer.send(
        "new_order",
        client_order_id="f1",
        instrument=sym,
        side="buy",
        order_type="limit",
        price="58.00",
        quantity=6,
        time_in_force="FOK",
    )
    got = await exchange.reports_until(buyer, lambda r: "expired" in kinds(r, "f1"))
    assert kinds(got, "f1") == ["new", "expired"]
    await buyer.send(
        "new_order",
        client_order_id="i1",
        instrument=sym,
        side="buy",
        order_type="limit",
        price="58.00",
        quantity=7,
        time_in_force="IOC",
    )
    got = await exchange.reports_until(buyer, lambda r: "expired" in kinds(r, "i1"))
    assert kinds(got, "i1") == ["new", "trade", "expired"]
    assert of(got, "i1", "expired")[0]["last_qty"] == 2
    await seller.send(
        "replace_order",
        client_order_id="a2r",
        instrument=sym,
        orig_client_order_id="a2",
        price="58.40",
        quantity=8,
    )
    got = await exchange.reports_until(seller, lambda r: "replaced" in kinds(r, "a2r"))
    replaced = of(got, "a2r", "replaced")[0]
    assert (replaced["price"], replaced["leaves_qty"], replaced["orig_client_order_id"]) == ("58.40", 8, "a2")
    await seller.send("cancel_order", client_order_id="c1", instrument=sym, orig_client_order_id="a2r")
    got = await exchange.reports_until(seller, lambda r: "cancelled" in kinds(r, "c1"))
    cancelled = of(got, "c1", "cancelled")[0]  # under the cancel request's id, naming the order
    assert cancelled["orig_client_order_id"] == "a2r"
    assert cancelled["last_qty"] == 8
    state = await exchange.drained()
    assert state.matching.engine.book(sym).depth() == ([], [])
    assert state.verification.account(seller.participant)[2][sym][1] == 0  # nothing left frozen


async def test_self_trade_prevention_cancels_the_resting_order(exchange: Exchange) -> None:
    """A participant's buy meeting its own sell cancels the resting sell instead of trading."""
    sym = await exchange.instrument()
    both = await exchange.participant("both", credits={sym: (1, 100)})
    await both.send(
        "new_order",
        client_order_id="s",
        instrument=sym,
        side="sell",
        order_type="limit",
        price="58.00",
        quantity=5,
    )
    await both.send(
        "new_order",
        client_order_id="b",
        instrument=sym,
        side="buy",
        order_type="limit",
        price="58.00",
        quantity=5,
    )
    got = await exchange.reports_until(
        both, lambda r: "cancelled" in kinds(r, "s") and "new" in kinds(r, "b")
    )
    assert of(got, "s", "cancelled")[0]["reason"]["code"] == "self_trade_prevented"
    assert not [r for r in got if r.get("exec_type") == "trade"]


async def test_demo_session_conserves_cash_and_credits(exchange: Exchange) -> None:
    """After a demo session of signed orders from six companies: cash (fees included) and tonnes equal
    what was deposited and issued, no account is negative, no serial is held twice, every trade settled
    once, and nothing is left frozen beyond the orders still resting."""
    await seed_exchange(exchange.venue)
    await run_session(exchange.venue, 900, seed=7, tick=lambda _: None)
    state = await exchange.drained(timeout=60)
    assert conservation_problems(state) == []
    assert state.counts["TradeExecuted"] > 50
    assert state.counts["TradeExecuted"] == state.counts["TradeSettled"]
    resting = sum(len(book.orders) for book in state.matching.engine.books.values())
    frozen_cash = sum(state.verification.account(p)[1] for p, *_ in DEMO_PARTICIPANTS)
    assert (resting > 0) == (frozen_cash > 0)


async def test_a_shell_client_with_redis_cli_and_openssl_can_trade(exchange: Exchange) -> None:
    """The docs/protocol.md recipe: sign with openssl, send with redis-cli logged in as the participant's
    own Redis user (the password from the environment, never an argument): an order, a balance query, a
    mass cancel, each answered on the participant's report stream, which redis-cli reads back."""
    sym = await exchange.instrument()
    shell = await exchange.participant("shell")
    port = urlparse(exchange.settings.redis_url).port
    password = exchange.venue.credentials[shell.participant].redis_password

    def run(script: str, **env: str) -> str:
        done = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=10, check=False,
            env={**os.environ, "SECRET": shell.secret, "REDISCLI_AUTH": password, **env},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def send(**command: object) -> None:
        now_ms = time.time_ns() // 1_000_000
        stamp = {"participant": shell.participant, "venue": shell.venue, "sent_ms": now_ms}
        body = json.dumps({**stamp, **command}, separators=(",", ":"), sort_keys=True)
        run(
            f"sig=$(printf '%s' \"$BODY\" | openssl dgst -sha256 -hmac \"$SECRET\" | cut -d' ' -f2)\n"
            f"redis-cli -p {port} --user {shell.participant} XADD {shell.in_key} '*' data "
            '"${BODY%\\}},\\"sig\\":\\"$sig\\"}"\n',
            BODY=body,
        )

    send(type="new_order", client_order_id="b1", instrument=sym, order_type="limit", price="58.10",
         quantity=10, side="buy", time_in_force="GTC")  # fmt: skip
    got = await exchange.reports_until(shell, bool)
    assert [(r["client_order_id"], r["exec_type"], r["price"], r["leaves_qty"]) for r in got] == [
        ("b1", "new", "58.10", 10)
    ]
    send(type="query", client_order_id="q1", query="balances")
    (balances,) = await exchange.reports_until(shell, bool)
    # 10 t at 58.10 froze 10 x (58.10 + 0.03, the highest fee per tonne rounded up to the fen).
    assert (balances["type"], balances["client_order_id"]) == ("balances", "q1")
    assert balances["frozen_cash"] == "581.30"
    assert Decimal(balances["free_cash"]) == Decimal(balances["cash"]) - Decimal("581.30")
    send(type="mass_cancel", client_order_id="m1", instrument=sym)
    done = await exchange.reports_until(shell, lambda rs: rs[-1]["type"] == "mass_cancel")
    assert [(r["type"], r["client_order_id"], r.get("orig_client_order_id")) for r in done] == [
        ("execution_report", "m1", "b1"), ("mass_cancel", "m1", None)
    ]  # fmt: skip
    out_key = exchange.settings.keys.reports(shell.participant)
    read_back = run(f"redis-cli -p {port} --user {shell.participant} XRANGE {out_key} - +")
    assert '"type":"mass_cancel"' in read_back
    assert '"cancelled":1' in read_back


async def test_a_command_stranded_in_intakes_pending_list_is_still_handled(exchange: Exchange) -> None:
    """If Redis delivered an entry to intake but the reply was lost (a broken connection), the entry sits
    in intake's pending list; intake's periodic re-drain handles it without a restart."""
    sym = await exchange.instrument()
    client = await exchange.participant("lost")
    await exchange.drained()
    command = client.command(
        "new_order",
        client_order_id="p1",
        instrument=sym,
        side="buy",
        order_type="limit",
        price="58.00",
        quantity=1,
    )
    # Play the lost reply: in one transaction, add the entry and read it as intake's consumer, so Redis
    # marks it delivered to intake before intake itself can read it.
    pipe = exchange.redis.pipeline(transaction=True)
    pipe.xadd(client.in_key, {"data": json.dumps(command)})
    pipe.xreadgroup(GROUP, CONSUMER, {client.in_key: ">"}, count=10)
    _, stolen = await pipe.execute()
    assert len(stolen[0][1]) == 1
    got = await exchange.reports_until(client, bool, timeout=PENDING_RECHECK_S * 4)
    assert [(r["client_order_id"], r["exec_type"]) for r in got] == [("p1", "new")]
