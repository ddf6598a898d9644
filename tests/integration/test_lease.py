"""One live copy per process: the lease refuses a second copy at start, fences a stale one's appends,
and lets a restarted copy take over at once from one that was killed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from typer.testing import CliRunner

from services.cli.local import AlreadyRunning, live_copies, local_exchange, service_env
from services.cli.main import app
from services.cli.provision import ACL_FILE, init_keys
from services.cli.supervisor import ROOT
from services.system import SYSTEM
from shared.config import ADMIN
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.lease import LeaseHeld, LeaseLost, keep_lease, new_lease_value, take_lease
from shared.eventlog.redis_log import RedisEventLog
from shared.keys import Keys
from tests.integration.exchange import Exchange, exchange_settings
from tests.redis_server import RedisServer
from tests.support import eventually, new_entries

pytestmark = pytest.mark.integration
KEYS = Keys("lease")


def _dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_a_live_holder_keeps_the_lease_and_a_dead_ones_is_taken_over_at_once(
    redis_client: Redis,
) -> None:
    key = KEYS.lease("matching")
    first = new_lease_value()  # this very process: alive
    await take_lease(redis_client, key, first)
    with pytest.raises(LeaseHeld, match=r"another copy is running \(pid \d+ on "):
        await take_lease(redis_client, key, new_lease_value(), wait_s=0.3)
    assert await redis_client.get(key) == first.encode()
    token, host, _ = first.split(" ")
    killed = f"{token} {host} {_dead_pid()}"  # a copy of this host killed with -9, its lease not lapsed
    await redis_client.set(key, killed, px=60_000)
    started = asyncio.get_running_loop().time()
    successor = new_lease_value()
    await take_lease(redis_client, key, successor, wait_s=10)
    assert asyncio.get_running_loop().time() - started < 1.0  # no waiting out the minute
    assert await redis_client.get(key) == successor.encode()


async def test_appends_carry_the_lease_and_a_fenced_copy_is_refused(redis_client: Redis) -> None:
    """A copy whose lease was taken over (it stalled past it) has its next append refused, nothing
    written; the holder's appends land; renewing a lease that is not ours any more says so."""
    key = KEYS.lease("matching")
    stale, holder = new_lease_value(), new_lease_value()
    await redis_client.set(key, holder)
    fenced = RedisEventLog(redis_client, KEYS, producer_keys=IN_MEMORY_KEYS, lease=(key, stale))
    with pytest.raises(LeaseLost, match="held by"):
        await fenced.append("matching", new_entries(1))
    assert await redis_client.xlen(KEYS.log) == 0
    live = RedisEventLog(redis_client, KEYS, producer_keys=IN_MEMORY_KEYS, lease=(key, holder))
    assert [e.seq for e in await live.append("matching", new_entries(2))] == [1, 2]
    with pytest.raises(LeaseLost):
        await keep_lease(redis_client, key, stale, every_s=0.01)


def _every_process_holds_its_lease(exchange: Exchange) -> None:
    """The fixture's services are spawned, not necessarily started: wait until each holds its lease."""
    with SyncRedis.from_url(exchange.settings.redis_url) as admin:
        deadline = time.monotonic() + 30
        for process in SYSTEM.processes:
            while admin.get(exchange.settings.keys.lease(process.name)) is None:
                assert time.monotonic() < deadline, f"the exchange's {process.name} never took its lease"
                time.sleep(0.1)


def test_a_second_copy_of_a_running_service_refuses_to_start(exchange: Exchange) -> None:
    """With the exchange's matching running, another `python -m services matching` waits out one lease
    period, sees it renewed, and exits in one line naming the live copy."""
    env = {
        **os.environ,
        "REDIS_URL": exchange.settings.redis_url,
        "GREENEX_PREFIX": exchange.settings.prefix,
        "GREENEX_KEYS_DIR": exchange.settings.keys_dir,
        "GREENEX_VENUE": exchange.settings.venue,
    }
    _every_process_holds_its_lease(exchange)
    command = [sys.executable, "-m", "services", "matching"]
    done = subprocess.run(
        command, cwd=Path(ROOT), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("matching: refusing to start: another copy is running (pid "), done.stderr


async def test_up_refuses_to_start_a_second_exchange_on_a_running_one(exchange: Exchange) -> None:
    """`greenex up` (local_exchange) on a Redis where the exchange's processes are alive names them and
    starts nothing."""
    _every_process_holds_its_lease(exchange)
    running = await live_copies(exchange.settings)
    assert sorted(r.split(" ")[0] for r in running) == sorted(p.name for p in SYSTEM.processes)
    with pytest.raises(AlreadyRunning, match=r"is running already: intake \(pid \d+ on "):
        async with local_exchange(exchange.settings, Path("/nonexistent-redis-data")):
            pytest.fail("started beside a running exchange")


async def test_a_service_exits_when_its_supervisor_is_killed(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """kill -9 of the process that started a service (a supervisor) leaves no orphan: the service sees
    itself re-parented, stops cleanly and releases its lease for the next `greenex up`."""
    keys_dir = tmp_path / "keys"
    server = redis_server_factory(extra_args=("--aclfile", str(keys_dir / ACL_FILE)))
    settings = exchange_settings(server.url, "orphan", keys_dir)
    init_keys(settings, SYSTEM)
    server.start()
    env = {**os.environ, **service_env(settings), "GREENEX_EXIT_WITH_PARENT": "1"}
    start = f"{sys.executable} -m services settlement >{tmp_path / 'out.log'} 2>&1 & echo $!; wait"
    parent = subprocess.Popen(
        ["bash", "-c", start],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert parent.stdout is not None
    service = int(parent.stdout.readline())
    redis = Redis.from_url(server.url, username=ADMIN, password=settings.keyring.redis_password(ADMIN))
    try:
        await eventually(lambda: _holds(redis, settings.keys.lease("settlement")), timeout=20)
        parent.kill()  # the supervisor, kill -9
        parent.wait()
        await eventually(lambda: not _running(service), timeout=10)
        assert await redis.get(settings.keys.lease("settlement")) is None  # released on the way out
    finally:
        if _running(service):
            os.kill(service, signal.SIGKILL)
        parent.stdout.close()
        await redis.aclose()


async def _holds(redis: Redis, key: str) -> bool:
    return await redis.get(key) is not None


def _running(pid: int) -> bool:
    """Whether pid is a live process (a zombie waiting for its reaper is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_status_shows_who_runs_what_and_what_needs_attention(exchange: Exchange) -> None:
    """`greenex status` as the operator: every process running with its pid, the log head, and (the
    test's Redis runs without maxmemory) one line that needs attention, exit 1."""
    env = {"REDIS_URL": exchange.settings.redis_url, "GREENEX_PREFIX": exchange.settings.prefix,
           "GREENEX_KEYS_DIR": exchange.settings.keys_dir}  # fmt: skip
    _every_process_holds_its_lease(exchange)
    result = CliRunner().invoke(app, ["status"], env=env)
    assert result.exit_code == 1, result.output
    for process in SYSTEM.processes:
        assert re.search(rf"process {process.name}\s+│ running, pid \d+ on ", result.output), result.output
    assert "needs attention: Redis has no maxmemory" in result.output
    assert result.output.count("needs attention:") == 1
