"""`greenex op ...`: operator commands, signed with the operator's key, sent as the operator's Redis user
through intake like any client's; provisioning (participants' users and keys) as admin."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import typer
from redis.asyncio import Redis
from rich.console import Console

from services.cli.decisions import wait_for_decision
from services.cli.errors import EXIT_FAILED, EXIT_REJECTED
from services.cli.newest import newest_first
from services.cli.provision import ProvisioningError, sealed_key
from services.cli.venue import Venue
from services.system import SYSTEM
from shared.client import ExchangeClient
from shared.config import load_settings
from shared.domain.ledger import OPERATOR
from shared.domain.values import price_to_fen
from shared.eventlog.redis_log import RedisEventLog, decode_stream_entry
from shared.keyring import KeyMissing
from shared.keys import Keys

__all__ = ["op_app"]

op_app = typer.Typer(
    help="Operator commands (signed with the key ring's operator key).", no_args_is_help=True
)
console = Console()
_INSTRUMENTS = typer.Option(None, "--instrument", help="an instrument it may trade (repeat); none = all")
# Sending a command again with the same id is safe: intake refuses the copy, and the CLI prints the
# decision the first one got.
_CID = typer.Option(None, "--client-order-id", help="this command's id (default: made and printed)")
_SEARCH_PAGES = 500  # a retry's first copy is looked for in the newest 1,000,000 entries


async def _refusal(client: ExchangeClient, entry_id: str, stop: asyncio.Event) -> dict[str, Any]:
    """The report refusing the command before it was logged (a bad signature, a spent id...)."""
    while not stop.is_set():
        for report in await client.reports(block_ms=200):
            if report.get("input_id") == entry_id:
                return report
    raise asyncio.CancelledError


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _logged_seq(redis: Redis, keys: Keys, sender: str, client_order_id: str) -> int | None:
    """The seq of intake's first entry for this command, searched from the head back (a retry)."""
    first = f"{sender}/{client_order_id}/0"
    async for row in newest_first(redis, keys.log, page=2000, pages=_SEARCH_PAGES):
        entry = decode_stream_entry(*row)
        if entry.producer == "intake" and entry.event_id == first:
            return entry.seq
    return None


async def _send(action: str, args: dict[str, Any], client_order_id: str | None, timeout: float = 10.0) -> int:
    """Send one operator action and wait for the exchange's decision (intake's entries and the cores'
    answers to them); print it. Exit 0 accepted, 3 refused, 1 no decision in time."""
    settings = load_settings()
    venue = Venue(settings)
    answers = {core.name: core.answers_to for core in SYSTEM.cores}
    try:
        client = venue.operator
        redis, keys = client.redis, settings.keys
        cid = client_order_id or f"op-{action}-{time.time_ns()}"
        head, _ = await RedisEventLog(redis, keys).head()
        await client.from_now()
        entry_id = (await client.operator(action, cid, **args)).decode()
        if client_order_id is None:
            console.print(
                f"client order id {cid} (to retry safely: --client-order-id {cid})", highlight=False
            )
        decided = asyncio.create_task(wait_for_decision(redis, keys, OPERATOR, cid, head, answers, timeout))
        stop = asyncio.Event()
        refused = asyncio.create_task(_refusal(client, entry_id, stop))
        done, _ = await asyncio.wait({decided, refused}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        for task in (decided, refused):
            if task not in done:
                # redis-py can lose a cancel that lands on a blocked read (its read timeout turns it into
                # a retried TimeoutError), so the report reader also stops at `stop`; whatever still
                # runs when the venue closes ends in an error retrieved here, not printed at exit.
                task.cancel()
                task.add_done_callback(_retrieve)
        await asyncio.wait([t for t in (decided, refused) if t not in done], timeout=0.5)
        if refused in done:
            report = refused.result()
            code, text = report["reason"]["code"], report["reason"]["text"]
            seq = (
                await _logged_seq(redis, keys, OPERATOR, cid) if code == "duplicate_client_order_id" else None
            )
            if seq is None:
                console.print(f"[red]rejected[/] {code}: {text}", highlight=False)
                return EXIT_REJECTED
            console.print(f"{cid} was sent before (seq {seq}); its decision:")
            decision = await wait_for_decision(redis, keys, OPERATOR, cid, seq - 1, answers, timeout)
        elif decided in done and decided.exception() is None:
            decision = decided.result()
        else:
            hint = f"is `greenex up` running? It may still be decided: retry with --client-order-id {cid}"
            console.print(f"[yellow]no decision within {timeout:.0f} s[/]: {hint}", highlight=False)
            return EXIT_FAILED
        if decision.rejection is not None:
            code, text = decision.reason()
            console.print(f"[red]rejected[/] {code}: {text} ({decision.summary()})", highlight=False)
            return EXIT_REJECTED
        console.print(f"[green]accepted[/] {action}: {decision.summary()}", highlight=False)
        return 0
    finally:
        await venue.aclose()


def _run(client_order_id: str | None, action: str, **args: Any) -> None:
    try:
        code = asyncio.run(_send(action, {k: v for k, v in args.items() if v is not None}, client_order_id))
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
    client_order_id: str | None = _CID,
) -> None:
    """Give a participant a new signing key (e.g. after a leak: --overlap-s 0). Prints it once."""
    settings = load_settings()
    key, sealed = sealed_key(
        settings.keyring, participant, f"op{time.time_ns()}", _secret_from_stdin() if secret_stdin else None
    )
    console.print(f"new signing key of {participant} (shown this once): {key}", highlight=False)
    _run(client_order_id, "rotate_key", participant=participant, key=sealed, overlap_s=overlap_s)


