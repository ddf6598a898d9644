"""A seeded stream of engine commands for benchmarks: passive limits, marketables, cancels, amends."""

from __future__ import annotations

import random
from collections.abc import Iterator

from shared.domain.commands import CancelOrder, EngineCommand, PlaceOrder, ReplaceOrder
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = ["BENCH_INSTRUMENTS", "OrderMix", "generate_commands"]

BENCH_INSTRUMENTS = (
    Instrument(
        symbol="SZEA-2025",
        kind=InstrumentKind.ALLOWANCE,
        standard="SZEA",
        registry="SZ",
        vintage=2025,
        reference_price=5800,
    ),
    Instrument(
        symbol="CEA-2025",
        kind=InstrumentKind.ALLOWANCE,
        standard="CEA",
        registry="CN",
        vintage=2025,
        reference_price=9200,
    ),
)


class OrderMix:
    """Shares of each command kind; the rest are passive limit orders inside or near the spread."""

    def __init__(
        self,
        marketable: float = 0.20,
        market: float = 0.05,
        cancel: float = 0.20,
        amend: float = 0.10,
        ioc: float = 0.05,
    ) -> None:
        self.marketable, self.market, self.cancel, self.amend, self.ioc = (
            marketable,
            market,
            cancel,
            amend,
            ioc,
        )


def generate_commands(
    count: int, seed: int, participants: int = 50, mix: OrderMix | None = None
) -> Iterator[EngineCommand]:
    """Yield `count` commands; cancels and amends target orders this stream placed earlier."""
    mix = mix or OrderMix()
    rng = random.Random(seed)
    names = [f"P{i:03d}" for i in range(participants)]
    open_orders: list[tuple[str, str, str, int, int]] = []  # (participant, clid, symbol, price, qty)
    mids = {i.symbol: i.reference_price for i in BENCH_INSTRUMENTS}
    for n in range(1, count + 1):
        inst = BENCH_INSTRUMENTS[n % len(BENCH_INSTRUMENTS)]
        symbol, mid = inst.symbol, mids[inst.symbol]
        who = names[rng.randrange(participants)]
        clid = f"c{n}"
        roll = rng.random()
        if open_orders and roll < mix.cancel:
            p, orig, sym, _, _ = open_orders.pop(rng.randrange(len(open_orders)))
            yield CancelOrder(
                participant=p, client_order_id=f"x{n}", instrument=sym, orig_client_order_id=orig
            )
            continue
        roll -= mix.cancel
        if open_orders and roll < mix.amend:
            i = rng.randrange(len(open_orders))
            p, orig, sym, price, qty = open_orders[i]
            new_qty = max(1, qty + rng.choice((-2, -1, 1, 2)))
            new_price = price + rng.choice((0, 0, -1, 1))
            open_orders[i] = (p, f"a{n}", sym, new_price, new_qty)
            yield ReplaceOrder(
                participant=p,
                client_order_id=f"a{n}",
                instrument=sym,
                orig_client_order_id=orig,
                price=new_price,
                quantity=new_qty,
            )
            continue
        roll -= mix.amend
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        sign = 1 if side is Side.BUY else -1
        qty = rng.randint(1, 20)
        if roll < mix.market:
            yield PlaceOrder(
                order_id=n,
                participant=who,
                client_order_id=clid,
                instrument=symbol,
                side=side,
                order_type=OrderType.MARKET,
                price=0,
                quantity=qty,
                time_in_force=TimeInForce.IOC,
            )
            continue
        roll -= mix.market
        if roll < mix.marketable:
            price = mid + sign * rng.randint(1, 5)  # crosses the spread
            tif = TimeInForce.IOC if rng.random() < 0.5 else TimeInForce.GTC
        else:
            price = mid - sign * rng.randint(1, 12)  # passive, inside or near the spread
            tif = TimeInForce.IOC if rng.random() < mix.ioc else TimeInForce.GTC
        if tif is TimeInForce.GTC:
            open_orders.append((who, clid, symbol, price, qty))
            if len(open_orders) > 5000:
                open_orders.pop(0)
        mids[symbol] = mid + rng.choice((-1, 0, 0, 0, 1)) if rng.random() < 0.01 else mid
        yield PlaceOrder(
            order_id=n,
            participant=who,
            client_order_id=clid,
            instrument=symbol,
            side=side,
            order_type=OrderType.LIMIT,
            price=price,
            quantity=qty,
            time_in_force=tif,
        )
