"""A realistic demo session: list instruments, onboard companies, fund them, issue credits, trade."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from redis.exceptions import ResponseError

from services.cli.demo_registry import seed_registry
from services.cli.venue import Venue
from shared.client import ExchangeClient
from shared.domain.ledger import OPERATOR

__all__ = [
    "DEMO_INSTRUMENTS",
    "DEMO_PARTICIPANTS",
    "OFFSETS",
    "run_session",
    "seed_exchange",
    "wait_quiet",
]

# Reference prices near 2024-25 market levels (CNY/t): Shenzhen allowances, national CEA, CCER offsets.
DEMO_INSTRUMENTS: list[dict[str, Any]] = [
    {
        "symbol": "SZEA-2025",
        "kind": "allowance",
        "standard": "SZEA",
        "registry": "Shenzhen ETS",
        "vintage": 2025,
        "reference_price": "48.00",
        "project_type": "compliance",
    },
    {
        "symbol": "CEA-2025",
        "kind": "allowance",
        "standard": "CEA",
        "registry": "China ETS",
        "vintage": 2025,
        "reference_price": "92.00",
        "project_type": "compliance",
    },
    {
        "symbol": "CCER-2024",
        "kind": "offset",
        "standard": "CCER",
        "registry": "CCER registry",
        "vintage": 2024,
        "reference_price": "78.00",
        "project_type": "afforestation",
        "eligible_standards": ["CCER"],
        "min_vintage": 2017,  # the compliance rule: CCER of vintage 2017 or later
    },
]
OFFSETS = frozenset(spec["symbol"] for spec in DEMO_INSTRUMENTS if spec["kind"] == "offset")


# (id, name, cash CNY, tonnes issued per instrument)
DEMO_PARTICIPANTS: list[tuple[str, str, str, int]] = [
    ("szenergy", "Shenzhen Energy Co.", "40000000.00", 60_000),
    ("cementco", "Pearl River Cement", "15000000.00", 120_000),
    ("byd-fleet", "EV Fleet Operator", "30000000.00", 20_000),
    ("sunforest", "Sunforest Afforestation Project", "5000000.00", 150_000),
    ("greenfund", "Greater Bay Green Fund", "60000000.00", 80_000),
    ("dronemaker", "Skyward Drones", "20000000.00", 10_000),
]


async def seed_exchange(venue: Venue) -> None:
    """Operator commands: instruments, participants (each its own Redis user and signing key), cash,
    and one serial block per holding."""
    op = venue.operator
    for n, spec in enumerate(DEMO_INSTRUMENTS, start=1):
        await op.operator("list_instrument", f"op-{n}", **spec)
    next_serial = {spec["symbol"]: 1 for spec in DEMO_INSTRUMENTS}
    for participant, name, cash, tonnes in DEMO_PARTICIPANTS:
        await venue.onboard(participant, name)
        await op.operator("deposit_cash", f"op-dep-{participant}", participant=participant, amount=cash)
        for symbol, start in list(next_serial.items()):
            if symbol in OFFSETS:
                continue  # offsets exist only through verified issuance: see seed_registry
            next_serial[symbol] = start + tonnes
            await op.operator(
                "issue_credits",
                f"op-iss-{participant}-{symbol}",
                participant=participant,
                instrument=symbol,
                serial_start=start,
                serial_end=start + tonnes - 1,
            )
    await seed_registry(venue)


async def _trader(
    client: ExchangeClient, orders: int, rng: random.Random, mids: dict[str, int], tick: Callable[[int], None]
) -> int:
    """Send `orders` signed commands in bursts, reading reports between bursts; return reports read."""
    open_ids: list[tuple[str, str]] = []
    seen = 0
    for n in range(orders):
        symbol = rng.choice(list(mids))
        mid = mids[symbol] = max(100, mids[symbol] + rng.choice((-1, 0, 0, 1)))
        cid = f"{client.participant}-{n}"
        roll = rng.random()
        if open_ids and roll < 0.10:
            sym, orig = open_ids.pop(rng.randrange(len(open_ids)))
            cmd = client.command(
                "cancel_order", client_order_id=cid, instrument=sym, orig_client_order_id=orig
            )
        elif open_ids and roll < 0.15:
            i = rng.randrange(len(open_ids))
            sym, orig = open_ids[i]
            open_ids[i] = (sym, cid)
            cmd = client.command(
                "replace_order",
                client_order_id=cid,
                instrument=sym,
                orig_client_order_id=orig,
                price=f"{(mids[sym] + rng.randint(-8, 8)) / 100:.2f}",
                quantity=rng.randint(1, 50) * 10,
            )
        else:
            side = rng.choice(("buy", "sell"))
            qty = rng.randint(1, 50) * 10
            if roll < 0.20:
                cmd = client.command(
                    "new_order",
                    client_order_id=cid,
                    instrument=symbol,
                    side=side,
                    order_type="market",
                    quantity=qty,
                    time_in_force="IOC",
                )
            else:
                offset = rng.randint(-6, 10) * (1 if side == "sell" else -1)
                tif = "IOC" if roll < 0.30 else "GTC"
                cmd = client.command(
                    "new_order",
                    client_order_id=cid,
                    instrument=symbol,
                    side=side,
                    order_type="limit",
                    price=f"{(mid + offset) / 100:.2f}",
                    quantity=qty,
                    time_in_force=tif,
                )
                if tif == "GTC":
                    open_ids.append((symbol, cid))
        await client.send_many([cmd])
        tick(1)
        if n % 20 == 19:
            seen += len(await client.reports(block_ms=5))
    return seen


async def run_session(venue: Venue, orders: int, seed: int, tick: Callable[[int], None]) -> None:
    """Every demo participant trades concurrently until `orders` commands were sent in all."""
    rng = random.Random(seed)
    mids = {spec["symbol"]: int(float(spec["reference_price"]) * 100) for spec in DEMO_INSTRUMENTS}
    share = orders // len(DEMO_PARTICIPANTS)
    await asyncio.gather(
        *[
            _trader(
                venue.client(p),
                share + (1 if i < orders % len(DEMO_PARTICIPANTS) else 0),
                random.Random(rng.random()),
                mids,
                tick,
            )
            for i, (p, *_rest) in enumerate(DEMO_PARTICIPANTS)
        ]
    )


async def wait_quiet(venue: Venue, quiet_s: float = 1.0, timeout_s: float = 120) -> int:
    """Wait until intake has taken every command the venue's senders sent and the log stopped growing
    for `quiet_s`; return the head seq. (The operator sees how far intake read each sender's stream,
    never what is in it.)"""
    redis, keys = venue.operator.redis, venue.settings.keys
    senders = [OPERATOR, *venue.credentials]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last, since = -1, loop.time()
    while loop.time() < deadline:
        backlog = 0
        for sender in senders:
            try:
                groups = await redis.xinfo_groups(keys.commands(sender))
            except ResponseError:  # no such stream yet: nothing sent, nothing waiting
                continue
            # A stream without intake's group yet holds commands intake has not started reading.
            backlog += (
                sum(int(g.get("lag") or 0) + int(g.get("pending") or 0) for g in groups) if groups else 1
            )
        head = await redis.xlen(keys.log)
        if head != last or backlog:
            last, since = head, loop.time()
        elif loop.time() - since >= quiet_s:
            return head
        await asyncio.sleep(0.1)
    raise TimeoutError("the exchange did not drain in time")
