"""Session fixtures: a private redis-server and a flushed client per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.redis_server import REDIS_MISSING, RedisServer

# Every exchange a test starts runs the web process too: on any free port, so that tests running side by
# side never fight over one (the browser test picks its own).
os.environ.setdefault("GREENEX_WEB_PORT", "0")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a private, non-persistent redis-server shared by the session."""
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.kill()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Make extra servers (e.g. `appendonly=True` for durability tests); all are killed afterwards."""
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    servers: list[RedisServer] = []

    def make(*, appendonly: bool = False, extra_args: tuple[str, ...] = ()) -> RedisServer:
        workdir = tmp_path / f"redis-{len(servers)}"
        workdir.mkdir()
        servers.append(RedisServer(workdir, appendonly=appendonly, extra_args=extra_args))
        return servers[-1]

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
async def redis_client(redis_server: str) -> AsyncIterator[Redis]:
    """A client on the session server, which is flushed first so every test starts empty."""
    client = Redis.from_url(redis_server)
    await client.flushall()
    yield client
    await client.aclose()
