"""The private redis-server that `greenex up/demo/loadtest` start when nothing answers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio import Redis

from services.cli.supervisor import ensure_redis
from tests.redis_server import free_port

pytestmark = pytest.mark.integration


async def _restart_and_read(url: str, data: Path, *, fresh: bool) -> bytes | None:
    proc = await ensure_redis(url, data, fresh=fresh)
    assert proc is not None
    client = Redis.from_url(url)
    try:
        return cast(bytes | None, await client.get("kept"))
    finally:
        await client.aclose()
        proc.terminate()
        await proc.wait()


async def test_data_survives_a_restart_unless_fresh_is_asked(tmp_path: Path) -> None:
    """The exchange's Redis keeps its AOF across restarts; the load test's starts empty (`fresh`)."""
    url, data = f"redis://127.0.0.1:{free_port()}/0", tmp_path / "data"
    proc = await ensure_redis(url, data)
    assert proc is not None
    client = Redis.from_url(url)
    await client.set("kept", "yes")
    await client.aclose()
    proc.terminate()
    await proc.wait()
    assert await _restart_and_read(url, data, fresh=False) == b"yes"
    assert await _restart_and_read(url, data, fresh=True) is None


async def test_a_server_that_exits_is_reported_at_once(tmp_path: Path) -> None:
    """A redis-server that cannot start (its port is taken by something that is not Redis) fails the
    call with its exit code as soon as it exits, not after the time-out."""

    async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    port = free_port()
    squatter = await asyncio.start_server(hang_up, "127.0.0.1", port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(SystemExit, match="exit code"):
            await ensure_redis(f"redis://127.0.0.1:{port}/0", tmp_path / "data", timeout_s=60)
    finally:
        squatter.close()
        await squatter.wait_closed()
    assert loop.time() - started < 30