@op_app.command("set-limits")
def set_limits(
    participant: str,
    commands_per_s: int = typer.Option(0, help="sustained commands per second; 0: the default"),
    burst: int = typer.Option(0, help="commands it may send at once; 0: the default"),
    max_open_orders: int = typer.Option(0, help="resting orders at once; 0: the default"),
    client_order_id: str | None = _CID,
) -> None:
    """Set a participant's rate and open-order limits (each refused with its own reason code)."""
    _run(client_order_id, "set_limits", participant=participant, commands_per_s=commands_per_s, burst=burst,
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
def deposit(participant: str, amount: str = _AMOUNT, client_order_id: str | None = _CID) -> None:
    """Deposit cash (CNY, e.g. 1000000.00)."""
    _run(client_order_id, "deposit_cash", participant=participant, amount=amount)


@op_app.command()
def withdraw(participant: str, amount: str = _AMOUNT, client_order_id: str | None = _CID) -> None:
    """Withdraw cash; verification refuses more than the available (unfrozen) balance."""
    _run(client_order_id, "withdraw_cash", participant=participant, amount=amount)


@op_app.command()
def transfer(
    participant: str,
    amount: str = _AMOUNT,
    to: int = typer.Option(..., "--to", help="the partition the cash goes to"),
    client_order_id: str | None = _CID,
) -> None:
    """Move a participant's cash from this partition (GREENEX_PARTITION) to another: a withdrawal here,
    a deposit there once the destination's transfers process credits it, exactly once."""
    _run(client_order_id, "transfer_cash", participant=participant, amount=amount, to_partition=to)


@op_app.command()
def issue(
    participant: str, instrument: str, serial_start: int, serial_end: int, client_order_id: str | None = _CID
) -> None:
    """Issue credits of an instrument to a participant as one serial block (inclusive range)."""
    _run(
        client_order_id,
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
    client_order_id: str | None = _CID,
) -> None:
    """List an instrument with its carbon attributes, tick, lot and daily price band."""
    _run(
        client_order_id,
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
def halt(instrument: str, client_order_id: str | None = _CID) -> None:
    """Halt trading in an instrument (cancels still work)."""
    _run(client_order_id, "halt_instrument", instrument=instrument)


@op_app.command()
def resume(instrument: str, client_order_id: str | None = _CID) -> None:
    _run(client_order_id, "resume_instrument", instrument=instrument)


@op_app.command("close-day")
def close_day(instrument: str, client_order_id: str | None = _CID) -> None:
    """End the trading day: resting DAY orders expire."""
    _run(client_order_id, "close_day", instrument=instrument)


@op_app.command("register-project")
def register_project(
    project: str,
    owner: str,
    instrument: str,
    standard: str,
    methodology: str = typer.Argument(..., help="an active id of shared/data/methodologies_v1.json"),
    country: str = typer.Argument(..., help="ISO 3166 alpha-2"),
    project_type: str = typer.Argument(...),
    name: str = "",
    buffer_bps: int = typer.Option(1000, help="share of each issuance set aside in BUFFER, basis points"),
    start_date: str = typer.Option("", help="when the project started (construction), YYYY-MM-DD"),
    crediting_start: str = typer.Option("", help="first day of the crediting period"),
    crediting_end: str = typer.Option("", help="last day of the crediting period"),
    admin_code: str = typer.Option("", help="administrative division code, e.g. GB/T 2260 441200"),
    latitude: str = typer.Option("", help="decimal degrees, at most 6 places"),
    longitude: str = typer.Option("", help="decimal degrees, at most 6 places"),
    origin_registry: str = typer.Option("", help="the registry the project comes from"),
    origin_id: str = typer.Option("", help="its id there"),
    validator: str = typer.Option("", help="the body that validated the project design"),
    client_order_id: str | None = _CID,
) -> None:
    """Register an offset project into an instrument's pool; one at the site or origin id of an existing
    project is held under review (see review-project)."""
    _run(
        client_order_id, "register_project", project=project, owner=owner, instrument=instrument,
        standard=standard, methodology=methodology, country=country, project_type=project_type, name=name,
        buffer_bps=buffer_bps, start_date=start_date, crediting_start=crediting_start,
        crediting_end=crediting_end, admin_code=admin_code, latitude=latitude, longitude=longitude,
        origin_registry=origin_registry, origin_id=origin_id, validator=validator,
    )  # fmt: skip


@op_app.command("review-project")
def review_project(
    project: str,
    approve: bool = typer.Option(..., "--approve/--reject", help="the decision on a project under review"),
    note: str = typer.Option("", help="why"),
    client_order_id: str | None = _CID,
) -> None:
    """Decide on a project held under review as a possible duplicate."""
    _run(client_order_id, "review_project", project=project, decision="approve" if approve else "reject",
         note=note)  # fmt: skip


@op_app.command("accredit-verifier")
def accredit_verifier(
    verifier: str,
    public_key: str = typer.Option(..., help="the verifier's Ed25519 public key, 64 hex digits"),
    expires: str = typer.Option(..., help="last day the accreditation is valid, YYYY-MM-DD"),
    scopes: list[str] = typer.Option(
        ..., "--scope", help="a sector (forestry, energy) or methodology id (project reports), "
        "product_footprint (labels), emissions or emissions:<scheme> (verified emissions); repeat for more",
    ),
    accreditor: str = typer.Option("", help="the accreditation body"),
    client_order_id: str | None = _CID,
) -> None:
    """Accredit (or re-accredit) a verifier: its scopes, expiry and report-signing key."""
    _run(client_order_id, "accredit_verifier", verifier=verifier, scopes=scopes, expires=expires,
         public_key=public_key, accreditor=accreditor)  # fmt: skip


@op_app.command("report-reversal")
def report_reversal(
    project: str,
    tonnes: int,
    description: str = typer.Option(..., help="the loss event and its evidence"),
    occurred_on: str = typer.Option("", help="when it happened, YYYY-MM-DD"),
    client_order_id: str | None = _CID,
) -> None:
    """Record a loss on a project and cancel as many tonnes from the instrument's pooled BUFFER."""
    _run(client_order_id, "report_reversal", project=project, tonnes=tonnes, description=description,
         occurred_on=occurred_on)  # fmt: skip


@op_app.command("issue-verified")
def issue_verified(report_id: str, tonnes: int, client_order_id: str | None = _CID) -> None:
    """Issue tonnes against an accepted verification report (owner block + buffer block)."""
    _run(client_order_id, "issue_verified", report_id=report_id, tonnes=tonnes)


@op_app.command("set-eligibility")
def set_eligibility(
    instrument: str,
    min_vintage: int = typer.Option(0, help="oldest vintage accepted; 0 = open"),
    max_vintage: int = typer.Option(0, help="newest vintage accepted; 0 = open"),
    standards: list[str] | None = typer.Option(None, "--standard", help="eligible standard (repeat)"),
    client_order_id: str | None = _CID,
) -> None:
    """Change which standards and vintages an instrument pools (credits it excludes can no longer sell)."""
    _run(
        client_order_id,
        "set_eligibility",
        instrument=instrument,
        min_vintage=min_vintage,
        max_vintage=max_vintage,
        eligible_standards=tuple(standards) if standards else None,
    )


@op_app.command("cancel-credits")
def cancel_credits(
    participant: str, instrument: str, quantity: int, reason: str, client_order_id: str | None = _CID
) -> None:
    """Cancel credits from a holding (e.g. BUFFER after a reversal): they leave the market for good."""
    _run(
        client_order_id,
        "cancel_credits",
        participant=participant,
        instrument=instrument,
        quantity=quantity,
        reason=reason,
    )


@op_app.command("publish-factor-table")
def publish_factor_table(
    version: str,
    sha256: str = typer.Option(..., help="the SHA-256 of the table's canonical content, as you checked it"),
    client_order_id: str | None = _CID,
) -> None:
    """Publish a shipped emission factor table into the log; each version is published once."""
    _run(client_order_id, "publish_factor_table", version=version, sha256=sha256)


@op_app.command("set-claim-rules")
def set_claim_rules(
    max_vintage_age_years: int = typer.Option(5, help="oldest vintage a claim takes: period start year - N"),
    label_validity_days: int = typer.Option(365, help="how long a label stays valid"),
    client_order_id: str | None = _CID,
) -> None:
    """The rules product claims are decided by (docs/registry.md, "Labels and claims that tell the truth")."""
    _run(client_order_id, "set_claim_rules", max_vintage_age_years=max_vintage_age_years,
         label_validity_days=label_validity_days)  # fmt: skip
