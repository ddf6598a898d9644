"""greenex's matching core against a peer pure-Python book (`order-matching` from PyPI) on one order stream.

The stream is restricted to what both books do: limit orders (GTC and IOC), market orders (IOC) and
cancels, with no amends and no orders greenex rejects at validation. The adapter maps the peer's API:
- one `place` + `match` per order, with strictly increasing timestamps, so the peer matches each order
  on arrival in price-time priority like greenex (its `match` processes a queue sorted by timestamp);
- prices go in as float fen (integers, exact in a float), sizes as float tonnes; both come back as int;
- the peer has no IOC or market remainder handling: a remainder it rests is cancelled right after the
  match (market buys rest at +inf, market sells at 0, so nothing could trade against them meanwhile);
- the peer has no self-trade prevention: greenex runs with SelfTradePrevention.ALLOW;
- a cancel of an order no longer open raises in the peer; the adapter treats that as greenex's reject;
- the peer logs every call with loguru at DEBUG: its logger is disabled, as greenex's core never logs.
Both trade at the resting order's price. A fill is (command index, price, qty, maker, taker, incoming).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from loadtests.order_stream import BENCH_INSTRUMENTS, OrderMix, generate_commands
from services.matching.engine import MatchingEngine, SelfTradePrevention
from shared.domain.commands import CancelOrder, EngineCommand, PlaceOrder
from shared.domain.events import OrderRejected, TradeExecuted
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = ["Fill", "PeerBook", "comparable_stream", "greenex_fills", "main", "peer_fills"]

Fill = tuple[int, int, int, int, int]  # (command index, price fen, qty, maker order id, taker order id)
_EPOCH = datetime(2026, 1, 1)


def comparable_stream(count: int, seed: int) -> list[EngineCommand]:
    """Seeded commands both books support: no amends, nothing greenex would reject at validation."""
    mix = OrderMix(amend=0.0)
    engine = MatchingEngine(BENCH_INSTRUMENTS, stp=SelfTradePrevention.ALLOW)
    out: list[EngineCommand] = []
    for command in generate_commands(count, seed, mix=mix):
        events = engine.decide(command)
        if isinstance(command, PlaceOrder) and any(isinstance(e, OrderRejected) for e in events):
            continue  # invalid quantity or price: a validation feature the peer lacks
        out.append(command)
    return out


def greenex_fills(commands: Sequence[EngineCommand]) -> list[Fill]:
    engine = MatchingEngine(BENCH_INSTRUMENTS, stp=SelfTradePrevention.ALLOW)
    fills: list[Fill] = []
    for i, command in enumerate(commands):
        fills.extend(
            (i, e.price, e.quantity, e.maker_order_id, e.taker_order_id)
            for e in engine.decide(command)
            if type(e) is TradeExecuted
        )
    return fills


class PeerBook:
    """The adapter: greenex engine commands in, the peer's trades out as greenex-shaped fills."""

    def __init__(self) -> None:
        from loguru import logger  # noqa: PLC0415 - the peer is a bench-only dependency
        from order_matching.enums import Side as PeerSide  # noqa: PLC0415
        from order_matching.matching_engine import MatchingEngine as PeerEngine  # noqa: PLC0415
        from order_matching.order import LimitOrder, MarketOrder  # noqa: PLC0415
        from order_matching.orders import Orders  # noqa: PLC0415

        logger.disable("order_matching")
        self._limit, self._market, self._orders = LimitOrder, MarketOrder, Orders
        self._sides = {Side.BUY: PeerSide.BUY, Side.SELL: PeerSide.SELL}
        self.engines: dict[str, Any] = {i.symbol: PeerEngine(seed=1) for i in BENCH_INSTRUMENTS}
        self.ids: dict[tuple[str, str], str] = {}  # (participant, client order id) -> peer order id
        self.tick = 0

    def handle(self, index: int, command: EngineCommand) -> list[Fill]:
        self.tick += 1
        at = _EPOCH + timedelta(microseconds=self.tick)
        engine = self.engines[str(command.instrument)]
        if type(command) is CancelOrder:
            order_id = self.ids.pop((command.participant, command.orig_client_order_id), None)
            if order_id is not None:
                self._cancel(engine, order_id)
            return []
        assert type(command) is PlaceOrder
        order_id = str(command.order_id)
        common = {"side": self._sides[command.side], "size": float(command.quantity), "timestamp": at}
        if command.order_type is OrderType.MARKET:
            order = self._market(order_id=order_id, trader_id=command.participant, **common)
        else:
            order = self._limit(
                order_id=order_id, trader_id=command.participant, price=float(command.price), **common
            )
        engine.place(self._orders([order]))
        trades = engine.match(timestamp=at)
        if command.order_type is OrderType.MARKET or command.time_in_force is TimeInForce.IOC:
            if order.size > 0:
                self._cancel(engine, order_id)
        else:
            self.ids[(command.participant, command.client_order_id)] = order_id
        return [
            (index, round(t.price), round(t.size), int(t.book_order_id), int(t.incoming_order_id))
            for t in trades.trades
        ]

    @staticmethod
    def _cancel(engine: Any, order_id: str) -> None:
        with contextlib.suppress(ValueError):  # already filled: greenex rejects it, no fill either way
            engine.cancel_order(order_id)


def peer_fills(commands: Sequence[EngineCommand]) -> list[Fill]:
    book = PeerBook()
    fills: list[Fill] = []
    for i, command in enumerate(commands):
        fills.extend(book.handle(i, command))
    return fills


def _timed(fn: Any, commands: Sequence[EngineCommand]) -> tuple[float, list[Fill]]:
    gc.collect()
    start = time.perf_counter()
    fills = fn(commands)
    return time.perf_counter() - start, fills


def compare(count: int, seed: int, repeat: int = 3) -> dict[str, Any]:
    """Same fills or an AssertionError naming the first difference; throughput of each, best of `repeat`."""
    commands = comparable_stream(count, seed)
    g_best, g_fills = min((_timed(greenex_fills, commands) for _ in range(repeat)), key=lambda r: r[0])
    p_best, p_fills = min((_timed(peer_fills, commands) for _ in range(repeat)), key=lambda r: r[0])
    if g_fills != p_fills:
        first = next(
            (i for i, (a, b) in enumerate(zip(g_fills, p_fills, strict=False)) if a != b),
            min(len(g_fills), len(p_fills)),
        )
        raise AssertionError(
            f"fill #{first} differs: greenex {g_fills[first : first + 2]}, peer {p_fills[first : first + 2]}"
        )
    return {
        "commands": len(commands),
        "fills": len(g_fills),
        "greenex_cmds_per_s": round(len(commands) / g_best),
        "peer_cmds_per_s": round(len(commands) / p_best),
        "ratio": round(p_best / g_best, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result = compare(args.orders, args.seed, args.repeat)
    print(f"seed {args.seed}: {result}")


if __name__ == "__main__":
    main()
