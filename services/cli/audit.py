"""`greenex audit ACCOUNT`: every log event that touched an account, with its key amounts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli.history import history
from services.cli.replay import format_ns
from shared.config import cli_user, connect, load_settings
from shared.domain.codec import Event, decode_event, tags
from shared.domain.ledger import EXCHANGE_ACCOUNT, TradeSettled
from shared.domain.values import fen_to_price
from shared.eventlog.archive import iter_archive
from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt

__all__ = ["audit_lines", "roles_of", "register"]

_SETTLED = next(iter(tags(TradeSettled)))
# Every field of an event that names an account: trading, registry (owner, verifier), compliance (entity).
_ROLE_FIELDS = (
    "participant", "maker_participant", "taker_participant", "buyer", "seller", "owner", "verifier", "entity"
)
_PRICES = ("price", "old_price")  # fen, shown as CNY
_MONEY = ("amount", "cash", "buyer_fee", "seller_fee", "reserved_cash", "extra_cash")  # fen
_QUANTITIES = (
    "quantity",
    "leaves",
    "cancelled_qty",
    "expired_qty",
    "cum_qty",
    "maker_leaves",
    "taker_leaves",
)


def roles_of(event: Event, account: str) -> list[str]:
    """How the event involves the account: `participant`, `maker_participant`, `buyer`..., and
    `fee_collector` for the exchange's account on a settlement that charged a fee."""
    roles = [f for f in _ROLE_FIELDS if getattr(event, f, None) == account]
    charged = isinstance(event, TradeSettled) and bool(event.buyer_fee or event.seller_fee)
    if account == EXCHANGE_ACCOUNT and charged:
        roles.append("fee_collector")
    return roles


def _fen(value: Any) -> str:
    """An amount in fen as CNY; a value of another kind (an activity's decimal string) as it is."""
    return fen_to_price(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _amounts(event: Event) -> str:
    parts: list[str] = []
    for name in ("instrument", "client_order_id", "order_id", "trade_id", "side"):
        value: Any = getattr(event, name, None)
        if value not in (None, "", 0):
            parts.append(f"{name}={value}")
    parts += [f"{n}={_fen(getattr(event, n))}" for n in _PRICES if getattr(event, n, 0)]
    parts += [f"{n}={_fen(getattr(event, n))}" for n in _MONEY if getattr(event, n, 0)]
    parts += [f"{n}={getattr(event, n)}" for n in _QUANTITIES if hasattr(event, n)]
    serials = getattr(event, "serials", None)
    if serials:
        blocks = serials if isinstance(serials, tuple) else (serials,)
        parts.append("serials=" + ",".join(f"{b.start}-{b.end}" for b in blocks))
    reason = getattr(event, "reason", None)
    if reason:
        parts.append(f"reason={reason}")
    return " ".join(parts)


def audit_lines(entries: Iterator[Entry], account: str) -> Iterator[str]:
    """One line per entry touching the account: seq, logged time, type, roles, key amounts."""
    needle, fees = account.encode(), account == EXCHANGE_ACCOUNT
    for entry in entries:
        # Most entries never name the account: skip decoding them (the exchange's is named by none: its
        # fees come with every settlement).
        if needle not in entry.body and not (fees and entry.type == _SETTLED):
            continue
        event = decode_event(entry.body)
        if roles := roles_of(event, account):
            when = format_ns(entry.logged_ns)
            yield f"{entry.seq:>8} {when} {entry.type:<16} {'/'.join(roles)} {_amounts(event)}"


def register(app: typer.Typer) -> None:
    @app.command()
    def audit(
        account: str,
        file: Annotated[Path | None, typer.Option("--file", help="Read an exported archive.")] = None,
        redis_url: Annotated[str | None, typer.Option("--redis-url", help="Default: REDIS_URL.")] = None,
    ) -> None:
        """List every event that touched ACCOUNT (as participant, maker/taker, buyer/seller)."""
        try:
            if file is not None:
                lines = list(audit_lines(iter_archive(file), account))
            else:
                lines = asyncio.run(_collect(redis_url, account))
        except LogCorrupt as bad:
            typer.echo(f"BAD seq={bad.seq}: {bad.reason}", err=True)
            raise typer.Exit(1) from bad
        for line in lines:
            typer.echo(line)
        typer.echo(f"{len(lines)} events touched {account}")


async def _collect(url: str | None, account: str) -> list[str]:
    settings = load_settings(redis_url=url)
    redis = connect(settings, cli_user())
    lines: list[str] = []
    try:
        event_log = history(settings, redis)
        after = 0
        while entries := await event_log.read(after, 5000):
            lines += audit_lines(iter(entries), account)
            after = entries[-1].seq
    finally:
        await redis.aclose()
    return lines
