"""`greenex op ...`: operator commands, signed with the operator's key, sent as the operator's Redis user
through intake like any client's; provisioning (participants' users and keys) as admin."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import typer
from rich.console import Console

from services.cli.provision import ProvisioningError, sealed_key
from services.cli.venue import Venue
from shared.client import ExchangeClient
from shared.config import load_settings
from shared.domain.values import price_to_fen
from shared.keyring import KeyMissing

__all__ = ["op_app"]

op_app = typer.Typer(
    help="Operator commands (signed with the key ring's operator key).", no_args_is_help=True
)
console = Console()
_INSTRUMENTS = typer.Option(None, "--instrument", help="an instrument it may trade (repeat); none = all")


async def _outcome(client: ExchangeClient, entry_id: str, timeout: float) -> dict[str, Any] | None:
    """Wait until intake has taken the command and the reports of everything logged by then are out;
    the rejection report naming the command, or None (accepted). TimeoutError if that takes too long."""
    redis, keys = client.redis, client.keys
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    taken_at: int | None = None  # the log's length once intake had taken the command
    while loop.time() < deadline:
        for report in await client.reports(block_ms=100):
            if report.get("input_id") == entry_id:
                return report
        if taken_at is None:
            groups = await redis.xinfo_groups(client.in_key)
            if groups and all(
                str(g.get("last-delivered-id", b"0"), "ascii") >= entry_id and not int(g.get("pending") or 0)
                for g in groups
            ):
                taken_at = int(await redis.xlen(keys.log))
        elif int(await redis.get(keys.report_cursor) or 0) >= taken_at:
            return None
    raise TimeoutError


async def _send(action: str, args: dict[str, Any], timeout: float = 10.0) -> int:
    """Send one operator action and wait until intake has handled it; report accepted or the reject."""
    venue = Venue(load_settings())
    try:
        client = venue.operator
        tail: list[tuple[bytes, Any]] = await client.redis.xrevrange(client.out_key, count=1)  # type: ignore[assignment]
        client.last_report_id = tail[0][0] if tail else b"0"
        entry_id = (await client.operator(action, f"op-{action}-{time.time_ns()}", **args)).decode()
        try:
            rejected = await _outcome(client, entry_id, timeout)
        except TimeoutError:
            console.print(f"[yellow]no answer within {timeout}s: is `greenex up` running?[/]")
            return 2
        if rejected is not None:
            console.print(f"[red]rejected[/] {rejected['reason']['code']}: {rejected['reason']['text']}")
            return 1
        console.print(f"[green]accepted[/] {action} (input {entry_id})")
        return 0
    finally:
        await venue.aclose()


def _run(action: str, **args: Any) -> None:
    try:
        code = asyncio.run(_send(action, {k: v for k, v in args.items() if v is not None}))
    except KeyMissing as missing:
        typer.echo(f"error: {missing}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def _secret_from_stdin() -> str:
    secret = sys.stdin.readline().strip()
    if len(secret) < 16:
        typer.echo("error: a signing key read from stdin must be at least 16 characters", err=True)
        raise typer.Exit(2)
    return secret


async def _add_participant(
    participant: str, name: str, roles: tuple[str, ...], instruments: tuple[str, ...], secret: str | None
) -> int:
    settings = load_settings()
    venue = Venue(settings)
    try:
        credentials = await venue.onboard(
            participant, name, roles=roles, instruments=instruments, signing_key=secret
        )
        console.print("[green]participant created[/]; its credentials, shown this once (the exchange keeps "
                      "only a hash of the password and the key sealed):")  # fmt: skip
        console.print(credentials.as_text(settings.redis_url), highlight=False)
        return 0
    except ProvisioningError as refused:
        typer.echo(f"error: {refused}", err=True)
        return 1
    finally:
        await venue.aclose()


@op_app.command("add-participant")
def add_participant(
    participant: str,
    name: str,
    instruments: list[str] | None = _INSTRUMENTS,
    roles: list[str] | None = typer.Option(None, "--role", help="trader (default), verifier (repeat)"),
    secret_stdin: bool = typer.Option(False, "--secret-stdin", help="read its signing key from stdin"),
) -> None:
    """Create a participant: its own Redis user and signing key (generated, or read from stdin; never an
    argument), registered with the key sealed. Prints the credentials once."""
    secret = _secret_from_stdin() if secret_stdin else None
    try:
        code = asyncio.run(
            _add_participant(participant, name, tuple(roles or ("trader",)), tuple(instruments or ()), secret)
        )
    except KeyMissing as missing:
        typer.echo(f"error: {missing}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@op_app.command("rotate-key")
def rotate_key(
    participant: str,
    overlap_s: int = typer.Option(300, help="seconds the participant's current keys stay valid"),
    secret_stdin: bool = typer.Option(False, "--secret-stdin", help="read the new key from stdin"),
) -> None:
    """Give a participant a new signing key (e.g. after a leak: --overlap-s 0). Prints it once."""
    settings = load_settings()
    key, sealed = sealed_key(
        settings.keyring, participant, f"op{time.time_ns()}", _secret_from_stdin() if secret_stdin else None
    )
    console.print(f"new signing key of {participant} (shown this once): {key}", highlight=False)
    _run("rotate_key", participant=participant, key=sealed, overlap_s=overlap_s)


@op_app.command("set-limits")
def set_limits(
    participant: str,
    commands_per_s: int = typer.Option(0, help="sustained commands per second; 0: the default"),
    burst: int = typer.Option(0, help="commands it may send at once; 0: the default"),
    max_open_orders: int = typer.Option(0, help="resting orders at once; 0: the default"),
) -> None:
    """Set a participant's rate and open-order limits (each refused with its own reason code)."""
    _run("set_limits", participant=participant, commands_per_s=commands_per_s, burst=burst,
         max_open_orders=max_open_orders)  # fmt: skip


def _cny(text: str) -> str:
    """An amount as the operator typed it, checked at the edge: CNY, positive, at most 2 decimals."""
    try:
        fen = price_to_fen(text)
    except ValueError:
        fen = 0
    if fen <= 0:
        raise typer.BadParameter(f"{text!r} is not an amount in CNY; e.g. 1000000.00 (at most 2 decimals)")
    return text


_AMOUNT = typer.Argument(..., callback=_cny, help="CNY, e.g. 1000000.00")


@op_app.command()
def deposit(participant: str, amount: str = _AMOUNT) -> None:
    """Deposit cash (CNY, e.g. 1000000.00)."""
    _run("deposit_cash", participant=participant, amount=amount)


@op_app.command()
def withdraw(participant: str, amount: str = _AMOUNT) -> None:
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
