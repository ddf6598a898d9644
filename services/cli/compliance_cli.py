"""`greenex compliance` (each entity's obligation, surrendered allowances and offsets, what remains and
the offset cap's headroom), a covered entity's `greenex surrender`, and the operator's compliance commands
under `greenex op`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from services.cli.compliance_view import compliance_rows
from services.cli.fastview import view_state
from services.cli.operator import _run, op_app
from services.cli.participant_request import ParticipantRequest, login_from_env, send_and_wait
from services.cli.readmodel import ExchangeState
from shared.config import cli_user, connect, load_settings
from shared.domain.values import fen_for_people

__all__ = ["print_compliance", "register_compliance"]

console = Console()
_CID = typer.Option(None, "--client-order-id", help="this command's id (default: made and printed)")


def print_compliance(out: Console, state: ExchangeState, entity: str | None, scheme: str | None) -> int:
    """The accounts as a table; the number of rows shown."""
    rows = compliance_rows(state, entity, scheme)
    table = Table(title="Compliance: obligation, surrendered allowances and offsets, remaining, cap headroom")
    columns = ("scheme", "year", "entity", "emissions", "carried in", "obligation", "allocated", "allowances",
               "offsets", "remaining", "offset cap", "headroom", "status", "penalty CNY")  # fmt: skip
    for col in columns:
        text = col in ("scheme", "entity", "status")
        # ids are never cut; the numbers wrap their headers instead when the terminal is narrow
        table.add_column(col, justify="left" if text else "right", no_wrap=text)
    for r in rows:
        nums = (r.emissions, r.carried_in, r.obligation, r.allocated, r.allowances, r.offsets, r.remaining,
                r.offset_cap, r.headroom)  # fmt: skip
        table.add_row(r.scheme, str(r.year), r.entity, *(f"{n:,}" for n in nums), r.status,
                      fen_for_people(r.penalty_fen) if r.penalty_fen else "")  # fmt: skip
    out.print(table)
    return len(rows)


def _show(entity: str | None, scheme: str | None) -> int:
    async def state() -> ExchangeState:
        settings = load_settings()
        redis = connect(settings, cli_user())
        try:
            return await view_state(settings, redis)
        finally:
            await redis.aclose()

    return print_compliance(console, asyncio.run(state()), entity, scheme)


def register_compliance(app: typer.Typer) -> None:
    @app.command()
    def compliance(
        entity: str | None = typer.Argument(None, help="a covered entity (default: every one)"),
        scheme: str | None = typer.Option(None, "--scheme", help="one scheme only"),
    ) -> None:
        """Obligation, surrendered allowances vs offsets, remaining and offset-cap headroom per scheme and
        compliance year, rebuilt from the log; exit 1 when nothing matches."""
        if entity is None and scheme is None:
            raise typer.BadParameter("name an ENTITY or a --scheme")
        if not _show(entity, scheme):
            where = f"{entity or 'any entity'} in {scheme or 'any scheme'}"
            typer.echo(f"error: no compliance account for {where}", err=True)
            raise typer.Exit(1)

    @app.command()
    def surrender(
        scheme: str,
        year: int,
        instrument: str,
        quantity: int,
        participant: str = typer.Option(..., help="your participant id (the covered entity)"),
        client_order_id: str | None = typer.Option(
            None, "--client-order-id", help="this surrender's id (default: made and printed); a retry with "
            "the same id prints the first one's certificate and surrenders nothing twice",
        ),
        timeout: float = 10.0,
    ) -> None:
        """Surrender allowances or offsets against your obligation under SCHEME for compliance YEAR, as your
        own Redis user and signed with your key (from GREENEX_REDIS_PASSWORD and GREENEX_SIGNING_KEY, or
        asked for: never arguments); prints the SC- certificate (exit 0) or the refusal (exit 3)."""
        login = login_from_env()
        fields = {"scheme": scheme, "year": year, "instrument": instrument, "quantity": quantity}
        request = ParticipantRequest(
            participant, "surrender", fields, client_order_id, id_stem="surrender", done="surrendered"
        )
        raise typer.Exit(asyncio.run(send_and_wait(request, login, timeout)))


@op_app.command("define-scheme")
def define_scheme(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="the scheme's rules as JSON"),
    client_order_id: str | None = _CID,
) -> None:
    """Define a compliance scheme from a JSON file (docs/registry.md, "Compliance", lists its fields)."""
    try:
        args: Any = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{file} is not JSON: {exc}") from None
    if not isinstance(args, dict):
        raise typer.BadParameter(f"{file} must hold one JSON object")
    _run(client_order_id, "define_scheme", **args)


@op_app.command()
def allocate(
    participant: str,
    scheme: str,
    year: int,
    instrument: str,
    serial_start: int,
    serial_end: int,
    client_order_id: str | None = _CID,
) -> None:
    """Allocate allowances of a compliance year to a covered entity as one serial block."""
    _run(client_order_id, "allocate_allowances", participant=participant, scheme=scheme, year=year,
         instrument=instrument, serial_start=serial_start, serial_end=serial_end)  # fmt: skip


@op_app.command("close-compliance-year")
def close_compliance_year(scheme: str, year: int, client_order_id: str | None = _CID) -> None:
    """Close a compliance year after its deadline: each entity's shortfall, penalty and next year's
    deduction are recorded; surrenders for the year are refused from then on."""
    _run(client_order_id, "close_compliance_year", scheme=scheme, year=year)
