"""`greenex dead-letters` on a real Redis with every role's ACL user: intake (its own user) buries a
command it kept failing on; the operator lists, shows and drops; admin re-drives, and intake decides."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import msgspec
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.provision import apply_acl, init_keys, sealed_key
from services.intake.core import Intake
from services.intake.deadletters import DEAD_AFTER
from services.intake.gateway import CONSUMER, GROUP, Gateway
from services.system import SYSTEM
from shared.client import ExchangeClient
from shared.config import OPERATOR_USER, Settings, connect
from shared.domain.ledger import OPERATOR
from shared.eventlog.redis_log import RedisEventLog, decode_stream_entry
from shared.keys import Keys
from shared.resp import RespClient

pytestmark = pytest.mark.integration
runner = CliRunner()
DL = Keys("dl")


class Setup(NamedTuple):
    settings: Settings
    env: dict[str, str]
    sync: redis.Redis


@pytest.fixture
def setup(redis_server: str, tmp_path: Path) -> Iterator[Setup]:
    """The `dl` exchange's key ring and every role's Redis user on the session's (flushed) server."""
    settings = Settings(redis_url=redis_server, prefix=DL.prefix, keys_dir=str(tmp_path / "keys"))
    init_keys(settings, SYSTEM)

    async def provision() -> None:
        client = AsyncRedis.from_url(redis_server)
        try:
            await client.flushall()
            await apply_acl(client, settings, SYSTEM, lock_default=False)
        finally:
            await client.aclose()

    asyncio.run(provision())
    env = {"REDIS_URL": redis_server, "GREENEX_PREFIX": DL.prefix, "GREENEX_KEYS_DIR": settings.keys_dir}
    with redis.Redis.from_url(redis_server) as sync:
        yield Setup(settings, env, sync)


async def _intake(settings: Settings, work: str) -> None:
    """Intake's gateway logged in as intake's own Redis user. `bury`: the operator registers `work`,
    and intake is handed that command DEAD_AFTER times without deciding it (each time its batch
    crashed), then re-drains. `decide`: intake re-drains and reads its streams once, as it does live."""
    redis = connect(settings, "intake")
    operator = connect(settings, OPERATOR_USER)
    resp = RespClient.like(redis)
    ring = settings.keyring
    core = Intake(ring.operator_secret(), sealer=ring.sealer(), box=ring.box())
    event_log = RedisEventLog(redis, DL, resp=resp, producer_keys=ring.producer_keys())
    gateway = Gateway(core, event_log, redis, resp, DL, ring.producer_keys())
    try:
        await gateway.rebuild()
        await gateway.join_new_senders()
        if work != "decide":
            client = ExchangeClient(operator, OPERATOR, ring.operator_secret(), DL)
            _, sealed = sealed_key(ring, work, "k1")
            await client.operator(
                "register_participant", f"op-{work}", participant=work, name=work, key=sealed
            )
            for start in (">", *["0"] * (DEAD_AFTER - 1)):
                await redis.xreadgroup(GROUP, CONSUMER, {DL.commands(OPERATOR): start})
        await gateway.drain_pending()
        if work == "decide":
            reply = await resp.call(*gateway.read_command(100, block_ms=10))
            await gateway.send(gateway.decide(gateway.inputs_of(reply)))
    finally:
        await resp.aclose()
        await redis.aclose()
        await operator.aclose()


Rows = list[tuple[bytes, dict[bytes, bytes]]]


def _rows(sync: redis.Redis, key: str) -> Rows:
    return sync.xrange(key)  # type: ignore[return-value]


def _registered(sync: redis.Redis) -> list[str]:
    rows = _rows(sync, DL.log)
    entries = [decode_stream_entry(stream_id, fields) for stream_id, fields in rows]
    return [msgspec.msgpack.decode(entry.body)["participant"] for entry in entries]


def _greenex(setup: Setup, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["dead-letters", *args], env=setup.env)
    return result.exit_code, result.stdout, result.stderr


def _only_id(setup: Setup) -> str:
    code, out, _ = _greenex(setup, "list")
    assert code == 0, out
    (line,) = out.splitlines()
    return line.split()[0]


