"""A participant's own request from the command line (`greenex retire`, `greenex surrender`): sent as its
own Redis user and signed with its key, then waited for on its report stream until it is decided."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
from dataclasses import dataclass
from typing import Any, cast

import typer
from redis.asyncio import Redis
from rich.console import Console

from services.cli.errors import EXIT_FAILED, EXIT_REJECTED
from services.cli.newest import newest_first
from shared.client import ExchangeClient
from shared.config import load_settings

__all__ = ["ParticipantRequest", "login_from_env", "send_and_wait"]

console = Console()
DUPLICATE = "duplicate_client_order_id"


@dataclass(frozen=True)
class ParticipantRequest:
    """One command and how to recognise its answer: the report whose `event` is `done` and which carries
    the certificate, or a refusal (any report about the request with a reason)."""

    participant: str
    command: str  # e.g. retire_credits, surrender
    fields: dict[str, Any]  # the command's fields, client order id excluded
    client_order_id: str | None  # None: made here and printed, so a retry can reuse it
    id_stem: str  # the made id's stem: <stem>-<UTC time>
    done: str  # the report event that means done, e.g. retired, surrendered


def login_from_env() -> tuple[str, str]:
    """(signing key, Redis password) from GREENEX_SIGNING_KEY and GREENEX_REDIS_PASSWORD, or prompts:
    secrets never come as arguments (they would show in the process list and the shell history)."""
    secret = os.environ.get("GREENEX_SIGNING_KEY") or typer.prompt("signing key", hide_input=True)
    password = os.environ.get("GREENEX_REDIS_PASSWORD") or typer.prompt("Redis password", hide_input=True)
    return secret, password


async def send_and_wait(request: ParticipantRequest, login: tuple[str, str], timeout: float) -> int:
    """Send the request and print its certificate (0) or its refusal (3); 1 if nothing answered. A copy
    refused as a duplicate prints the first copy's outcome, from the participant's own report stream."""
    settings = load_settings()
    secret, password = login
    redis = Redis.from_url(settings.redis_url, username=request.participant, password=password)
    try:
        client = ExchangeClient(redis, request.participant, secret, settings.keys, venue=settings.venue)
        await client.from_now()
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%f")
        cid = request.client_order_id or f"{request.id_stem}-{stamp}"
        if request.client_order_id is None:
            console.print(f"client order id {cid} (retry safely: --client-order-id {cid})", highlight=False)
        await client.send(request.command, client_order_id=cid, **request.fields)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for report in await client.reports(block_ms=100):
                if report.get("client_order_id") != cid or not _decides(report, request.done):
                    continue
                if _code(report) != DUPLICATE:
                    return _print_outcome(report, request.done)
                earlier = await _earlier_outcome(redis, client.out_key, cid, request.done)
                if earlier is None:
                    break  # sent before, not decided yet: wait for that one's report
                console.print(f"{cid} was sent before; its outcome:", highlight=False)
                return _print_outcome(earlier, request.done)
        console.print(f"[yellow]no answer within {timeout}s[/]: is `greenex up` running? It may still be "
                      f"decided: retry with --client-order-id {cid}", highlight=False)  # fmt: skip
        return EXIT_FAILED
    finally:
        await redis.aclose()


def _code(report: dict[str, Any]) -> str:
    reason = report.get("reason")
    return str(reason.get("code", "")) if isinstance(reason, dict) else ""


def _decides(report: dict[str, Any], done: str) -> bool:
    """The request's outcome, not a report on the way (none today, but a report type may add one)."""
    return report.get("event") == done or bool(_code(report))


def _print_outcome(report: dict[str, Any], done: str) -> int:
    if report.get("event") == done:
        console.print_json(json.dumps(report["certificate"]))
        return 0
    console.print(f"[red]rejected[/] {_code(report)}: {report['reason']['text']}", highlight=False)
    return EXIT_REJECTED


async def _earlier_outcome(
    redis: Redis, stream: str, cid: str, done: str, pages: int = 50
) -> dict[str, Any] | None:
    """The report that decided an earlier copy of this request, from the participant's own stream."""
    async for _id, fields in newest_first(redis, stream, page=1000, pages=pages):
        report = json.loads(fields.get(b"data", b"{}"))
        if report.get("client_order_id") == cid and _decides(report, done) and _code(report) != DUPLICATE:
            return cast(dict[str, Any], report)
    return None
