"""`greenex loadtest`'s run against the real services: every order answered, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from loadtests.live import RunConfig, run_load, run_partitioned
from services.cli.supervisor import ROOT
from shared.keys import Keys

pytestmark = pytest.mark.integration


async def test_a_short_run_answers_every_order_and_leaves_no_keys(redis_server: str) -> None:
    """A small open-loop run through the four real services: all orders answered, match latency
    measured, per-process CPU read; and once the services have stopped (they write a last snapshot and
    digest as they stop) not one key of the run's prefix is left in Redis."""
    redis = Redis.from_url(redis_server)
    try:
        before = {k async for k in redis.scan_iter("{greenex-lt-*")}
        result = await run_load(RunConfig(rate=200, duration_s=None, count=200, redis_url=redis_server))
        summary = result.summary()
        assert (summary["sent"], summary["unanswered"]) == (200, 0)
        assert summary["match_ms"]["count"] > 0
        assert set(summary["cpu_us_per_order"]) >= {"intake", "verification", "matching", "settlement"}
        redis_work = summary["redis_per_order"]  # every order is at least logged by the append script
        assert redis_work["evalsha"]["calls"] >= 1
        assert redis_work["evalsha"]["us"] > 0
        assert redis_work["xadd"]["calls"] >= redis_work["evalsha"]["calls"]  # the script's own XADDs
        assert {k async for k in redis.scan_iter(Keys(result.prefix).everything)} == set()
        assert {k async for k in redis.scan_iter("{greenex-lt-*")} == before
    finally:
        await redis.aclose()


async def test_a_partitioned_run_loads_every_partition_and_leaves_no_keys(redis_server: str) -> None:
    """`--partitions 2`: each partition's processes answer their share, each partition's keys are gone
    after."""
    redis = Redis.from_url(redis_server)
    try:
        before = {k async for k in redis.scan_iter("{greenex-lt-*")}
        results = await run_partitioned(
            RunConfig(rate=200, duration_s=None, count=200, redis_url=redis_server, partitions=2)
        )
        assert [(r.summary()["sent"], r.summary()["unanswered"]) for r in results] == [(100, 0), (100, 0)]
        assert {r.prefix for r in results} == {results[0].prefix}
        assert results[1].book.match.get_total_count() > 0
        assert {"intake@p2", "matching@p2", "transfers@p2"} <= set(results[0].summary()["cpu_cores"])
        assert {k async for k in redis.scan_iter("{greenex-lt-*")} == before
    finally:
        await redis.aclose()


def _processes_of(home: Path) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes started for `home` (it is in their command line or
    environment: the services and their Redis start in sessions of their own, so the tree is no guide)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
                continue
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if str(home) in cmdline or str(home).encode() in environ:
            found.append((int(proc.name), cmdline))
    return found


def test_a_load_test_stopped_with_sigterm_stops_its_services_and_redis(tmp_path: Path) -> None:
    """SIGTERM stops a run as Ctrl-C does (exit 130): its services and its private Redis are stopped on
    the way out (killed with the default handler, the Redis stayed behind)."""
    env = {
        **os.environ,
        "GREENEX_HOME": str(tmp_path / "home"),
        "GREENEX_LOADTEST_HOME": str(tmp_path / "lt"),
    }
    env.pop("REDIS_URL", None)
    command = [
        "loadtest",
        "--rate",
        "50",
        "--duration",
        "120",
        "--no-baseline",
        "--out",
        str(tmp_path / "out"),
    ]
    run = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", *command], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not any("python -m services matching" in c for _, c in _processes_of(tmp_path)):
            assert time.monotonic() < deadline, "the load test's services never started"
            assert run.poll() is None, f"the load test ended early: {run.returncode}"
            time.sleep(0.5)
        assert any("redis-server" in c for _, c in _processes_of(tmp_path))
        time.sleep(3)  # sending
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 130
        deadline = time.monotonic() + 15
        while left := [c for pid, c in _processes_of(tmp_path) if pid != run.pid]:
            assert time.monotonic() < deadline, f"left running: {left}"
            time.sleep(0.5)
    finally:
        if run.poll() is None:
            run.kill()
        for pid, _ in _processes_of(tmp_path):  # whatever a failure left
            os.kill(pid, signal.SIGKILL)
