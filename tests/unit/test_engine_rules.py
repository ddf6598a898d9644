"""Validation, cancel, replace, self-trade prevention, halts and day expiry in the matching core."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.matching.engine import SelfTradePrevention
from shared.domain.commands import ExpireDayOrders, HaltInstrument, ResumeInstrument
from shared.domain.events import (
    InstrumentHalted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
)
from shared.domain.reasons import Reason
from tests.unit.engine_support import SZEA, Scenario, kinds, szea, trades


def rejected(events: Sequence[object]) -> Reason:
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, OrderRejected)
    return event.reason


@pytest.mark.parametrize(
    ("side", "qty", "price", "kind", "reason"),
    [
        ("buy", 10, 0, "limit", Reason.INVALID_PRICE),
        ("buy", 10, -5, "limit", Reason.INVALID_PRICE),
        ("sell", 0, 5800, "limit", Reason.INVALID_QUANTITY),
        ("sell", -3, 5800, "limit", Reason.INVALID_QUANTITY),
        ("sell", 10**12, 5800, "limit", Reason.INVALID_QUANTITY),
        ("sell", 0, 0, "market", Reason.INVALID_QUANTITY),
        ("buy", 10, 5219, "limit", Reason.OUTSIDE_PRICE_BAND),
        ("buy", 10, 6381, "limit", Reason.OUTSIDE_PRICE_BAND),
    ],
)
def test_invalid_orders_are_rejected_with_a_reason(
    side: str, qty: int, price: int, kind: str, reason: Reason
) -> None:
    """Each validation rule has its own reason code and leaves the book empty."""
    s = Scenario()
    assert rejected(s.order("a", side, qty, price, kind=kind)) is reason
    assert s.depth() == ([], [])


def test_band_edges_are_inclusive() -> None:
    """52.20 and 63.80 (reference 58.00 +-10 %) are accepted."""
    s = Scenario()
    assert kinds(s.order("a", "buy", 1, 5220)) == ["OrderAccepted"]
    assert kinds(s.order("a", "sell", 1, 6380)) == ["OrderAccepted"]


def test_tick_and_lot_rules_follow_the_instrument() -> None:
    """A 5-fen tick and 10 t lot reject off-grid prices and quantities."""
    s = Scenario(szea(tick_size=5, lot_size=10))
    assert rejected(s.order("a", "buy", 10, 5801)) is Reason.INVALID_TICK
    assert rejected(s.order("a", "buy", 15, 5805)) is Reason.INVALID_LOT
    assert kinds(s.order("a", "buy", 20, 5805)) == ["OrderAccepted"]


def test_unknown_instrument_is_rejected() -> None:
    s = Scenario()
    assert rejected(s.order("a", "buy", 1, 5800, symbol="NOPE")) is Reason.UNKNOWN_INSTRUMENT


def test_duplicate_client_order_id_is_rejected_even_after_the_order_is_gone() -> None:
    """Client order ids are single-use per participant; another participant may use the same id."""
    s = Scenario()
    s.order("a", "sell", 1, 5800, clid="x1")
    s.cancel("a", "x1")
    assert rejected(s.order("a", "buy", 1, 5800, clid="x1")) is Reason.DUPLICATE_CLIENT_ORDER_ID
    assert kinds(s.order("b", "buy", 1, 5800, clid="x1")) == ["OrderAccepted"]


def test_cancel_removes_the_order_and_reports_open_quantity() -> None:
    s = Scenario()
    s.order("a", "sell", 10, 5800, clid="s1")
    s.order("b", "buy", 3, 5800)
    events = s.cancel("a", "s1")
    assert kinds(events) == ["OrderCancelled"]
    cancelled = events[0]
    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.cancelled_qty, cancelled.cum_qty, cancelled.reason) == (7, 3, Reason.USER_CANCEL)
    assert s.depth() == ([], [])


def test_cancel_of_unknown_or_foreign_order_is_rejected() -> None:
    """A participant cannot cancel another participant's order: it does not exist for them."""
    s = Scenario()
    s.order("a", "sell", 10, 5800, clid="s1")
    assert rejected(s.cancel("b", "s1")) is Reason.UNKNOWN_ORDER
    assert rejected(s.cancel("a", "nope")) is Reason.UNKNOWN_ORDER
    assert s.depth() == ([], [(5800, 10)])


