"""The peer book (`order-matching` from PyPI) behind its adapter makes the same fills as greenex's core."""

from __future__ import annotations

from loadtests.order_stream import BENCH_INSTRUMENTS
from loadtests.peer_bench import PeerBook, comparable_stream, greenex_fills, peer_fills
from shared.domain.commands import CancelOrder, EngineCommand, PlaceOrder
from shared.domain.values import OrderType, Side, TimeInForce

SYM = BENCH_INSTRUMENTS[0].symbol


def _order(
    n: int, who: str, side: Side, price: int, qty: int, tif: TimeInForce = TimeInForce.GTC
) -> PlaceOrder:
    return PlaceOrder(
        order_id=n, participant=who, client_order_id=f"c{n}", instrument=SYM, side=side,
        order_type=OrderType.MARKET if price == 0 else OrderType.LIMIT, price=price, quantity=qty,
        time_in_force=TimeInForce.IOC if price == 0 else tif,
    )  # fmt: skip


def test_hand_written_stream_gives_identical_fills() -> None:
    """Price-time priority at the maker's price, partial fills, an IOC remainder, a cancel, a market sweep."""
    stream: list[EngineCommand] = [
        _order(1, "a", Side.SELL, 5801, 5),
        _order(2, "b", Side.SELL, 5801, 5),
        _order(3, "c", Side.SELL, 5803, 10),
        _order(4, "d", Side.BUY, 5802, 7),  # takes 5 from #1 then 2 from #2, at 5801
        _order(5, "e", Side.BUY, 5801, 9, TimeInForce.IOC),  # takes #2's last 3; 6 expire
        CancelOrder(participant="c", client_order_id="x6", instrument=SYM, orig_client_order_id="c3"),
        _order(7, "f", Side.SELL, 5805, 4),
        _order(8, "g", Side.BUY, 0, 6),  # market: takes 4 at 5805, the rest expires
        _order(9, "h", Side.SELL, 5799, 2),  # rests: the market remainder did not
    ]
    expected = [(3, 5801, 5, 1, 4), (3, 5801, 2, 2, 4), (4, 5801, 3, 2, 5), (7, 5805, 4, 7, 8)]
    assert greenex_fills(stream) == expected
    assert peer_fills(stream) == expected


def test_seeded_stream_gives_identical_fills() -> None:
    """A 1,500-command seeded stream (limits, IOC, market, cancels) trades identically in both books."""
    stream = comparable_stream(1500, seed=11)
    fills = greenex_fills(stream)
    assert len(fills) > 100
    assert peer_fills(stream) == fills


def test_cancel_of_a_filled_order_is_no_fill_in_either_book() -> None:
    """The peer raises for an order no longer open; the adapter treats it like greenex's reject."""
    book = PeerBook()
    assert book.handle(0, _order(1, "a", Side.SELL, 5801, 1)) == []
    assert book.handle(1, _order(2, "b", Side.BUY, 5801, 1)) == [(1, 5801, 1, 1, 2)]
    cancel = CancelOrder(participant="a", client_order_id="x", instrument=SYM, orig_client_order_id="c1")
    assert book.handle(2, cancel) == []
