"""The trust boundary on a real Redis with ACLs on: what a participant's Redis user is refused (NOPERM),
what it cannot disturb, what no reader of the log can find, and who may write the log."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, RedisError, ResponseError

from services.cli.local import local_exchange, service_env
from services.cli.provision import ACL_FILE, init_keys
from services.cli.supervisor import ROOT, Supervisor
from services.system import SYSTEM
from shared.client import ExchangeClient
from shared.config import ADMIN
from shared.domain.codec import encode_event
from shared.domain.ledger import CashDeposited
from shared.eventlog.archive import export_log
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import Content, Entry, NewEntry
from shared.eventlog.redis_log import RedisEventLog
from shared.keyring import files_of
from shared.keys import Keys
from tests.integration.exchange import Exchange, exchange_settings
from tests.redis_server import RedisServer
from tests.support import eventually, new_entries

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MAX_ID = "18446744073709551615-18446744073709551615"
Attempt = Callable[[Redis, Keys], Awaitable[Any]]
ME, OTHER = "alice-acl", "bob-acl"


def _raw(redis: Redis, *args: str) -> Awaitable[Any]:
    return redis.execute_command(*args)  # type: ignore[no-untyped-call]


# One class of forbidden act per case, as participant ME: (name, the attempt).
FORBIDDEN: list[tuple[str, Attempt]] = [
    ("read the log", lambda r, k: r.xrange(k.log)),
    ("read the log with XREAD", lambda r, k: r.xread({k.log: "0"})),
    ("read another's reports", lambda r, k: r.xrange(k.reports(OTHER))),
    ("read another's commands", lambda r, k: r.xrange(k.commands(OTHER))),
    ("read its own command stream", lambda r, k: r.xrange(k.commands(ME))),
    ("write the log", lambda r, k: r.xadd(k.log, {"t": "CashDeposited"})),
    ("write another's reports", lambda r, k: r.xadd(k.reports(OTHER), {"data": "{}"})),
    ("write another's commands", lambda r, k: r.xadd(k.commands(OTHER), {"data": "{}"})),
    ("write the positions", lambda r, k: r.hset(k.positions, "intake", "I9")),
    ("write a snapshot", lambda r, k: r.lpush(k.snapshots("settlement"), b"x")),
    ("write the digests", lambda r, k: r.hset(k.digests, "settlement", "1:x")),
    ("write a depth view", lambda r, k: r.set(k.depth("X"), "{}")),
    ("read the dead letters", lambda r, k: r.xrange(k.dead_letters)),
    ("write the dead letters", lambda r, k: r.xadd(k.dead_letters, {"data": "{}"})),
    ("drop a dead letter", lambda r, k: r.xdel(k.dead_letters, "1-0")),
    ("DEL", lambda r, k: r.delete(k.commands(ME))),
    ("XTRIM", lambda r, k: r.xtrim(k.commands(ME), maxlen=0)),
    ("XSETID", lambda r, k: _raw(r, "XSETID", k.commands(ME), "1-1")),
    ("XGROUP", lambda r, k: r.xgroup_destroy(k.commands(ME), "intake")),
    ("XDEL", lambda r, k: r.xdel(k.commands(ME), "1-0")),
    ("EVAL", lambda r, k: r.eval("return 1", 0)),
    ("SCRIPT", lambda r, k: r.script_flush()),
    ("FUNCTION", lambda r, k: _raw(r, "FUNCTION", "LIST")),
    ("FLUSHALL", lambda r, k: r.flushall()),
    ("CONFIG", lambda r, k: r.config_get("*")),
    ("KEYS", lambda r, k: r.keys("*")),
    ("SCAN", lambda r, k: r.scan(0)),
    ("CLIENT LIST", lambda r, k: r.client_list()),
    ("ACL", lambda r, k: r.acl_list()),
    ("PUBLISH", lambda r, k: r.publish("anything", "x")),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clients(exchange: Exchange) -> dict[str, ExchangeClient]:
    """Two participants of the module's exchange, each logged in as its own Redis user."""
    alice = await exchange.venue.onboard(ME, "Alice")
    bob = await exchange.venue.onboard(OTHER, "Bob")
    return {p.participant: exchange.venue.client(p.participant) for p in (alice, bob)}


