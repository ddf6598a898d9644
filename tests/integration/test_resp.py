"""The lean Redis client and the log's wake-up bells, against real redis-servers."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from services.cli.supervisor import ensure_redis
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.port import DuplicateAppend
from shared.eventlog.redis_log import NO_BELLS, Bells, RedisEventLog
from shared.keys import Keys
from shared.resp import Command, RespClient
from tests.redis_server import RedisServer
from tests.support import new_entries

pytestmark = pytest.mark.integration


@pytest.fixture
async def resp(redis_client: Redis) -> AsyncIterator[RespClient]:
    client = RespClient.like(redis_client)
    yield client
    await client.aclose()


async def test_pipelined_commands_answer_in_order(resp: RespClient) -> None:
    """One write, replies in command order, with the types hiredis gives (bytes, ints, arrays)."""
    commands: list[Command] = [("SET", "k", "v"), ("INCRBY", "n", 5), ("GET", "k"), ("LRANGE", "none", 0, -1)]
    replies = await resp.execute(commands)
    assert replies == [b"OK", 5, b"v", []]


async def test_error_replies_raise_and_leave_the_connection_usable(resp: RespClient) -> None:
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await resp.execute([("SET", "k", "v"), ("LPUSH", "k", "x")])
    with pytest.raises(ResponseError, match=r"EXECABORT|unknown command"):
        await resp.execute([("MULTI",), ("NOSUCHCOMMAND",), ("EXEC",)])
    assert await resp.call("GET", "k") == b"v"


async def test_selects_the_database_of_the_url(redis_client: Redis, redis_server: str) -> None:
    """A client made like a redis-py client for db 3 writes where that client reads."""
    other = Redis.from_url(redis_server.rsplit("/", 1)[0] + "/3")
    resp = RespClient.like(other)
    try:
        await resp.call("SET", "in-db-3", "yes")
        assert await other.get("in-db-3") == b"yes"
        assert await redis_client.get("in-db-3") is None  # db 0
    finally:
        await resp.aclose()
        await other.aclose()


async def test_a_cancelled_blocking_read_does_not_delay_the_next_call(resp: RespClient) -> None:
    """A blocked connection is closed on cancel, never handed to the next caller."""
    blocked = asyncio.create_task(resp.call("XREAD", "BLOCK", 10_000, "STREAMS", "nothing", "$"))
    await asyncio.sleep(0.05)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert await asyncio.wait_for(resp.call("PING"), 1) == b"PONG"


async def test_a_cancelled_batch_leaves_no_unretrieved_error(resp: RespClient) -> None:
    """Cancelling a caller mid-batch closes its connection; the replies it no longer waits for must not
    surface later as asyncio's "Future exception was never retrieved" (every service logged one at
    shutdown)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        blocked = asyncio.create_task(
            resp.execute([("XREAD", "BLOCK", 10_000, "STREAMS", "nothing", "$"), ("PING",)])
        )
        await asyncio.sleep(0.05)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        await asyncio.sleep(0.05)  # the closed connection's connection_lost runs
        del blocked
        gc.collect()  # an unretrieved exception is reported when its future is collected
        assert reported == []
    finally:
        loop.set_exception_handler(None)


