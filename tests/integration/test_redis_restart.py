"""The log survives a redis-server restart when the server runs with an AOF."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.verify import verify_log
from shared.keys import Keys
from tests.redis_server import RedisServer
from tests.support import new_entries

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("crash", [False, True])
async def test_log_survives_restart(redis_server_factory: Callable[..., RedisServer], crash: bool) -> None:
    """With appendfsync always, even a SIGKILL keeps every acknowledged append."""
    server = redis_server_factory(appendonly=True, extra_args=("--appendfsync", "always"))
    server.start()
    client = Redis.from_url(server.url)
    appended = await RedisEventLog(client, Keys(), producer_keys=IN_MEMORY_KEYS).append(
        "p", new_entries(5), position="L05"
    )
    await client.aclose()
    server.kill() if crash else server.stop()
    server.start()
    client = Redis.from_url(server.url)
    try:
        log = RedisEventLog(client, Keys(), producer_keys=IN_MEMORY_KEYS)
        assert await log.read() == appended
        assert await log.position("p") == "L05"
        assert (await verify_log(log)).count == 5
    finally:
        await client.aclose()