@pytest.mark.parametrize(("what", "attempt"), FORBIDDEN, ids=[name for name, _ in FORBIDDEN])
async def test_a_participant_is_refused(
    what: str, attempt: Attempt, exchange: Exchange, clients: dict[str, ExchangeClient]
) -> None:
    """Each forbidden act of a participant's Redis user is refused by Redis itself (NOPERM)."""
    with pytest.raises(NoPermissionError):
        await attempt(clients[ME].redis, exchange.settings.keys)


# What a stolen *service* password must not do either (as matching): destroy the log or its
# positions, which SET, PEXPIRE or DEL would, or take another process's lease.
SERVICE_FORBIDDEN: list[tuple[str, Attempt]] = [
    ("SET the log", lambda r, k: r.set(k.log, "x")),
    ("PEXPIRE the log", lambda r, k: r.pexpire(k.log, 1)),
    ("DEL the log", lambda r, k: r.delete(k.log)),
    ("SET the positions", lambda r, k: r.set(k.positions, "x")),
    ("take another's lease", lambda r, k: r.set(k.lease("intake"), "x")),
    ("a script that SETs the log", lambda r, k: r.eval("return redis.call('SET', KEYS[1], 'x')", 1, k.log)),
    ("XTRIM the log", lambda r, k: r.xtrim(k.log, maxlen=0)),
]


@pytest.mark.parametrize(
    ("what", "attempt"), SERVICE_FORBIDDEN, ids=[name for name, _ in SERVICE_FORBIDDEN]
)
async def test_a_service_user_cannot_destroy_the_log(what: str, attempt: Attempt, exchange: Exchange) -> None:
    """A service may append (through the script) but never overwrite, expire or trim: NOPERM (inside a
    script Redis words it "can't access at least one of the keys")."""
    matching = exchange.venue.redis("matching")
    with pytest.raises(ResponseError, match=r"NOPERM|no permissions|can't access"):
        await attempt(matching, exchange.settings.keys)


async def test_debug_is_refused_by_the_acl_too(
    exchange: Exchange, clients: dict[str, ExchangeClient]
) -> None:
    """DEBUG is off in Redis's own config; ACL DRYRUN shows the participant's rules refuse it as well."""
    verdict = await _raw(exchange.redis, "ACL", "DRYRUN", ME, "DEBUG", "SLEEP", "0")
    assert b"no permissions to run the 'debug' command" in verdict


async def test_a_participant_may_do_what_its_role_needs(
    exchange: Exchange, clients: dict[str, ExchangeClient]
) -> None:
    """The same user writes its own commands, reads its own reports and the public market data."""
    alice = clients[ME]
    assert await alice.redis.xadd(alice.in_key, {"data": "{}"})
    assert await alice.redis.xrange(alice.out_key) is not None
    assert await alice.redis.xrange(exchange.settings.keys.trades) is not None
    assert await alice.redis.get(exchange.settings.keys.depth("NONE")) is None


async def test_the_operator_sees_how_far_intake_read_a_stream_never_what_is_in_it(
    exchange: Exchange, clients: dict[str, ExchangeClient]
) -> None:
    operator = exchange.venue.operator.redis
    alice_in = exchange.settings.keys.commands(ME)
    async def joined() -> bool:  # intake joined her stream: its group shows
        return bool(await operator.xinfo_groups(alice_in))

    await eventually(joined, timeout=30)  # the module's first test: the exchange may still be starting
    with pytest.raises(NoPermissionError):
        await operator.xrange(alice_in)
    with pytest.raises(NoPermissionError):
        await operator.xadd(exchange.settings.keys.log, {"t": "x"})


async def test_the_operator_reads_and_drops_dead_letters_and_deletes_nothing_else(exchange: Exchange) -> None:
    """XDEL is the operator's on the dead-letter stream alone; it never writes one (only intake does),
    nor any sender's stream (a re-drive runs as admin)."""
    operator, keys = exchange.venue.operator.redis, exchange.settings.keys
    assert await operator.xrange(keys.dead_letters) is not None
    assert await operator.xdel(keys.dead_letters, "1-0") == 0
    forbidden: list[Attempt] = [
        lambda r, k: r.xdel(k.log, "1-0"),
        lambda r, k: r.xdel(k.commands("operator"), "1-0"),
        lambda r, k: r.xadd(k.dead_letters, {"data": "{}"}),
        lambda r, k: r.xadd(k.commands(ME), {"data": "{}"}),
    ]
    for attempt in forbidden:
        with pytest.raises(NoPermissionError):
            await attempt(operator, keys)


