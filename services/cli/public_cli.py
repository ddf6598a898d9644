"""`greenex web` (the public pages, in the foreground) and `greenex public export` (the public registry and
daily market data as CSV files), both from the public read model only."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import typer

from shared.config import OPERATOR_USER, connect, load_settings

__all__ = ["register_public"]

public_app = typer.Typer(help="The public read model (`pub:*`), what the web shows.", no_args_is_help=True)


def _write(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})


async def _export(folder: Path) -> list[Path]:
    settings = load_settings()
    keys, redis = settings.keys, connect(settings, OPERATOR_USER)
    try:
        registry = json.loads(await redis.get(keys.pub_registry) or b"{}")
        market = json.loads(await redis.get(keys.pub_market) or b'{"instruments": []}')
        certs = [json.loads(v) for v in (await redis.hgetall(keys.pub_certificates)).values()]
        daily: list[dict[str, Any]] = []
        for inst in market["instruments"]:
            doc = json.loads(await redis.get(keys.pub_instrument(inst["symbol"])) or b"{}")
            daily += [{"instrument": inst["symbol"], **d} for d in doc.get("daily", [])]
    finally:
        await redis.aclose()
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "projects.csv": (registry.get("projects", []), ["project", "name", "instrument", "standard",
                         "methodology", "country", "project_type", "status", "issued", "retired", "buffer"]),
        "issuances.csv": (registry.get("issuances", []), ["seq", "project", "instrument", "vintage",
                          "report_id", "start", "end", "tonnes", "buffer"]),
        "reports.csv": (registry.get("reports", []), ["report_id", "project", "verifier", "vintage",
                        "period_start", "period_end", "tonnes", "report_hash"]),
        "certificates.csv": (sorted(certs, key=lambda c: c["seq"]), ["id", "kind", "date", "beneficiary",
                             "reason", "purpose", "identifier", "instrument", "tonnes", "vintages", "serials",
                             "seq", "entry_link"]),
        "daily.csv": (daily, ["instrument", "date", "o", "h", "l", "c", "vwap", "v", "n"]),
    }  # fmt: skip
    for name, (rows, fields) in files.items():
        _write(folder / name, rows, fields)
    return [folder / name for name in files]


@public_app.command("export")
def export(folder: Path = typer.Argument(..., help="Where to write the CSV files.")) -> None:
    """Write the public registry (projects, reports, issuances, certificates) and the daily market data
    (prices in fen, tonnes) as CSV files."""
    for path in asyncio.run(_export(folder)):
        typer.echo(f"wrote {path}")


def web() -> None:
    """Serve the public market and registry pages and their JSON API (GREENEX_WEB_HOST:GREENEX_WEB_PORT,
    127.0.0.1:8080 by default) in the foreground, as the `web` Redis user; `greenex up` runs it too."""
    from services.runtime.main import run_process  # noqa: PLC0415 - the process's whole stack
    from services.system import SYSTEM  # noqa: PLC0415

    run_process(SYSTEM, ["web"])


def register_public(app: typer.Typer) -> None:
    app.command("web")(web)
    app.add_typer(public_app, name="public")
