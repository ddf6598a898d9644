"""The private redis-server that `greenex up/demo/loadtest` start when nothing answers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio import Redis

from services.cli.provision import ACL_FILE, init_keys
from services.cli.supervisor import ensure_redis
from services.system import SYSTEM
from shared.config import ADMIN, Settings
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


async def test_a_server_with_acls_is_used_only_once_loaded_and_with_its_profile(tmp_path: Path) -> None:
    """A locked default user is refused with NOAUTH even while Redis replays its AOF, so with the
    ring's admin login `ensure_redis` waits for a logged-in PING: the first command after it, on a raw
    connection (no client-side retry of LOADING), finds the keys. The durability profile asked for is
    the server's. (On this machine 200k keys load faster than a LOADING reply can be caught here; the
    crash test's restart of a busy server did catch one, through the same NOAUTH blind spot in
    tests/redis_server.py.)"""
    keys = tmp_path / "keys"
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", keys_dir=str(keys))
    ring = init_keys(settings, SYSTEM)
    login = (ADMIN, ring.redis_password(ADMIN))
    data, acl = tmp_path / "data", keys / ACL_FILE
    proc = await ensure_redis(settings.redis_url, data, aclfile=acl, login=login, appendfsync="always")
    assert proc is not None
    client = Redis.from_url(settings.redis_url, username=ADMIN, password=login[1])
    try:
        assert (await client.config_get("appendfsync"))["appendfsync"] == "always"
        await client.mset({f"k{i}": "v" for i in range(200_000)})
    finally:
        await client.aclose()
        proc.terminate()
        await proc.wait()
    proc = await ensure_redis(settings.redis_url, data, aclfile=acl, login=login)
    assert proc is not None
    # A raw connection: redis-py would retry a LOADING reply by itself, which a lean client does not.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(settings.redis_url.split(":")[2][:-2]))
    writer.write(f"AUTH {ADMIN} {login[1]}\r\nEXISTS k199999\r\n".encode())
    replies = (await reader.readline(), await reader.readline())
    writer.close()
    assert replies == (b"+OK\r\n", b":1\r\n")  # not -LOADING: it had loaded
    client = Redis.from_url(settings.redis_url, username=ADMIN, password=login[1])
    try:
        assert (await client.config_get("appendfsync"))["appendfsync"] == "everysec"
    finally:
        await client.aclose()
        proc.terminate()
        await proc.wait()


async def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    """redis-server's own last words (here: an ACL file that is not there) are in the one-line error, not
    lost with its output."""
    port = free_port()
    with pytest.raises(SystemExit) as failed:
        await ensure_redis(f"redis://127.0.0.1:{port}/0", tmp_path / "data", aclfile=tmp_path / "gone.acl",
                           timeout_s=30)  # fmt: skip
    text = str(failed.value)
    assert "did not start" in text
    assert "gone.acl" in text
    assert "redis-server.log" in text