async def test_the_largest_stream_id_blocks_only_its_author(
    exchange: Exchange, clients: dict[str, ExchangeClient]
) -> None:
    """Mallory XADDs with the largest possible id: her own later XADDs fail; Bob trades on."""
    sym = await exchange.instrument()
    mallory = await exchange.participant("mallory")
    bob = await exchange.participant("bobby", credits={sym: (1, 100)})
    await mallory.redis.xadd(mallory.in_key, {"data": "{}"}, id=MAX_ID)
    with pytest.raises(ResponseError):
        await mallory.send("new_order", client_order_id="m1", instrument=sym, side="buy", order_type="limit",
                           price="58.00", quantity=1)  # fmt: skip
    await bob.send("new_order", client_order_id="b1", instrument=sym, side="sell", order_type="limit",
                   price="58.00", quantity=1)  # fmt: skip
    got = await exchange.reports_until(bob, lambda r: any(x.get("exec_type") == "new" for x in r))
    assert [r["client_order_id"] for r in got if r.get("exec_type") == "new"] == ["b1"]


async def test_no_secret_is_anywhere_a_reader_of_the_log_can_see(
    exchange: Exchange, clients: dict[str, ExchangeClient], tmp_path: Path
) -> None:
    """After registrations, a rotation and trading: no participant's signing key or Redis password, and
    not the operator's key, is in the log, in any command or report stream, or in an exported archive."""
    sym = await exchange.instrument()
    trader = await exchange.participant("trader", credits={sym: (1, 50)})
    await trader.send("new_order", client_order_id="t1", instrument=sym, side="sell", order_type="limit",
                      price="58.00", quantity=5)  # fmt: skip
    new_key = await trader.rotate_key("rot-1", exchange.venue.ring.box_public())
    await exchange.reports_until(trader, lambda r: any(x["type"] == "key" for x in r))
    await exchange.drained()
    secrets = [c.signing_key for c in exchange.venue.credentials.values()]
    secrets += [c.redis_password for c in exchange.venue.credentials.values()]
    secrets += [new_key, exchange.venue.ring.operator_secret()]
    stored = b""
    async for key in exchange.redis.scan_iter(exchange.settings.keys.everything):
        if await exchange.redis.type(key) == b"stream":
            rows: list[tuple[bytes, dict[bytes, bytes]]] = await exchange.redis.xrange(key)  # type: ignore[assignment]
            stored += b"".join(value for _, fields in rows for value in fields.values())
    archive = tmp_path / "log.grnxlog"
    await export_log(exchange.log, archive)
    stored += archive.read_bytes()
    assert len(secrets) >= 5
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret.encode().hex().encode() not in stored


async def test_the_services_refuse_to_start_without_a_real_operator_key(tmp_path: Path) -> None:
    """A missing operator key, or a well-known one, and intake says so in one line and exits."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for content in (None, "greenex-dev-operator"):
        if content is not None:
            (keys / "operator.secret").write_text(content)
            (keys / "operator.secret").chmod(0o600)
        env = {**os.environ, "GREENEX_KEYS_DIR": str(keys), "REDIS_URL": "redis://127.0.0.1:1/0"}
        command = [sys.executable, "-m", "services", "intake"]
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=30, env=env, check=False
        )
        assert done.returncode != 0
        assert done.stderr.strip().splitlines()[-1].startswith("intake: refusing to start:"), done.stderr
        assert "operator.secret" in done.stderr


async def test_each_service_runs_with_only_the_files_a_deployment_gives_it(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """deploy/docker-compose.yml mounts each service only `files_of` it: with a key folder holding just
    those, every process of the map starts and follows the log (its consumer group, or its digest)."""
    keys_dir = tmp_path / "keys"
    server = redis_server_factory(extra_args=("--aclfile", str(keys_dir / ACL_FILE)))
    settings = exchange_settings(server.url, "mounts", keys_dir)
    init_keys(settings, SYSTEM)
    server.start()
    procs = []
    for process in SYSTEM.processes:
        own = tmp_path / f"keys-{process.name}"
        own.mkdir(mode=0o700)
        for name in files_of(process.name):
            shutil.copy2(keys_dir / name, own / name)
        env = {**os.environ, **service_env(settings), "GREENEX_KEYS_DIR": str(own)}
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services", process.name, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        ))  # fmt: skip
    try:
        await asyncio.sleep(4)
        died = {p.name: proc.returncode for p, proc in zip(SYSTEM.processes, procs, strict=True)
                if proc.returncode is not None}  # fmt: skip
        assert died == {}
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()


class _Copier(ProducerKeys):
    """What a writer without the log key can still do: append the content of a genuine entry, its
    producer's tag and all, again."""

    def __init__(self, genuine: Entry) -> None:
        super().__init__(b"\x07" * 32)
        self.genuine = genuine

    def content(self, new: NewEntry, producer: str, logged_ns: int) -> Content:
        return self.genuine.content()


