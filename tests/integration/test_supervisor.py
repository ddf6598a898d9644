"""The supervisor behind `greenex up`: backoff, a crash-loop limit, a line per event, its Redis restarted."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, RedisError

from services.cli.local import local_exchange, private_settings
from services.cli.supervisor import RestartPolicy, Supervisor
from shared.config import ADMIN, connect
from tests.support import eventually

pytestmark = pytest.mark.integration


def test_the_backoff_doubles_up_to_its_ceiling() -> None:
    policy = RestartPolicy(first_delay_s=0.2, max_delay_s=1.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]


async def test_a_crash_looping_service_is_restarted_with_backoff_then_given_up(tmp_path: Path) -> None:
    """A service that cannot start (its keys are missing) exits at once every time: restarted after
    growing waits, each exit told in one line, then left down once it crash-loops."""
    lines: list[str] = []
    empty = tmp_path / "no-keys"
    empty.mkdir()
    supervisor = Supervisor(
        env={"GREENEX_KEYS_DIR": str(empty), "REDIS_URL": "redis://127.0.0.1:1/0"},
        services=("intake",),
        log_dir=tmp_path / "logs",
        policy=RestartPolicy(first_delay_s=0.1, crash_loop=3, window_s=60),
        notify=lines.append,
    )
    await supervisor.start()
    watcher = asyncio.create_task(supervisor.watch())
    try:
        await asyncio.wait_for(supervisor.given_up.wait(), timeout=60)
    finally:
        await supervisor.stop()
        watcher.cancel()
    assert supervisor.gave_up_on == "intake"
    log = tmp_path / "logs" / "intake.log"
    assert lines[0] == f"intake exited with code 1; restarting in 0.1 s; see {log}"
    assert lines[1].startswith("intake exited with code 1; restarting in 0.2 s")
    assert lines[2].startswith("intake exited 3 times in 60 s (last code 1): not restarting it")
    assert len(lines) == 3
    assert "refusing to start" in log.read_text()


async def test_the_private_redis_is_restarted_from_its_aof(tmp_path: Path) -> None:
    """The Redis `greenex up` started comes back if it dies (from its AOF: the log is still there)."""
    lines: list[str] = []
    settings = private_settings(tmp_path / "home")
    async with local_exchange(settings, tmp_path / "home" / "redis", start=False, notify=lines.append) as sup:
        password = settings.keyring.redis_password(ADMIN)
        admin = Redis.from_url(settings.redis_url, username=ADMIN, password=password)
        try:
            await admin.xadd("greenex:probe", {"k": "v"})
            first = sup.redis_pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await eventually(lambda: sup.redis_pid not in (None, first), timeout=30)
            await admin.aclose()
            admin = Redis.from_url(settings.redis_url, username=ADMIN, password=password)
            assert await admin.xlen("greenex:probe") == 1
            assert lines == [f"Redis (pid {first}) exited with code -9; restarting it"]
        finally:
            await admin.aclose()


async def test_a_home_grown_to_two_partitions_gets_the_new_partitions_users(tmp_path: Path) -> None:
    """`greenex up --partitions 2` on a home whose Redis and ACL file were made for one partition: the
    new partition's users are made and provisioned through the ring's admin, and the default user stays
    locked."""
    home = tmp_path / "home"
    async with local_exchange(private_settings(home), home / "redis", start=False):
        pass  # made for one partition: key ring, ACL file, Redis data
    settings = private_settings(home, partitions=2)
    async with local_exchange(settings, home / "redis", start=False):
        grown = connect(settings.in_partition(2), settings.in_partition(2).user("intake"))
        default = Redis.from_url(settings.redis_url)
        try:
            assert await grown.xrange(settings.in_partition(2).keys.log, count=1) == []
            with pytest.raises(NoPermissionError):
                await grown.xrange(settings.keys.log, count=1)
            with pytest.raises(RedisError, match=r"NOAUTH|authenticated"):
                await default.ping()
        finally:
            await grown.aclose()
            await default.aclose()
