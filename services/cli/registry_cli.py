"""`greenex registry`, `greenex label`, `greenex retire`: the carbon registry, rebuilt from the log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from services.cli.badge import label_document, label_png, label_svg
from services.cli.fastview import view_state
from services.cli.participant_request import ParticipantRequest, login_from_env, send_and_wait
from services.cli.readmodel import ExchangeState
from services.cli.registry_projects import print_projects
from services.cli.registry_view import registry_rows
from shared.config import cli_user, connect, load_settings
from shared.domain.certificates import certificate
from shared.domain.codec import decode_event
from shared.domain.compliance import CreditsSurrendered, surrender_certificate
from shared.domain.ledger import BUFFER_ACCOUNT
from shared.eventlog.redis_log import RedisEventLog

__all__ = [
    "certificate_of",
    "label_json",
    "label_png",
    "label_svg",
    "print_chain",
    "print_registry",
    "register_registry",
]

console = Console()
registry_app = typer.Typer(help="Issued, held, retired and buffer tonnes; retirement certificates.")


def kg(grams: int) -> str:
    """Integer grams as a decimal kg string (no floats for quantities)."""
    sign = "-" if grams < 0 else ""
    whole, part = divmod(abs(grams), 1000)
    return f"{sign}{whole}.{part:03d}"


def print_registry(out: Console, state: ExchangeState) -> None:
    table = Table(
        title="Registry: tonnes per project and vintage "
        "(issued = held+frozen+retired+cancelled+buffer+surrendered)"
    )
    for col in (
        "instrument",
        "project",
        "vintage",
        "issued",
        "held",
        "frozen",
        "retired",
        "cancelled",
        "buffer",
        "surrendered",
    ):
        table.add_column(col, justify="left" if col in ("instrument", "project") else "right")
    for r in registry_rows(state):
        if not r.project:
            continue  # allowances are issued by the operator, not against projects
        nums = (r.issued, r.held, r.frozen, r.retired, r.cancelled, r.buffer, r.surrendered)
        table.add_row(r.instrument, r.project, str(r.vintage), *map(str, nums))
    out.print(table)
    print_projects(out, state.registry)
    certs = Table(title="Public list of retirements")
    for col in ("certificate", "kind", "holder", "beneficiary", "instrument", "tonnes", "serials", "seq"):
        certs.add_column(col, justify="right" if col in ("tonnes", "seq") else "left")
    origins = state.registry.state.origins
    for cert in state.registry.certificates():
        ev = cert.retired
        labels = origins.labels(ev.instrument, ev.serials)
        shown = ", ".join(labels[:2]) + (f" (+{len(labels) - 2})" if len(labels) > 2 else "")
        certs.add_row(
            ev.certificate_id,
            ev.kind,
            ev.participant,
            ev.beneficiary,
            ev.instrument,
            str(ev.tonnes),
            shown,
            str(cert.seq),
        )
    out.print(certs)


def print_chain(out: Console, state: ExchangeState) -> None:
    """Verification -> issuance -> trade -> retirement -> label -> claim, as the log recorded it."""
    s = state.registry.state
    out.rule("registry chain")
    for report in s.reports.values():
        project = s.projects[report.project]
        out.print(
            f"[bold]verified[/] {report.report_id}: {project.standard} project {project.project} "
            f"({project.project_type}, {project.country}, owner {project.owner}) {report.period_start}.."
            f"{report.period_end} vintage {report.vintage}: {report.tonnes} t by {report.verifier}"
        )
        issued = s.report_issued.get(report.report_id, 0)
        buffer = s.totals[(report.instrument, report.project, report.vintage)].buffer if issued else 0
        out.print(
            f"[bold]issued[/] {issued} t into {report.instrument}: {issued - buffer} t to "
            f"{project.owner}, {buffer} t to BUFFER ({project.buffer_bps / 100:g} %)"
        )
    for symbol in sorted({r.instrument for r in s.reports.values()}):
        owners = {p.owner for p in s.projects.values() if p.instrument == symbol} | {BUFFER_ACCOUNT}
        bought = {
            account: sum(b.tonnes for b in held.get(symbol, []))
            for account in state.settlement.balances()
            if account not in owners and (held := state.settlement.holdings(account)).get(symbol)
        }
        out.print(
            f"[bold]traded[/] {symbol}: {sum(bought.values())} t now held by {len(bought)} buyers "
            f"({', '.join(f'{a} {t} t' for a, t in sorted(bought.items()))})"
        )
    for cert in state.registry.certificates():
        ev = cert.retired
        out.print(
            f"[bold]{ev.kind}d[/] {ev.certificate_id}: {ev.tonnes} t of {ev.instrument} by "
            f"{ev.participant} for {ev.beneficiary!r} ({ev.purpose or 'no declared purpose'}), serials "
            f"{', '.join(s.origins.labels(ev.instrument, ev.serials))} (log seq {cert.seq})"
        )
    for label in s.labels.values():
        out.print(
            f"[bold]labelled[/] {label.label_id}: {label.model} {kg(label.total_grams)} kg CO2e per "
            f"{label.functional_unit} ({label.boundary}), verified by {label.verifier}"
        )
    for claim in s.claims.values():
        superseded = s.superseded.get(claim.claim_id)
        status = "active" if superseded is None else f"superseded by {superseded}"
        out.print(
            f"[bold]claimed[/] {claim.claim_id} on {claim.label_id} ({status}): {claim.units} of "
            f"{claim.units_shipped} {claim.product} shipped {claim.period_start}..{claim.period_end} = "
            f"{kg(claim.footprint_grams)} kg -> {claim.required_tonnes} t needed, "
            f"{claim.covered_tonnes} t retired in {', '.join(claim.certificates)}"
        )


async def certificate_of(state: ExchangeState, event_log: RedisEventLog, cert_id: str) -> dict[str, Any]:
    """The full certificate, hash included: the chain hash comes from the log entry itself. Retirement
    and cancellation certificates (RC-) are the registry's; surrender certificates (SC-) compliance's."""
    origins = state.registry.state.origins
    cert = state.registry.state.certificates.get(cert_id)
    if cert is not None:
        (entry,) = await event_log.read(cert.seq - 1, 1)
        return certificate(cert.retired, entry.seq, entry.hash, origins)
    if cert_id not in state.verification.state.compliance.certificates:
        raise KeyError(cert_id)
    # SC-<seq of the approval>: settlement's CreditsSurrendered answers that approval after it.
    after = int(cert_id.removeprefix("SC-")) - 1
    while page := await event_log.read(after, 1000):
        for entry in page:
            if entry.type == "CreditsSurrendered":
                event = decode_event(entry.body)
                if isinstance(event, CreditsSurrendered) and event.certificate_id == cert_id:
                    return surrender_certificate(event, entry.seq, entry.hash, origins)
        after = page[-1].seq
    raise KeyError(cert_id)


def label_json(state: ExchangeState, product: str) -> dict[str, Any]:
    """The product's current label and its claims (services/cli/badge.py)."""
    return label_document(state.registry.state, product)