@pytest.mark.parametrize(
    ("attack", "named"),
    [("forged", "not written by 'intake'"), ("copied", "does not come after operator's previous entry")],
)
async def test_an_entry_written_without_the_producers_key_is_named_and_refused(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path, attack: str, named: str
) -> None:
    """With the matching service's own Redis password (a stolen one) but not the log key, an attacker
    appends a CashDeposited, either tagged with a key of its own (forged) or a byte-for-byte copy of
    the genuine one, tag and all (copied): `log verify` and `replay` name its seq, every process with a
    core that folds deposits stops on it instead of folding it, and the checkpoint signer stops before
    signing it (each says so in its log)."""
    keys_dir = tmp_path / "keys"
    server = redis_server_factory(extra_args=("--aclfile", str(keys_dir / ACL_FILE)))
    settings = exchange_settings(server.url, "forge", keys_dir)
    init_keys(settings, SYSTEM)
    server.start()
    admin = Redis.from_url(server.url, username=ADMIN, password=settings.keyring.redis_password(ADMIN))
    exchange = Exchange(admin, settings)
    log_dir = tmp_path / "logs"
    exchange.supervisor = Supervisor(env=service_env(settings, GREENEX_LOG_LEVEL="WARNING"), log_dir=log_dir)
    await exchange.supervisor.start()
    try:
        alice = await exchange.participant("alice", cash="100.00")
        await exchange.drained()
        password = settings.keyring.redis_password("matching")
        stolen = Redis.from_url(server.url, username="matching", password=password)
        genuine = next(e for e in await exchange.log.read(0, 1000) if e.type == "CashDeposited")
        keys = ProducerKeys(b"\x07" * 32) if attack == "forged" else _Copier(genuine)
        forger = RedisEventLog(stolen, settings.keys, producer_keys=keys)
        deposit = encode_event(CashDeposited(participant=alice.participant, amount=10**11))
        entry = NewEntry(
            event_id="x", causation="in:operator:1-0", type="CashDeposited", event_ns=1, body=deposit
        )
        (forged,) = await forger.append("intake", [entry])
        await stolen.aclose()
        env = {"REDIS_URL": server.url, "GREENEX_PREFIX": settings.prefix, "GREENEX_KEYS_DIR": str(keys_dir)}
        code, output = await _greenex(env, "log", "verify")
        assert code == 1
        assert output.startswith(f"BAD seq={forged.seq}: "), output
        assert named in output
        code, output = await _greenex(env, "replay")
        assert code == 1
        assert f"BAD seq={forged.seq}: " in output
        assert named in output
        code, output = await _greenex(env, "balances", alice.participant)  # the operator's view too
        assert code == 1, output
        assert f"seq={forged.seq}" in output

        folds = {c.name for c in SYSTEM.cores if "CashDeposited" in c.make().inputs}
        folding = {p.name for p in SYSTEM.processes if folds & {c.name for c in p.cores}}
        assert {"verification", "settlement"} <= folding

        def refused_by_all() -> bool:  # each stops on the forged entry
            return all(named in (log_dir / f"{name}.log").read_text() for name in {*folding, "checkpoint"})

        await eventually(refused_by_all, timeout=15)
    finally:
        await exchange.stop()
        await admin.aclose()


