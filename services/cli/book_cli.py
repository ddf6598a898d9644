"""`greenex book`: one instrument's L2 depth. People run it often, so it imports only what reading the live
depth view needs (about half of the whole CLI's start-up); the replay path loads the rest when asked."""

from __future__ import annotations

import asyncio

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from shared.config import Settings, cli_user, connect, load_settings
from shared.reports import DEPTH_LEVELS, DepthView

__all__ = ["print_depth", "register_book"]

console = Console()


def print_depth(out: Console, depth: DepthView, caption: str | None = None) -> None:
    """One book's L2 levels, best first (prices as the protocol writes them)."""
    table = Table(title=f"{depth.instrument}{' (HALTED)' if depth.halted else ''}", caption=caption)
    for col in ("bid qty", "bid", "ask", "ask qty"):
        table.add_column(col, justify="right")
    bids, asks = depth.bids, depth.asks
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        bid = (f"{b[1]:,}", b[0]) if b else ("", "")
        ask = (a[0], f"{a[1]:,}") if a else ("", "")
        table.add_row(*bid, *ask)
    out.print(table)


def register_book(app: typer.Typer) -> None:
    @app.command()
    def book(
        symbol: str,
        levels: int = typer.Option(10, min=1, help="price levels per side"),
        rebuild: bool = typer.Option(False, "--replay", help="rebuild it from snapshots and the log"),
    ) -> None:
        """L2 depth of one instrument: the live view matching keeps (`md:depth:<symbol>`, the best 10
        levels), or rebuilt from snapshots and the log (--replay, or more than 10 levels)."""
        settings = load_settings()
        live = None if rebuild or levels > DEPTH_LEVELS else asyncio.run(_live_depth(settings, symbol))
        if live is not None:
            trimmed = DepthView(live.instrument, live.halted, live.bids[:levels], live.asks[:levels])
            print_depth(console, trimmed, caption="live view kept by matching (--replay: from the log)")
            return
        from services.cli.exchange import replayed_book  # noqa: PLC0415 - the heavy path, only when asked

        replayed_book(settings, symbol, levels)


async def _live_depth(settings: Settings, symbol: str) -> DepthView | None:
    """The depth view matching publishes, if it has published one for this instrument."""
    redis = connect(settings, cli_user())
    try:
        raw = await redis.get(settings.keys.depth(symbol))
    finally:
        await redis.aclose()
    return None if raw is None else msgspec.json.decode(raw, type=DepthView)