async def _state() -> tuple[ExchangeState, RedisEventLog, Redis]:
    settings = load_settings()
    redis = connect(settings, cli_user())
    event_log = RedisEventLog(redis, settings.keys)
    return await view_state(settings, redis), event_log, redis


@registry_app.callback(invoke_without_command=True)
def registry(ctx: typer.Context) -> None:
    """Issued, held, frozen, retired, cancelled and buffer totals per project and vintage, and the
    public list of retirements, rebuilt from the log."""
    if ctx.invoked_subcommand is not None:
        return

    async def show() -> None:
        state, _, redis = await _state()
        await redis.aclose()
        print_registry(console, state)

    asyncio.run(show())


@registry_app.command("certificate")
def certificate_cmd(cert_id: str) -> None:
    """One certificate as JSON (serial labels, seq, chain hash and its own sha256): a retirement or
    cancellation (RC-...) or a compliance surrender (SC-...)."""

    async def show() -> dict[str, Any]:
        state, event_log, redis = await _state()
        try:
            return await certificate_of(state, event_log, cert_id)
        finally:
            await redis.aclose()

    try:
        console.print_json(json.dumps(asyncio.run(show())))
    except KeyError:
        raise typer.BadParameter(f"no certificate {cert_id}") from None


def register_registry(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")

    @app.command()
    def label(
        product: str,
        svg: Path | None = typer.Option(None, help="also write the SVG badge here"),
        png: Path | None = typer.Option(None, help="also write the badge as a PNG image here"),
        neutral_wording: bool = typer.Option(
            True, "--neutral-wording/--no-neutral-wording",
            help="--no-neutral-wording: never say 'carbon neutral' (markets that forbid offset-based "
            "neutrality claims, EU Directive 2024/825); the offsets are still stated, as offsets",
        ),
    ) -> None:
        """A product's footprint label as JSON (and the badge as SVG with --svg, as PNG with --png)."""

        async def load() -> ExchangeState:
            state, _, redis = await _state()
            await redis.aclose()
            return state

        state = asyncio.run(load())
        if product not in state.registry.state.labels:
            raise typer.BadParameter(f"no label for product {product}")
        doc = label_json(state, product)
        console.print_json(json.dumps(doc))
        if svg is not None:
            svg.write_text(label_svg(doc, neutral_wording=neutral_wording))
            console.print(f"wrote {svg}")
        if png is not None:
            png.write_bytes(label_png(doc, neutral_wording=neutral_wording))
            console.print(f"wrote {png}")

    @app.command()
    def retire(
        instrument: str,
        quantity: int,
        participant: str = typer.Option(..., help="your participant id (and Redis user)"),
        beneficiary: str = typer.Option(..., help="on whose behalf the tonnes are retired"),
        reason: str = typer.Option("", help="why (e.g. 'FY2025 scope 1 offset')"),
        purpose: str = typer.Option(
            ..., help="corporate_inventory, product_claim:<product>, compliance or voluntary"
        ),
        identifier: str = typer.Option("", help="your own reference, printed on the certificate"),
        project: str = typer.Option("", help="retire only serials of this project"),
        vintage: int = typer.Option(0, help="retire only serials of this vintage"),
        serials: str = typer.Option("", help="retire exactly these serials, e.g. 1411-1420,1500-1519"),
        client_order_id: str | None = typer.Option(
            None, "--client-order-id", help="this retirement's id (default: made and printed); a retry with "
            "the same id prints the first one's certificate and retires nothing twice",
        ),
        timeout: float = 10.0,
    ) -> None:
        """Retire credits from your holding, as your own Redis user and signed with your key (both read
        from GREENEX_REDIS_PASSWORD and GREENEX_SIGNING_KEY, or asked for: never arguments); prints the
        certificate (exit 0) or the refusal (exit 3)."""
        chosen = {"purpose": purpose, "identifier": identifier, "project": project, "vintage": vintage,
                  "serials": _ranges(serials)}  # fmt: skip
        login = login_from_env()
        fields = {"instrument": instrument, "quantity": quantity, "beneficiary": beneficiary,
                  "reason": reason, **{k: v for k, v in chosen.items() if v}}  # fmt: skip
        request = ParticipantRequest(
            participant, "retire_credits", fields, client_order_id, id_stem="retire", done="retired"
        )
        raise typer.Exit(asyncio.run(send_and_wait(request, login, timeout)))


def _ranges(text: str) -> list[list[int]]:
    """'1411-1420,1500' as [[1411, 1420], [1500, 1500]]; a usage error if it does not parse."""
    out: list[list[int]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        start, _, end = part.partition("-")
        try:
            out.append([int(start), int(end or start)])
        except ValueError:
            raise typer.BadParameter(f"serials: {part!r} is not START-END") from None
    return out