async def test_a_lost_server_raises_connection_error_then_reconnects(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.start()
    resp = RespClient.like(Redis.from_url(server.url))
    try:
        assert await resp.call("PING") == b"PONG"
        server.kill()
        with pytest.raises(RedisConnectionError):
            await resp.call("PING")
        server.start()
        assert await resp.call("PING") == b"PONG"
    finally:
        await resp.aclose()


async def test_a_bell_wakes_its_reader_only_for_the_types_it_reads(
    redis_client: Redis, resp: RespClient
) -> None:
    """Entries of other types do not end the wait; one of its types does, and the read returns
    everything up to it (the skipped types too: the reader's cursor stays gapless)."""
    keys = Keys("b")
    bells = Bells(keys, {"settlement": ["TradeExecuted"]})
    reader = RedisEventLog(
        redis_client, keys, resp=resp, bells=bells, reader="settlement", producer_keys=IN_MEMORY_KEYS
    )
    writer = RedisEventLog(redis_client, keys, resp=resp, bells=bells, producer_keys=IN_MEMORY_KEYS)
    await writer.append("w", new_entries(1))
    assert [e.seq for e in await reader.follow(0, block_ms=1000)] == [1]

    waiter = asyncio.create_task(reader.follow(1, block_ms=5000))
    await writer.append("w", new_entries(2, start=2))  # InstrumentHalted: not read by this reader
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await writer.append("w", new_entries(1, start=4, tag="trade", kind="TradeExecuted"))
    entries = await asyncio.wait_for(waiter, 2)
    assert [e.seq for e in entries] == [2, 3, 4]
    assert await redis_client.xlen(keys.bell("settlement")) == 1  # a bell is a doorbell, not a queue


async def test_a_reader_behind_reads_on_without_waiting_for_a_bell(
    redis_client: Redis, resp: RespClient
) -> None:
    """A backlog is read page after page at once, though only one bell rang for all of it."""
    bells = Bells(Keys("c"), {"r": ["InstrumentHalted"]})
    writer = RedisEventLog(redis_client, Keys("c"), resp=resp, bells=bells, producer_keys=IN_MEMORY_KEYS)
    reader = RedisEventLog(
        redis_client, Keys("c"), resp=resp, bells=bells, reader="r", producer_keys=IN_MEMORY_KEYS
    )
    await writer.append("w", new_entries(30))
    loop = asyncio.get_running_loop()
    started, after, pages = loop.time(), 0, 0
    while after < 30:
        page = await reader.follow(after, limit=10, block_ms=2000)
        after, pages = page[-1].seq, pages + 1
    assert pages == 3
    assert loop.time() - started < 1  # no page waited for the 2 s block


@pytest.mark.parametrize("lean", [False, True])
async def test_follow_sends_its_first_commands_before_the_read(redis_client: Redis, lean: bool) -> None:
    """A reader's writes for the last batch go out with its next read, once, before it waits."""
    resp = RespClient.like(redis_client) if lean else None
    bells = Bells(Keys("f"), {"r": ["InstrumentHalted"]}) if lean else NO_BELLS
    log = RedisEventLog(
        redis_client,
        Keys("f"),
        resp=resp,
        bells=bells,
        reader="r" if lean else None,
        producer_keys=IN_MEMORY_KEYS,
    )
    try:
        await log.append("w", new_entries(2))
        first = [("MULTI",), ("INCR", "f:written"), ("EXEC",)]
        assert [e.seq for e in await log.follow(0, block_ms=500, first=first)] == [1, 2]
        assert await log.follow(2, block_ms=100, first=first) == []  # a time-out sends them once too
        assert await redis_client.get("f:written") == b"2"
        with pytest.raises(ResponseError):
            await log.follow(2, block_ms=100, first=[("MULTI",), ("LPUSH", "f:written", "x"), ("EXEC",)])
    finally:
        if resp is not None:
            await resp.aclose()


class Settled(NamedTuple):
    follower: RedisEventLog  # registered for InstrumentHalted; has read seq 1 and taken in its ring
    other: RedisEventLog  # another writer on the same log


@pytest.fixture(params=[False, True], ids=["redis-py", "lean"])
async def settled(request: pytest.FixtureRequest, redis_client: Redis) -> AsyncIterator[Settled]:
    resp = RespClient.like(redis_client) if request.param else None
    bells = Bells(Keys("g"), {"f": ["InstrumentHalted"]})
    follower = RedisEventLog(
        redis_client, Keys("g"), resp=resp, bells=bells, reader="f", producer_keys=IN_MEMORY_KEYS
    )
    other = RedisEventLog(redis_client, Keys("g"), resp=resp, bells=bells, producer_keys=IN_MEMORY_KEYS)
    await other.append("o", new_entries(1))
    assert [e.seq for e in await follower.follow(0, block_ms=500)] == [1]
    assert await follower.follow(1, block_ms=50) == []  # takes in the ring it already read
    yield Settled(follower, other)
    if resp is not None:
        await resp.aclose()


async def test_append_then_follow_appends_and_reads_in_one_go(settled: Settled) -> None:
    """The happy path: appended, then the wait returns at the next ring with everything since."""
    follower, other = settled
    pending = asyncio.create_task(
        follower.append_then_follow(
            "f", new_entries(2, start=2, kind="OrderVerified"), position="P1",
            after_seq=1, limit=100, block_ms=5000,
        )
    )  # fmt: skip
    await asyncio.sleep(0.2)
    assert not pending.done()  # appended, and waiting for a type it answers
    await other.append("o", new_entries(1, start=4))
    appended, following = await asyncio.wait_for(pending, 2)
    assert [e.seq for e in appended] == [2, 3]
    assert [e.seq for e in following] == [2, 3, 4]  # its own entries too: the cursor stays gapless
    assert await follower.position("f") == "P1"


async def test_append_then_follow_lands_on_a_moved_head(settled: Settled) -> None:
    """Another writer moved the head after the follower's last read: the script seals the append on the
    new head in the same call (no refusal, no retry), and the range after the wait holds both."""
    follower, other = settled
    await other.append("o", new_entries(2, start=2, kind="Unread"))  # rings nobody
    appended, following = await follower.append_then_follow(
        "f", new_entries(1, start=10, kind="OrderVerified"), position="P1",
        after_seq=1, limit=100, block_ms=200,
    )  # fmt: skip
    assert [e.seq for e in appended] == [4]
    assert [e.seq for e in following] == [2, 3, 4]
    assert following[-1] == appended[0]
    assert [e.producer for e in await follower.read(0)] == ["o", "o", "o", "f"]
    with pytest.raises(DuplicateAppend):
        await follower.append_then_follow(
            "f", new_entries(1, start=11, kind="OrderVerified"), position="P1",
            after_seq=4, limit=100, block_ms=100,
        )  # fmt: skip


async def test_append_then_follow_survives_a_flushed_script_cache(
    redis_client: Redis, resp: RespClient
) -> None:
    bells = Bells(Keys("i"), {"f": ["InstrumentHalted"]})
    follower = RedisEventLog(
        redis_client, Keys("i"), resp=resp, bells=bells, reader="f", producer_keys=IN_MEMORY_KEYS
    )
    await follower.append("o", new_entries(1))
    await follower.follow(0, block_ms=100)
    await redis_client.script_flush()
    appended, _ = await follower.append_then_follow(
        "f", new_entries(1, start=2, kind="OrderVerified"), position="P1", after_seq=1, limit=10, block_ms=50
    )
    assert [e.seq for e in appended] == [2]
    assert len(await follower.read(0)) == 2


async def test_ensure_redis_serves_a_unix_socket_url(tmp_path: Path) -> None:
    """`unix://` URLs get a private redis-server on that socket (no TCP port), usable by both clients."""
    url = f"unix://{tmp_path}/not-yet/redis.sock"  # the directory is made too
    proc = await ensure_redis(url, tmp_path / "data")
    assert proc is not None
    client = Redis.from_url(url)
    resp = RespClient.like(client)
    try:
        assert await resp.call("SET", "via", "socket") == b"OK"
        assert await client.get("via") == b"socket"
        assert (await client.config_get("port"))["port"] == "0"
    finally:
        await resp.aclose()
        await client.aclose()
        proc.terminate()
        await proc.wait()


async def test_credentials_are_sent_and_a_wrong_password_raises(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.start()
    admin = Redis.from_url(server.url)
    await admin.config_set("requirepass", "s3cret")  # after start: the harness's readiness PING has none
    await admin.aclose()
    good = RespClient.like(Redis.from_url(server.url.replace("redis://", "redis://:s3cret@")))
    bad = RespClient.like(Redis.from_url(server.url.replace("redis://", "redis://:wrong@")))
    try:
        assert await good.call("PING") == b"PONG"
        with pytest.raises(ResponseError):
            await bad.call("PING")
    finally:
        await good.aclose()
        await bad.aclose()