def test_replace_decrease_keeps_time_priority() -> None:
    """Lowering quantity at the same price keeps the order ahead of later ones."""
    s = Scenario()
    s.order("a", "sell", 10, 5800, clid="a1")  # id 1
    s.order("b", "sell", 10, 5800)  # id 2
    events = s.replace("a", "a1", 5800, 4, clid="a2")
    replaced = events[0]
    assert isinstance(replaced, OrderReplaced)
    assert replaced.priority_kept
    assert (replaced.leaves, replaced.client_order_id, replaced.orig_client_order_id) == (4, "a2", "a1")
    assert trades(s.order("c", "buy", 5, 5800)) == [(5800, 4, 1, 3), (5800, 1, 2, 3)]
    assert s.depth() == ([], [(5800, 9)])


def test_replace_increase_loses_time_priority() -> None:
    """Raising quantity sends the order to the back of its level."""
    s = Scenario()
    s.order("a", "sell", 10, 5800, clid="a1")
    s.order("b", "sell", 10, 5800)
    events = s.replace("a", "a1", 5800, 12)
    assert isinstance(events[0], OrderReplaced)
    assert not events[0].priority_kept
    assert trades(s.order("c", "buy", 5, 5800)) == [(5800, 5, 2, 3)]
    assert s.depth() == ([], [(5800, 17)])


def test_replace_price_change_loses_priority_and_can_trade() -> None:
    """A repriced order is a new aggressor: it trades if it now crosses."""
    s = Scenario()
    s.order("a", "sell", 10, 5810, clid="a1")
    s.order("b", "buy", 4, 5800)
    events = s.replace("a", "a1", 5800, 10)
    assert kinds(events) == ["OrderReplaced", "TradeExecuted"]
    assert trades(events) == [(5800, 4, 2, 1)]
    assert s.depth() == ([], [(5800, 6)])


def test_replace_quantity_is_total_and_cannot_undercut_what_traded() -> None:
    """The new total must exceed the filled quantity; the old id is then free of the order."""
    s = Scenario()
    s.order("a", "sell", 10, 5800, clid="a1")
    s.order("b", "buy", 6, 5800)
    assert rejected(s.replace("a", "a1", 5800, 6)) is Reason.INVALID_QUANTITY
    events = s.replace("a", "a1", 5800, 8, clid="a2")
    assert isinstance(events[0], OrderReplaced)
    assert events[0].leaves == 2
    assert rejected(s.cancel("a", "a1")) is Reason.UNKNOWN_ORDER
    assert kinds(s.cancel("a", "a2")) == ["OrderCancelled"]


def test_replace_rejects_bad_price() -> None:
    s = Scenario()
    s.order("a", "sell", 10, 5800, clid="a1")
    assert rejected(s.replace("a", "a1", 9000, 10)) is Reason.OUTSIDE_PRICE_BAND
    assert s.depth() == ([], [(5800, 10)])


def test_self_trade_cancels_the_resting_order_by_default() -> None:
    """The incoming order skips its own resting order (cancelled) and trades with the next one."""
    s = Scenario()
    s.order("a", "sell", 5, 5800)  # id 1
    s.order("b", "sell", 5, 5800)  # id 2
    events = s.order("a", "buy", 5, 5800)
    assert kinds(events) == ["OrderAccepted", "OrderCancelled", "TradeExecuted"]
    cancelled = events[1]
    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.order_id, cancelled.reason) == (1, Reason.SELF_TRADE)
    assert trades(events) == [(5800, 5, 2, 3)]
    assert s.depth() == ([], [])


