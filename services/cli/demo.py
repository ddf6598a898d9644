"""A realistic demo session: list instruments, onboard companies, fund them, issue credits, trade."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.exceptions import ResponseError

from services.cli.demo_registry import seed_registry
from services.cli.session import SessionCounts, trade_session
from services.cli.venue import Venue
from shared.domain.ledger import OPERATOR
from shared.trading import TradingClient

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


async def run_session(
    venue: Venue, orders: int, seed: int, tick: Callable[[int], None] = lambda n: None
) -> SessionCounts:
    """The demo participants trade `orders` commands through the client library, in the one order `seed`
    draws (services/cli/session.py): the same seed, the same trades."""
    mids = {spec["symbol"]: int(float(spec["reference_price"]) * 100) for spec in DEMO_INSTRUMENTS}
    settings = venue.settings
    # The seed's operator commands (listings, registrations) are decided before the first order: the
    # session starts from the same state every time, and no order races its participant's registration.
    await wait_quiet(venue, quiet_s=0.3)
    clients: list[TradingClient] = []
    for participant, *_rest in DEMO_PARTICIPANTS:
        creds = venue.credentials[participant]
        clients.append(await TradingClient.connect(
            settings.redis_url, participant, creds.redis_password, creds.signing_key, venue=settings.venue,
            prefix=settings.prefix,
        ))  # fmt: skip
    try:
        return await trade_session(clients, mids, orders, seed, tick)
    finally:
        for client in clients:
            await client.aclose()


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