async def _greenex(env: dict[str, str], *args: str) -> tuple[int, str]:
    """The greenex command in its own process (as an operator runs it), with its exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli.main", *args, cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await proc.communicate()
    return proc.returncode or 0, output.decode()


async def test_the_default_user_is_locked_and_the_log_survives_a_restart(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """The deployed ACL file: anonymous clients are refused (NOAUTH), and a restart from the AOF keeps
    every entry the append script wrote (Redis 7.0 replays script effects as the default user)."""
    keys_dir = tmp_path / "keys"
    server = redis_server_factory(appendonly=True, extra_args=("--aclfile", str(keys_dir / ACL_FILE)))
    settings = exchange_settings(server.url, "lock", keys_dir)
    ring = init_keys(settings, SYSTEM)
    server.start()
    anonymous = Redis.from_url(server.url)
    with pytest.raises(RedisError, match=r"NOAUTH|authenticated"):
        await anonymous.ping()
    await anonymous.aclose()
    intake = Redis.from_url(server.url, username="intake", password=ring.redis_password("intake"))
    log = RedisEventLog(intake, settings.keys, producer_keys=ring.producer_keys())
    await log.append("intake", new_entries(5), position="I1")
    await intake.aclose()
    server.stop()
    server.start()
    intake = Redis.from_url(server.url, username="intake", password=ring.redis_password("intake"))
    try:
        assert [e.seq for e in await RedisEventLog(intake, settings.keys).read(0)] == [1, 2, 3, 4, 5]
    finally:
        await intake.aclose()


async def test_acl_apply_provisions_a_redis_you_run_and_keeps_the_admin_password_out_of_argv(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """The runbook for a Redis of your own: `acl apply --admin-url` on a fresh server (its default user
    has ACL rights) creates every role's user and locks the default user; run again later, it logs in
    as admin with the password from GREENEX_ADMIN_PASSWORD (the URL carries none)."""
    server = redis_server_factory()
    server.start()
    keys_dir = tmp_path / "keys"
    settings = exchange_settings(server.url, "own", keys_dir)
    ring = init_keys(settings, SYSTEM)
    env = {"GREENEX_KEYS_DIR": str(keys_dir), "GREENEX_PREFIX": settings.prefix}
    code, output = await _greenex(env, "acl", "apply", "--admin-url", server.url)
    assert code == 0, output
    anonymous = Redis.from_url(server.url)
    with pytest.raises(RedisError, match=r"NOAUTH|WRONGPASS|authenticated"):
        await anonymous.ping()
    await anonymous.aclose()
    admin_env = {**env, "GREENEX_ADMIN_PASSWORD": ring.redis_password(ADMIN)}
    code, output = await _greenex(admin_env, "acl", "apply", "--admin-url", server.url, "--admin-user", ADMIN)
    assert code == 0, output
    intake = Redis.from_url(server.url, username="intake", password=ring.redis_password("intake"))
    try:
        assert await intake.ping()
    finally:
        await intake.aclose()
    code, output = await _greenex(env, "acl", "apply", "--admin-url", server.url, "--admin-user", ADMIN)
    assert code == 1
    assert output.startswith("error:"), output


async def test_provisioning_a_running_redis_that_already_has_the_rings_users(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """What the load test does to the Redis it started with the ring's ACL file: provisioning again goes
    through the ring's admin (the default user is locked there) and changes nobody's password."""
    keys_dir = tmp_path / "keys"
    server = redis_server_factory(extra_args=("--aclfile", str(keys_dir / ACL_FILE)))
    settings = exchange_settings(server.url, "again", keys_dir)
    ring = init_keys(settings, SYSTEM)
    server.start()
    async with local_exchange(settings, tmp_path / "data", start=False, provision=True):
        intake = Redis.from_url(server.url, username="intake", password=ring.redis_password("intake"))
        try:
            assert await intake.ping()
        finally:
            await intake.aclose()
        anonymous = Redis.from_url(server.url)
        with pytest.raises(RedisError, match=r"NOAUTH|authenticated"):
            await anonymous.ping()
        await anonymous.aclose()
