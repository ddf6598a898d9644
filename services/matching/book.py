"""One instrument's order book: price levels in sorted maps, a FIFO queue of resting orders per level."""

from __future__ import annotations

from collections import deque

from sortedcontainers import SortedDict

from shared.domain.values import Side, TimeInForce

__all__ = ["Level", "OrderBook", "RestingOrder"]


class RestingOrder:
    """A live order on the book; mutable because fills and amendments change it in place."""

    __slots__ = (
        "client_order_id",
        "cum",
        "leaves",
        "live",
        "order_id",
        "participant",
        "price",
        "side",
        "tif",
    )

    def __init__(
        self,
        order_id: int,
        participant: str,
        client_order_id: str,
        side: Side,
        price: int,
        leaves: int,
        cum: int,
        tif: TimeInForce,
    ) -> None:
        self.order_id = order_id
        self.participant = participant
        self.client_order_id = client_order_id
        self.side = side
        self.price = price
        self.leaves = leaves
        self.cum = cum
        self.tif = tif
        # Cancelled orders stay in their level's deque, marked dead, until matching pops them: O(1) cancel.
        self.live = True


class Level:
    """All resting orders at one price, oldest first; `qty` and `count` cover live orders only."""

    __slots__ = ("count", "orders", "price", "qty")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[RestingOrder] = deque()
        self.qty = 0
        self.count = 0

    def live_orders(self) -> list[RestingOrder]:
        return [o for o in self.orders if o.live]


class OrderBook:
    """Bids keyed by -price and asks by price, so index 0 of either map is the best level."""

    __slots__ = ("asks", "bids", "halted", "orders", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.orders: dict[int, RestingOrder] = {}
        self.halted = False

    def side_map(self, side: Side) -> SortedDict:
        return self.bids if side is Side.BUY else self.asks

    def rest(self, order: RestingOrder) -> None:
        """Queue an order at the back of its price level."""
        levels = self.bids if order.side is Side.BUY else self.asks
        key = -order.price if order.side is Side.BUY else order.price
        level = levels.get(key)
        if level is None:
            level = levels[key] = Level(order.price)
        level.orders.append(order)
        level.qty += order.leaves
        level.count += 1
        self.orders[order.order_id] = order

    def remove(self, order: RestingOrder) -> None:
        """Take a live order off the book (cancel, expiry, or an amendment that loses priority)."""
        levels = self.bids if order.side is Side.BUY else self.asks
        key = -order.price if order.side is Side.BUY else order.price
        level: Level = levels[key]
        order.live = False
        level.qty -= order.leaves
        level.count -= 1
        if level.count == 0:
            del levels[key]
        del self.orders[order.order_id]

    def reduce(self, order: RestingOrder, new_leaves: int) -> None:
        """Lower a resting order's open quantity in place, keeping its time priority."""
        levels = self.bids if order.side is Side.BUY else self.asks
        level: Level = levels[-order.price if order.side is Side.BUY else order.price]
        level.qty -= order.leaves - new_leaves
        order.leaves = new_leaves

    def best_bid(self) -> Level | None:
        return self.bids.peekitem(0)[1] if self.bids else None

    def best_ask(self) -> Level | None:
        return self.asks.peekitem(0)[1] if self.asks else None

    def l1(self) -> tuple[int, int, int, int]:
        """(bid price, bid qty, ask price, ask qty); 0, 0 for an empty side."""
        bid, ask = self.best_bid(), self.best_ask()
        return (
            bid.price if bid else 0,
            bid.qty if bid else 0,
            ask.price if ask else 0,
            ask.qty if ask else 0,
        )

    def depth(self, levels: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """L2: up to `levels` (price, qty) per side, best first: (bids, asks)."""
        bids = [(lv.price, lv.qty) for lv in self.bids.values()[:levels]]
        asks = [(lv.price, lv.qty) for lv in self.asks.values()[:levels]]
        return bids, asks

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid.price >= ask.price
