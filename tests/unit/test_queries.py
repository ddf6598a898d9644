"""Mass cancel and the account queries (balances, open orders, order status), end to end in one process:
each answer is a report on the sender's stream that reflects every log entry before the request."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from services.harness import InProcessExchange
from services.intake.limits import QUERY_BURST
from services.matching.engine import MatchingEngine
from services.verification.core import Verification
from shared.domain.queries import MAX_ORDERS_PER_ANSWER
from shared.domain.values import Side
from shared.reports import (
    BalancesReport,
    CashReport,
    CashStatus,
    ExecType,
    ExecutionReport,
    MassCancelReport,
    OpenOrdersReport,
    RegistryEventKind,
    RegistryReport,
    Report,
    SettlementReport,
)
from tests.support import FakeClock

KEYS = {"ann": "ann-key-0123456789", "bob": "bob-key-0123456789"}
SPECS = [
    {"symbol": "SZEA-T", "kind": "allowance", "standard": "SZEA", "registry": "SZ", "vintage": 2025,
     "reference_price": "50.00"},
    {"symbol": "CEA-T", "kind": "allowance", "standard": "CEA", "registry": "MEE", "vintage": 2025,
     "reference_price": "80.00"},
]  # fmt: skip


async def _exchange() -> InProcessExchange:
    ex = InProcessExchange(clock=FakeClock())
    await ex.submit([ex.operator_command(f"list-{i}", "list_instrument", **s) for i, s in enumerate(SPECS)])
    await ex.submit([ex.register(p, key) for p, key in KEYS.items()])
    await ex.submit([
        ex.operator_command("dep-ann", "deposit_cash", participant="ann", amount="100000.00"),
        ex.operator_command("dep-bob", "deposit_cash", participant="bob", amount="5000.00"),
        ex.operator_command("iss-bob", "issue_credits", participant="bob", instrument="SZEA-T",
                            serial_start=1, serial_end=100),
    ])  # fmt: skip
    return ex


async def _send(ex: InProcessExchange, who: str, **fields: Any) -> None:
    await ex.submit([(who, ex.command(who, KEYS[who], **fields))])


async def _order(ex: InProcessExchange, who: str, cid: str, instrument: str, side: str, price: str,
                 qty: int) -> None:  # fmt: skip
    await _send(ex, who, type="new_order", client_order_id=cid, instrument=instrument, side=side,
                order_type="limit", price=price, quantity=qty)  # fmt: skip


def _answer(ex: InProcessExchange, who: str, cid: str, kind: type[object] = object) -> Report:
    mine = [r for d in ex.reports if d.participant == who and isinstance(r := d.report, kind)
            and getattr(r, "client_order_id", "") == cid]  # fmt: skip
    assert len(mine) == 1, mine
    return mine[0]


async def test_balances_answer_cash_and_holdings_after_a_trade() -> None:
    ex = await _exchange()
    await _order(ex, "bob", "s-1", "SZEA-T", "sell", "50.00", 10)
    await _order(ex, "ann", "b-1", "SZEA-T", "buy", "50.00", 4)  # trades 4 t at 50.00
    await _order(ex, "ann", "b-2", "SZEA-T", "buy", "49.00", 2)  # rests: freezes 2 x (49.00 + fee)
    await _send(ex, "ann", type="query", client_order_id="q-ann", query="balances")
    await _send(ex, "bob", type="query", client_order_id="q-bob", query="balances")
    ann, bob = _answer(ex, "ann", "q-ann"), _answer(ex, "bob", "q-bob")
    assert isinstance(ann, BalancesReport)
    assert isinstance(bob, BalancesReport)
    # ann paid 200.00 + taker fee 5 bp (0.10); 2 x (49.00 + 0.03, the highest fee per tonne rounded up)
    # stay frozen.
    assert (ann.cash, ann.frozen_cash, ann.free_cash) == ("99799.90", "98.06", "99701.84")
    assert [(h.instrument, h.held, h.frozen, h.free) for h in ann.holdings] == [("SZEA-T", 4, 0, 4)]
    # bob got 200.00 less the maker fee 2 bp (0.04); 6 t of his sell still rest.
    assert bob.cash == "5199.96"
    assert [(h.instrument, h.held, h.frozen, h.free) for h in bob.holdings] == [("SZEA-T", 96, 6, 90)]
    seqs = [d.report.seq for d in ex.reports if d.participant == "ann" and d.report is not ann]
    assert ann.as_of > max(s for s in seqs if s is not None and s < ann.seq)


async def test_open_orders_and_order_status() -> None:
    ex = await _exchange()
    await _order(ex, "bob", "s-1", "SZEA-T", "sell", "51.00", 10)
    await _order(ex, "ann", "b-1", "SZEA-T", "buy", "49.00", 3)
    await _order(ex, "ann", "b-2", "CEA-T", "buy", "79.00", 1)
    await _order(ex, "ann", "b-3", "SZEA-T", "buy", "51.00", 4)  # fills 4 of bob's 10
    await _send(ex, "ann", type="query", client_order_id="q-1", query="open_orders")
    await _send(ex, "ann", type="query", client_order_id="q-2", query="open_orders", instrument="CEA-T")
    for who, cid, order in (("bob", "q-3", "s-1"), ("ann", "q-4", "b-3")):
        await _send(ex, who, type="query", client_order_id=cid, query="order_status",
                    orig_client_order_id=order)  # fmt: skip
    every = _answer(ex, "ann", "q-1")
    assert isinstance(every, OpenOrdersReport)
    assert [(o.client_order_id, o.instrument, o.price, o.leaves_qty) for o in every.orders] == [
        ("b-1", "SZEA-T", "49.00", 3), ("b-2", "CEA-T", "79.00", 1)
    ]  # fmt: skip
    assert every.more is False
    cea = _answer(ex, "ann", "q-2")
    assert isinstance(cea, OpenOrdersReport)
    assert [o.client_order_id for o in cea.orders] == ["b-2"]
    status = _answer(ex, "bob", "q-3")
    assert isinstance(status, ExecutionReport)
    assert status.exec_type is ExecType.ORDER_STATUS
    assert (status.orig_client_order_id, status.cum_qty, status.leaves_qty, status.ord_status.value) == (
        "s-1", 4, 6, "partially_filled"
    )  # fmt: skip
    filled = _answer(ex, "ann", "q-4")
    assert isinstance(filled, ExecutionReport)
    assert filled.exec_type is ExecType.REJECTED
    assert filled.reason
    assert filled.reason.code == "unknown_order"


async def test_open_orders_come_in_pages() -> None:
    ex = await _exchange()
    total = MAX_ORDERS_PER_ANSWER + 3
    await ex.submit([
        ("ann", ex.command("ann", KEYS["ann"], type="new_order", client_order_id=f"b-{i}",
                           instrument="SZEA-T", side="buy", order_type="limit", price="45.00", quantity=1))
        for i in range(total)
    ])  # fmt: skip
    await _send(ex, "ann", type="query", client_order_id="p-1", query="open_orders")
    first = _answer(ex, "ann", "p-1")
    assert isinstance(first, OpenOrdersReport)
    assert first.more is True
    assert len(first.orders) == MAX_ORDERS_PER_ANSWER
    await _send(ex, "ann", type="query", client_order_id="p-2", query="open_orders",
                after_order_id=first.orders[-1].order_id)  # fmt: skip
    second = _answer(ex, "ann", "p-2")
    assert isinstance(second, OpenOrdersReport)
    assert second.more is False
    ids = [o.order_id for o in first.orders + second.orders]
    assert len(ids) == total
    assert ids == sorted(set(ids))


async def test_mass_cancel_by_instrument_and_side_releases_what_it_froze() -> None:
    ex = await _exchange()
    await _order(ex, "ann", "b-1", "SZEA-T", "buy", "49.00", 3)
    await _order(ex, "ann", "b-2", "CEA-T", "buy", "79.00", 1)
    await _order(ex, "bob", "s-1", "SZEA-T", "sell", "55.00", 5)
    await _order(ex, "bob", "s-2", "SZEA-T", "sell", "54.00", 5)
    await _send(ex, "ann", type="mass_cancel", client_order_id="m-1", instrument="SZEA-T", side="buy")
    await _send(ex, "bob", type="mass_cancel", client_order_id="m-2", side="buy")  # bob has no buys
    done = _answer(ex, "ann", "m-1", MassCancelReport)
    assert isinstance(done, MassCancelReport)
    assert (done.instrument, done.side, done.cancelled) == ("SZEA-T", "buy", 1)
    cancelled = [d.report for d in ex.reports if isinstance(d.report, ExecutionReport)
                 and d.report.exec_type is ExecType.CANCELLED]  # fmt: skip
    assert [(r.client_order_id, r.orig_client_order_id) for r in cancelled] == [("m-1", "b-1")]
    nothing = _answer(ex, "bob", "m-2")
    assert isinstance(nothing, MassCancelReport)
    assert nothing.cancelled == 0
    await _send(ex, "bob", type="mass_cancel", client_order_id="m-3")
    assert isinstance(every := _answer(ex, "bob", "m-3", MassCancelReport), MassCancelReport)
    assert every.cancelled == 2
    verification = ex.core("verification").processor
    assert isinstance(verification, Verification)
    # Only CEA-T's 1 t at 79.00 plus its highest fee per tonne (0.04) stays frozen.
    assert verification.account("ann")[1] == 79_04
    assert verification.account("bob")[2]["SZEA-T"][1] == 0  # bob's sells froze nothing any more


async def test_a_query_on_an_unknown_instrument_is_refused() -> None:
    ex = await _exchange()
    await _send(ex, "ann", type="query", client_order_id="q-x", query="open_orders", instrument="NOPE")
    await _send(ex, "ann", type="query", client_order_id="q-y", query="order_status")
    refusals = {r.client_order_id: r.reason.code for d in ex.reports
                if isinstance(r := d.report, ExecutionReport) and r.reason}  # fmt: skip
    assert refusals == {"q-x": "unknown_instrument", "q-y": "malformed"}


async def test_reports_add_up_to_the_balances_answer() -> None:
    """Every movement of cash and tonnes is reported: summing a participant's reports from the first one
    gives exactly what a balances query answers (the contract's promise to clients in other languages)."""
    ex = await _exchange()
    await _order(ex, "bob", "s-1", "SZEA-T", "sell", "50.00", 10)
    await _order(ex, "ann", "b-1", "SZEA-T", "buy", "50.00", 6)
    await _send(ex, "bob", type="retire_credits", client_order_id="r-1", instrument="SZEA-T", quantity=3,
                beneficiary="bob's FY2025 scope 1")  # fmt: skip
    await ex.submit([
        ex.operator_command("wd-1", "withdraw_cash", participant="bob", amount="100.00"),
        ex.operator_command("wd-2", "withdraw_cash", participant="ann", amount="999999.00"),  # refused
    ])  # fmt: skip
    kinds = [(d.participant, r.status.value) for d in ex.reports if isinstance(r := d.report, CashReport)]
    assert ("bob", "withdrawn") in kinds
    assert ("ann", "rejected") in kinds
    for who in KEYS:
        await _send(ex, who, type="query", client_order_id=f"q-{who}", query="balances")
        answer = _answer(ex, who, f"q-{who}")
        assert isinstance(answer, BalancesReport)
        mine = [d.report for d in ex.reports if d.participant == who and d.report is not answer]
        cash, tonnes = _summed(mine)
        assert str(cash) == answer.cash
        assert tonnes == {h.instrument: h.held for h in answer.holdings}


_MOVES = (RegistryEventKind.CREDITS_ISSUED, RegistryEventKind.RETIRED, RegistryEventKind.CANCELLED)


def _summed(reports: Iterable[Report]) -> tuple[Decimal, dict[str, int]]:
    cash, tonnes = Decimal(0), dict[str, int]()
    for r in reports:
        if isinstance(r, CashReport) and r.status is not CashStatus.REJECTED:
            cash += Decimal(r.amount) if r.status is CashStatus.DEPOSITED else -Decimal(r.amount)
        elif isinstance(r, SettlementReport):
            cash += Decimal(r.net_cash)
            bought = r.quantity if r.side is Side.BUY else -r.quantity
            tonnes[r.instrument] = tonnes.get(r.instrument, 0) + bought
        elif isinstance(r, RegistryReport) and r.event in _MOVES:
            assert isinstance(r.instrument, str)
            assert isinstance(r.quantity, int)
            moved = r.quantity if r.event is RegistryEventKind.CREDITS_ISSUED else -r.quantity
            tonnes[r.instrument] = tonnes.get(r.instrument, 0) + moved
    return cash, {k: v for k, v in tonnes.items() if v}


async def test_queries_have_a_rate_of_their_own() -> None:
    """A query is logged with its answer, so queries are throttled far below orders: past the burst one is
    refused `rate_limited` at once (nothing logged, its id unspent), while orders still pass."""
    ex = await _exchange()
    before = len(await ex.log.read(0, 10**9))
    await ex.submit([("ann", ex.command("ann", KEYS["ann"], type="query", client_order_id=f"q-{i}",
                                        query="balances")) for i in range(QUERY_BURST + 5)])  # fmt: skip
    refused = [r for d in ex.reports if isinstance(r := d.report, ExecutionReport) and r.reason]
    assert len(refused) == 5
    assert {r.reason.code for r in refused if r.reason} == {"rate_limited"}
    assert all(r.seq is None for r in refused)
    answered = [d.report for d in ex.reports if isinstance(d.report, BalancesReport)]
    assert len(answered) == QUERY_BURST
    assert len(await ex.log.read(0, 10**9)) == before + 2 * QUERY_BURST
    await _order(ex, "ann", "b-after", "SZEA-T", "buy", "49.00", 1)
    assert isinstance(_answer(ex, "ann", "b-after"), ExecutionReport)


def test_a_mass_cancel_walks_only_the_senders_orders() -> None:
    """A participant with no orders cannot make matching walk everyone's: the engine finds the sender's
    live orders by participant, whatever the size of the book."""
    engine = MatchingEngine()
    crowd = engine._live_ids
    for n in range(1, 5001):
        crowd[(f"p{n % 50}", f"c{n}")] = n
    assert crowd.of("p7") == list(range(7, 5001, 50))
    assert crowd.of("nobody") == []
    del crowd[("p7", "c7")]
    crowd[("p7", "c7-replaced")] = 7  # a replace keeps its order id under a new client id
    assert crowd.of("p7")[:2] == [7, 57]
    for n in range(57, 5001, 50):
        del crowd[("p7", f"c{n}")]
    assert crowd.of("p7") == [7]