def test_self_trade_cancel_resting_drops_an_emptied_level() -> None:
    """When the self order was the last at its level, matching moves on to the next level."""
    s = Scenario()
    s.order("a", "sell", 5, 5800)
    s.order("b", "sell", 5, 5810)
    events = s.order("a", "buy", 5, 5810)
    assert trades(events) == [(5810, 5, 2, 3)]
    assert s.depth() == ([], [])


@pytest.mark.parametrize(
    ("mode", "expected_kinds", "depth"),
    [
        (SelfTradePrevention.CANCEL_INCOMING, ["OrderAccepted", "OrderCancelled"], ([], [(5800, 5)])),
        (SelfTradePrevention.CANCEL_BOTH, ["OrderAccepted", "OrderCancelled", "OrderCancelled"], ([], [])),
        (SelfTradePrevention.ALLOW, ["OrderAccepted", "TradeExecuted"], ([], [])),
    ],
)
def test_self_trade_prevention_modes(
    mode: SelfTradePrevention, expected_kinds: list[str], depth: tuple[list[object], list[object]]
) -> None:
    """Each configurable STP mode does what it says."""
    s = Scenario(stp=mode)
    s.order("a", "sell", 5, 5800)
    events = s.order("a", "buy", 5, 5800)
    assert kinds(events) == expected_kinds
    assert s.depth() == depth


def test_halt_blocks_new_orders_and_replaces_but_not_cancels() -> None:
    """While halted nothing trades; cancels still go through; resume reopens."""
    s = Scenario()
    s.order("a", "sell", 5, 5800, clid="a1")
    assert kinds(s.engine.decide(HaltInstrument(instrument=SZEA))) == ["InstrumentHalted"]
    assert s.engine.decide(HaltInstrument(instrument=SZEA)) == []
    assert rejected(s.order("b", "buy", 5, 5800)) is Reason.INSTRUMENT_HALTED
    assert rejected(s.replace("a", "a1", 5801, 5)) is Reason.INSTRUMENT_HALTED
    assert kinds(s.cancel("a", "a1")) == ["OrderCancelled"]
    assert kinds(s.engine.decide(ResumeInstrument(instrument=SZEA))) == ["InstrumentResumed"]
    assert kinds(s.order("b", "buy", 5, 5800)) == ["OrderAccepted"]
    assert isinstance(s.engine.decide(HaltInstrument(instrument=SZEA))[0], InstrumentHalted)


def test_day_orders_expire_at_day_end_and_gtc_orders_stay() -> None:
    s = Scenario()
    s.order("a", "sell", 5, 5800, tif="DAY")
    s.order("b", "sell", 6, 5810, tif="GTC")
    s.order("c", "buy", 7, 5700, tif="DAY")
    events = s.engine.decide(ExpireDayOrders(instrument=SZEA))
    assert [(e.order_id, e.expired_qty, e.reason) for e in events if isinstance(e, OrderExpired)] == [
        (1, 5, Reason.DAY_END),
        (3, 7, Reason.DAY_END),
    ]
    assert s.depth() == ([], [(5810, 6)])


def test_depth_aggregates_levels_best_first_and_is_never_crossed() -> None:
    """L2 shows price and total quantity per level, at most N levels a side."""
    s = Scenario()
    for i, price in enumerate([5790, 5780, 5790, 5770]):
        s.order("b", "buy", i + 1, price)
    for i, price in enumerate([5810, 5820, 5810]):
        s.order("a", "sell", i + 1, price)
    assert s.depth(2) == ([(5790, 4), (5780, 2)], [(5810, 4), (5820, 2)])
    assert s.engine.book(SZEA).l1() == (5790, 4, 5810, 4)
    assert not s.engine.book(SZEA).is_crossed()
