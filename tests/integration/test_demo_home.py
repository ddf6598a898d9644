"""`greenex demo` never wipes an exchange without --fresh, and never one that is running."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from services.cli.exchange import DemoKept, clear_demo_home

pytestmark = pytest.mark.integration


async def test_an_earlier_demo_is_kept_without_fresh_and_replaced_with_it(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    await clear_demo_home(home, fresh=False)  # nothing there: nothing to keep
    (home / "redis").mkdir(parents=True)
    (home / "redis" / "appendonly.aof").write_text("the last demo's log")
    with pytest.raises(DemoKept, match="--fresh"):
        await clear_demo_home(home, fresh=False)
    assert (home / "redis" / "appendonly.aof").exists()
    await clear_demo_home(home, fresh=True)
    assert not home.exists()


async def test_a_running_demo_is_never_wiped(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    (home / "redis").mkdir(parents=True)
    redis_server = shutil.which("redis-server")
    assert redis_server is not None
    server = await asyncio.create_subprocess_exec(
        redis_server, "--port", "0", "--unixsocket", str(home / "redis" / "redis.sock"), "--save", "",
        "--appendonly", "no", "--dir", str(home), stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            if (home / "redis" / "redis.sock").exists():
                break
            await asyncio.sleep(0.05)
        with pytest.raises(DemoKept, match="running"):
            await clear_demo_home(home, fresh=True)
        assert home.is_dir()
    finally:
        server.terminate()
        await server.wait()
