"""The demo's trading session, through the client library, in one deterministic order.

The same seed gives the same trades. Traders that send at once would not: the log's order then depends on
which stream intake reads first, and a decision on which trade had settled. So one driver sends the
commands one at a time in the order the seed draws them, and after each waits until the exchange reported
all it caused and its trades settled (TradingClient.sync); every decision is then made on a state that
only the commands before it determine. Cancel and replace targets come from an open-orders query, so a
participant only ever names an order that is really open.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.reports import ExecType, ExecutionReport, Report
from shared.trading import Rejected, TradingClient

__all__ = ["SessionCounts", "trade_session"]


@dataclass
class SessionCounts:
    """What the session sent, and how the exchange answered (each command's first report)."""

    sent: dict[str, int] = field(default_factory=dict)  # by command
    refused: dict[str, int] = field(default_factory=dict)  # by reason code
    trades: int = 0  # fills reported to takers

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


async def trade_session(
    clients: Sequence[TradingClient],
    mids: dict[str, int],
    commands: int,
    seed: int,
    tick: Callable[[int], None] = lambda n: None,
) -> SessionCounts:
    """`commands` signed commands (new orders of every kind, cancels, replaces) drawn from `seed`."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible order flow, not a secret
    counts = SessionCounts()
    for client in clients:
        client.listener = _taker_fills(counts)
    for n in range(commands):
        client = clients[rng.randrange(len(clients))]
        symbol = rng.choice(sorted(mids))
        mids[symbol] = max(100, mids[symbol] + rng.choice((-1, 0, 0, 1)))
        roll = rng.random()
        cid = f"{client.participant}-s{seed}-{n}"
        kind, send = await _command(client, rng, roll, symbol, mids, cid)
        counts.count(counts.sent, kind)
        try:
            await send()
            await client.outcome(cid)
        except Rejected as refused:
            counts.count(counts.refused, refused.code)
        await client.sync()
        tick(1)
    return counts


async def _command(
    client: TradingClient, rng: random.Random, roll: float, symbol: str, mids: dict[str, int], cid: str
) -> tuple[str, Callable[[], Any]]:
    """Which command to send, drawn from `rng` (and, for cancels and replaces, from what is open)."""
    if roll < 0.15:
        mine = await client.open_orders(symbol)
        if mine:
            target = mine[rng.randrange(len(mine))]
            if roll < 0.10:
                orig = target.client_order_id
                return "cancel_order", lambda: client.cancel(symbol, orig, client_order_id=cid)
            price = f"{(mids[symbol] + rng.randint(-8, 8)) / 100:.2f}"
            quantity = target.cum_qty + rng.randint(1, 50) * 10
            return "replace_order", lambda: client.replace(
                symbol, target.client_order_id, price, quantity, client_order_id=cid
            )
    side = rng.choice(("buy", "sell"))
    quantity = rng.randint(1, 50) * 10
    order = client.buy if side == "buy" else client.sell
    if roll < 0.20:
        return "market_order", lambda: order(symbol, quantity, client_order_id=cid, time_in_force="IOC")
    offset = rng.randint(-6, 10) * (1 if side == "sell" else -1)
    price = f"{(mids[symbol] + offset) / 100:.2f}"
    tif = "IOC" if roll < 0.30 else "GTC"
    return "limit_order", lambda: order(symbol, quantity, price, client_order_id=cid, time_in_force=tif)


def _taker_fills(counts: SessionCounts) -> Callable[[Report], None]:
    def heard(report: Report) -> None:
        if isinstance(report, ExecutionReport) and report.exec_type is ExecType.TRADE and (
            report.liquidity == "taker"
        ):
            counts.trades += 1

    return heard