def test_list_show_and_redrive_a_dead_letter_which_intake_then_decides(setup: Setup) -> None:
    """The runbook: `list` shows one line for the dead letter, `show` the whole command, `redrive` puts
    it back on its sender's stream as a new entry and removes it; intake's next read decides it."""
    assert _greenex(setup, "list") == (0, "no dead letters\n", "")
    asyncio.run(_intake(setup.settings, "acme"))
    assert _registered(setup.sync) == []
    code, out, _ = _greenex(setup, "list")
    assert code == 0
    assert re.fullmatch(
        rf"\d+-\d+  sender=operator  input=\d+-\d+  deliveries={DEAD_AFTER}  age=\d+s  "
        r"operator register_participant op-acme\n", out
    ), out  # fmt: skip
    letter_id = out.split()[0]
    ((input_id, fields),) = _rows(setup.sync, DL.commands(OPERATOR))
    code, out, _ = _greenex(setup, "show", letter_id)
    assert code == 0
    assert out.splitlines()[:4] == [f"dead letter  {letter_id}", "sender       operator",
                                    f"input id     {input_id.decode()} on {DL.commands(OPERATOR)}",
                                    f"deliveries   {DEAD_AFTER}"]  # fmt: skip
    assert out.splitlines()[5] == f"data         {fields[b'data'].decode()}"

    code, out, err = _greenex(setup, "redrive", letter_id)
    assert (code, err) == (0, "")
    assert out.startswith(f"re-driven {letter_id}: operator's input {input_id.decode()} is back on ")
    stream = _rows(setup.sync, DL.commands(OPERATOR))
    assert [f for _, f in stream] == [fields, fields]  # the same command again, as a new entry
    assert _greenex(setup, "list") == (0, "no dead letters\n", "")
    asyncio.run(_intake(setup.settings, "decide"))
    assert _registered(setup.sync) == ["acme"]


def test_drop_deletes_the_dead_letter_and_says_what_it_was(setup: Setup) -> None:
    """`drop` removes the dead letter for good, as the operator's user; its command is never decided."""
    asyncio.run(_intake(setup.settings, "bolt"))
    letter_id = _only_id(setup)
    code, out, err = _greenex(setup, "drop", letter_id)
    assert (code, err) == (0, "")
    assert re.fullmatch(rf"dropped {letter_id}: operator's input \d+-\d+ \({DEAD_AFTER} deliveries\), "
                        r"never decided\n", out), out  # fmt: skip
    assert setup.sync.xlen(DL.dead_letters) == 0
    asyncio.run(_intake(setup.settings, "decide"))
    assert _registered(setup.sync) == []


def test_a_redrive_redis_refuses_keeps_the_dead_letter(setup: Setup) -> None:
    """A sender that blocked its own stream (an XADD with the largest id) cannot take the command back:
    the re-drive fails in one line, exit 1, and the dead letter is still there."""
    asyncio.run(_intake(setup.settings, "cole"))
    letter_id = _only_id(setup)
    setup.sync.xadd(DL.commands(OPERATOR), {"data": "{}"}, id="18446744073709551615-18446744073709551615")
    code, out, err = _greenex(setup, "redrive", letter_id)
    assert (code, out) == (1, "")
    assert err.startswith("error: Redis refused the re-drive (")
    assert err.endswith("); the dead letter is kept\n")
    assert _only_id(setup) == letter_id


@pytest.mark.parametrize("command", ["show", "drop", "redrive"])
@pytest.mark.parametrize("letter_id", ["1-0", "not-an-id"])
def test_an_unknown_id_is_one_line_and_exit_1(setup: Setup, command: str, letter_id: str) -> None:
    """An id that is no dead letter (or no id at all): one line on stderr with a hint, exit 1."""
    code, out, err = _greenex(setup, command, letter_id)
    assert (code, out) == (1, "")
    assert err.startswith("error: ")
    assert err.endswith("`greenex dead-letters list` shows them\n")
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", [["list"], ["redrive", "1-0"]])
def test_redis_down_is_one_line_and_exit_1(setup: Setup, command: list[str]) -> None:
    """No Redis at the URL: one line naming it, exit 1 (an operational failure), no traceback."""
    env = {**setup.env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    result = runner.invoke(app, ["dead-letters", *command], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the exchange at redis://127.0.0.1:1/0: ")
    assert result.stderr.count("\n") == 1
