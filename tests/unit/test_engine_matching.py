"""Price-time matching scenarios with exact trades and depth."""

from __future__ import annotations

from shared.domain.events import OrderAccepted, OrderExpired, TradeExecuted
from shared.domain.reasons import Reason
from tests.unit.engine_support import Scenario, kinds, trades


def test_crossing_limit_trades_at_the_resting_price() -> None:
    """A buy above the best ask trades at the ask (the maker's price), not its own limit."""
    s = Scenario()
    s.order("alice", "sell", 10, 5800)
    events = s.order("bob", "buy", 4, 5810)
    assert kinds(events) == ["OrderAccepted", "TradeExecuted"]
    assert trades(events) == [(5800, 4, 1, 2)]
    trade = events[1]
    assert isinstance(trade, TradeExecuted)
    assert (trade.maker_leaves, trade.maker_cum, trade.taker_leaves, trade.taker_cum) == (6, 4, 0, 4)
    assert s.depth() == ([], [(5800, 6)])


def test_partial_fill_rests_the_remainder() -> None:
    """An incoming order larger than the opposite side trades what it can and rests the rest."""
    s = Scenario()
    s.order("alice", "sell", 10, 5800)
    events = s.order("bob", "buy", 15, 5800)
    assert trades(events) == [(5800, 10, 1, 2)]
    assert s.depth() == ([(5800, 5)], [])
    assert s.engine.book("SZEA-2025").l1() == (5800, 5, 0, 0)


def test_better_price_first_then_time_within_a_level() -> None:
    """Best price fills first; at one price the older order fills first."""
    s = Scenario()
    s.order("a", "sell", 5, 5805)  # id 1
    s.order("b", "sell", 5, 5800)  # id 2
    s.order("c", "sell", 5, 5800)  # id 3
    events = s.order("d", "buy", 12, 5805)
    assert trades(events) == [(5800, 5, 2, 4), (5800, 5, 3, 4), (5805, 2, 1, 4)]
    assert s.depth() == ([], [(5805, 3)])


def test_market_order_sweeps_three_levels_and_expires_the_rest() -> None:
    """A market buy walks the asks level by level; what the book cannot fill expires."""
    s = Scenario()
    s.order("a", "sell", 3, 5800)
    s.order("b", "sell", 4, 5810)
    s.order("c", "sell", 5, 5820)
    s.order("e", "sell", 5, 5830)
    events = s.order("d", "buy", 10, kind="market", tif="IOC")
    assert trades(events) == [(5800, 3, 1, 5), (5810, 4, 2, 5), (5820, 3, 3, 5)]
    assert s.depth() == ([], [(5820, 2), (5830, 5)])
    events = s.order("d", "buy", 10, kind="market")
    assert kinds(events) == ["OrderAccepted", "TradeExecuted", "TradeExecuted", "OrderExpired"]
    expired = events[-1]
    assert isinstance(expired, OrderExpired)
    assert (expired.expired_qty, expired.cum_qty, expired.reason) == (3, 7, Reason.MARKET_REMAINDER)
    assert s.depth() == ([], [])


def test_market_order_on_empty_book_is_accepted_then_expires() -> None:
    """No liquidity: the market order is acknowledged and expires untraded."""
    s = Scenario()
    events = s.order("d", "sell", 10, kind="market")
    assert kinds(events) == ["OrderAccepted", "OrderExpired"]
    accepted = events[0]
    assert isinstance(accepted, OrderAccepted)
    assert accepted.price == 0


def test_ioc_trades_what_it_can_and_expires_the_remainder() -> None:
    """IOC never rests."""
    s = Scenario()
    s.order("a", "sell", 4, 5800)
    events = s.order("b", "buy", 10, 5800, tif="IOC")
    assert trades(events) == [(5800, 4, 1, 2)]
    expired = events[-1]
    assert isinstance(expired, OrderExpired)
    assert (expired.expired_qty, expired.reason) == (6, Reason.IOC_REMAINDER)
    assert s.depth() == ([], [])


def test_fok_is_killed_whole_when_it_cannot_fill_and_changes_nothing() -> None:
    """FOK needing more than the book holds up to its limit trades nothing."""
    s = Scenario()
    s.order("a", "sell", 4, 5800)
    s.order("b", "sell", 4, 5810)
    events = s.order("c", "buy", 9, 5810, tif="FOK")
    assert kinds(events) == ["OrderAccepted", "OrderExpired"]
    expired = events[-1]
    assert isinstance(expired, OrderExpired)
    assert (expired.expired_qty, expired.cum_qty, expired.reason) == (9, 0, Reason.FOK_NOT_FILLABLE)
    assert s.depth() == ([], [(5800, 4), (5810, 4)])


def test_fok_fills_completely_when_the_book_allows() -> None:
    """FOK within the limit and available quantity fills at each maker's price."""
    s = Scenario()
    s.order("a", "sell", 4, 5800)
    s.order("b", "sell", 4, 5810)
    s.order("b", "sell", 4, 5820)
    events = s.order("c", "buy", 8, 5810, tif="FOK")
    assert trades(events) == [(5800, 4, 1, 4), (5810, 4, 2, 4)]
    assert s.depth() == ([], [(5820, 4)])


def test_fok_does_not_count_own_orders_as_liquidity() -> None:
    """With self-trade prevention on, the taker's own resting orders cannot fill its FOK."""
    s = Scenario()
    s.order("c", "sell", 5, 5800)
    s.order("a", "sell", 4, 5800)
    events = s.order("c", "buy", 6, 5800, tif="FOK")
    assert kinds(events) == ["OrderAccepted", "OrderExpired"]
    assert s.depth() == ([], [(5800, 9)])


def test_trade_ids_increase_across_instruments_and_orders() -> None:
    """Trade ids come from one counter in the core's state: deterministic and unique."""
    s = Scenario()
    s.order("a", "sell", 1, 5800)
    s.order("a", "sell", 1, 5800)
    events = s.order("b", "buy", 2, 5800)
    assert [e.trade_id for e in events if isinstance(e, TradeExecuted)] == [1, 2]
    events = s.order("b", "sell", 1, 5800)
    s.order("c", "buy", 1, 5800)
    assert s.engine.next_trade_id == 4
