"""`greenex op ...`: operator commands, signed as the operator and sent through intake like any client's."""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from redis.asyncio import Redis
from rich.console import Console

from services.intake.service import operator_secret
from shared.client import ExchangeClient
from shared.config import load_settings
from shared.domain.ledger import OPERATOR

__all__ = ["op_app"]

op_app = typer.Typer(help="Operator commands (signed with GREENEX_OPERATOR_SECRET).", no_args_is_help=True)
console = Console()
_INSTRUMENTS = typer.Option(None, "--instrument", help="an instrument it may trade (repeat); none = all")


async def _send(action: str, args: dict[str, Any], timeout: float = 10.0) -> int:
    """Send one operator action and wait until intake has handled it; report accepted or the reject."""
    settings = load_settings()
    redis = Redis.from_url(settings.redis_url)
    try:
        client = ExchangeClient(redis, OPERATOR, operator_secret(), settings.keys)
        tail: list[tuple[bytes, Any]] = await redis.xrevrange(client.out_key, count=1)  # type: ignore[assignment]
        client.last_report_id = tail[0][0] if tail else b"0"
        entry_id = (
            await client.operator(action, f"op-{action}-{asyncio.get_running_loop().time():.6f}", **args)
        ).decode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for report in await client.reports(block_ms=100):
                if report.get("input_id") == entry_id:
                    console.print(f"[red]rejected[/] {report['reason']['code']}: {report['reason']['text']}")
                    return 1
            groups = await redis.xinfo_groups(client.in_key)
            if groups and all(
                str(g.get("last-delivered-id", b"0"), "ascii") >= entry_id and not int(g.get("pending") or 0)
                for g in groups
            ):
                console.print(f"[green]accepted[/] {action} (input {entry_id})")
                return 0
        console.print(f"[yellow]no answer within {timeout}s: is `greenex up` running?[/]")
        return 2
    finally:
        await redis.aclose()


def _run(action: str, **args: Any) -> None:
    raise typer.Exit(asyncio.run(_send(action, {k: v for k, v in args.items() if v is not None})))


@op_app.command("add-participant")
def add_participant(
    participant: str,
    name: str,
    secret: str,
    instruments: list[str] | None = _INSTRUMENTS,
    roles: list[str] | None = typer.Option(None, "--role", help="trader (default), verifier (repeat)"),
) -> None:
    """Register a participant with its signing secret (and optionally the instruments it may trade)."""
    _run(
        "register_participant",
        participant=participant,
        name=name,
        secret=secret,
        instruments=tuple(instruments) if instruments else None,
        roles=tuple(roles) if roles else None,
    )


@op_app.command()
def deposit(participant: str, amount: str) -> None:
    """Deposit cash (CNY, e.g. 1000000.00)."""
    _run("deposit_cash", participant=participant, amount=amount)


@op_app.command()
def withdraw(participant: str, amount: str) -> None:
    """Withdraw cash; verification refuses more than the available (unfrozen) balance."""
    _run("withdraw_cash", participant=participant, amount=amount)


@op_app.command()
def issue(participant: str, instrument: str, serial_start: int, serial_end: int) -> None:
    """Issue credits of an instrument to a participant as one serial block (inclusive range)."""
    _run(
        "issue_credits",
        participant=participant,
        instrument=instrument,
        serial_start=serial_start,
        serial_end=serial_end,
    )


@op_app.command("list-instrument")
def list_instrument(
    symbol: str,
    kind: str,
    standard: str,
    registry: str,
    vintage: int,
    reference_price: str,
    project_type: str = "",
    tick_size: str = "0.01",
    lot_size: int = 1,
    band_bps: int = 1000,
) -> None:
    """List an instrument with its carbon attributes, tick, lot and daily price band."""
    _run(
        "list_instrument",
        symbol=symbol,
        kind=kind,
        standard=standard,
        registry=registry,
        vintage=vintage,
        reference_price=reference_price,
        project_type=project_type,
        tick_size=tick_size,
        lot_size=lot_size,
        band_bps=band_bps,
    )


@op_app.command()
def halt(instrument: str) -> None:
    """Halt trading in an instrument (cancels still work)."""
    _run("halt_instrument", instrument=instrument)


@op_app.command()
def resume(instrument: str) -> None:
    _run("resume_instrument", instrument=instrument)


@op_app.command("close-day")
def close_day(instrument: str) -> None:
    """End the trading day: resting DAY orders expire."""
    _run("close_day", instrument=instrument)


@op_app.command("register-project")
def register_project(
    project: str,
    owner: str,
    instrument: str,
    standard: str,
    methodology: str,
    country: str,
    project_type: str,
    name: str = "",
    buffer_bps: int = typer.Option(1000, help="share of each issuance set aside in BUFFER, basis points"),
) -> None:
    """Register an offset project into an instrument's pool (its standard must be eligible)."""
    _run(
        "register_project", project=project, owner=owner, instrument=instrument, standard=standard,
        methodology=methodology, country=country, project_type=project_type, name=name,
        buffer_bps=buffer_bps,
    )  # fmt: skip


@op_app.command("issue-verified")
def issue_verified(report_id: str, tonnes: int) -> None:
    """Issue tonnes against an accepted verification report (owner block + buffer block)."""
    _run("issue_verified", report_id=report_id, tonnes=tonnes)


@op_app.command("set-eligibility")
def set_eligibility(
    instrument: str,
    min_vintage: int = typer.Option(0, help="oldest vintage accepted; 0 = open"),
    max_vintage: int = typer.Option(0, help="newest vintage accepted; 0 = open"),
    standards: list[str] | None = typer.Option(None, "--standard", help="eligible standard (repeat)"),
) -> None:
    """Change which standards and vintages an instrument pools (credits it excludes can no longer sell)."""
    _run(
        "set_eligibility",
        instrument=instrument,
        min_vintage=min_vintage,
        max_vintage=max_vintage,
        eligible_standards=tuple(standards) if standards else None,
    )


@op_app.command("cancel-credits")
def cancel_credits(participant: str, instrument: str, quantity: int, reason: str) -> None:
    """Cancel credits from a holding (e.g. BUFFER after a reversal): they leave the market for good."""
    _run("cancel_credits", participant=participant, instrument=instrument, quantity=quantity, reason=reason)
