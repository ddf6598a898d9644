"""Dead letters with the real processes: the running intake (its own Redis user) buries a command that
was delivered DEAD_AFTER times, `greenex status` asks for the operator, and a re-drive is decided."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli.deadletters import read_dead_letters
from services.cli.main import app
from services.intake.deadletters import DEAD_AFTER
from services.intake.gateway import CONSUMER, GROUP
from shared.client import ExchangeClient
from tests.integration.exchange import Exchange
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


async def _greenex(exchange: Exchange, *args: str) -> Any:
    """The CLI in-process (it runs its own event loop, hence a thread), as the operator runs it."""
    settings = exchange.settings
    env = {"REDIS_URL": settings.redis_url, "GREENEX_PREFIX": settings.prefix,
           "GREENEX_KEYS_DIR": settings.keys_dir}  # fmt: skip
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_the_running_intake_dead_letters_and_decides_the_redrive(exchange: Exchange) -> None:
    """A participant's command is handed to intake's consumer DEAD_AFTER times before intake reads its
    stream (as if each of its batches had crashed intake); once the participant is registered, intake's
    periodic re-drain buries it without deciding it, and `greenex status` exits 1 for it. Re-driven by
    the CLI, the running intake decides it (its answer in the log names the new stream entry)."""
    keys = exchange.settings.keys
    name, key = exchange.unique("dora"), secrets.token_hex(32)
    stream = keys.commands(name)
    await exchange.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    dora = ExchangeClient(exchange.redis, name, key, keys, venue=exchange.settings.venue)
    sent = await dora.send(
        "cancel_order", client_order_id="c-1", instrument="NONE", orig_client_order_id="c-0"
    )
    for start in (">", *["0"] * (DEAD_AFTER - 1)):
        await exchange.redis.xreadgroup(GROUP, CONSUMER, {stream: start})
    await exchange.venue.onboard(name, "Dora", signing_key=key)

    async def buried() -> bool:
        return any(letter.sender == name for letter in await read_dead_letters(exchange.redis, keys))

    await eventually(buried, timeout=10)
    (letter,) = [x for x in await read_dead_letters(exchange.redis, keys) if x.sender == name]
    assert (letter.input_id, letter.deliveries) == (sent.decode(), DEAD_AFTER)
    assert not await _answers(exchange, name)
    status = await _greenex(exchange, "status")
    assert status.exit_code == 1
    assert "dead letter(s): commands intake could not process" in status.output

    redrive = await _greenex(exchange, "dead-letters", "redrive", letter.id)
    assert redrive.exit_code == 0, redrive.output
    newest: list[tuple[bytes, Any]] = await exchange.redis.xrevrange(stream, count=1)  # type: ignore[assignment]
    ((new_id, _),) = newest
    assert new_id != sent

    async def decided() -> bool:
        return await _answers(exchange, name) == [f"in:{name}:{new_id.decode()}"]

    await eventually(decided, timeout=10)
    assert not await buried()


async def _answers(exchange: Exchange, sender: str) -> list[str]:
    """The causations of intake's log entries that answer the sender's commands."""
    entries = await exchange.log.read(0, 100_000)
    return [e.causation for e in entries if e.causation.startswith(f"in:{sender}:")]
