"""Index streams: the append script's copy of each entry of an indexed type, under the entry's own seq
(what another partition's transfers process follows instead of the whole log), on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import Bells, RedisEventLog
from shared.keys import Keys
from shared.resp import RespClient
from tests.support import new_entries

pytestmark = pytest.mark.integration

KEYS = Keys("ix")
INDEXED = "CashTransferredOut"


@pytest.fixture
async def resp(redis_client: Redis) -> AsyncIterator[RespClient]:
    client = RespClient.like(redis_client)
    yield client
    await client.aclose()


def _writer(redis: Redis, resp: RespClient, reader: str | None = None) -> RedisEventLog:
    bells = Bells(KEYS, {"w": ["InstrumentHalted"]}, indexed=[INDEXED])
    return RedisEventLog(redis, KEYS, resp=resp, bells=bells, reader=reader, producer_keys=IN_MEMORY_KEYS)


async def test_the_index_holds_each_entry_of_its_type_under_its_seq(
    redis_client: Redis, resp: RespClient
) -> None:
    """Every way of appending (alone, with a follow, as a command in a write of the caller's) copies the
    indexed entries and only those; a reader of the index sees the very entries the log holds."""
    writer = _writer(redis_client, resp, reader="w")
    await writer.append("w", [*new_entries(2), *new_entries(1, start=3, tag="d", kind=INDEXED)], position="a")
    await writer.follow(0, block_ms=10)  # caught up: the next append goes with the wait on its bell
    await writer.append_then_follow(
        "w", [*new_entries(1, start=4, tag="d", kind=INDEXED), *new_entries(1, start=5)],
        position="b", after_seq=3, limit=10, block_ms=10,
    )  # fmt: skip
    command, sealed = writer.append_command("w", new_entries(1, start=6, tag="d", kind=INDEXED), position="c")
    sealed((await resp.execute([command]))[0])
    logged = await writer.read(0, 100)
    assert [e.type for e in logged] == ["InstrumentHalted"] * 2 + [INDEXED] * 2 + [
        "InstrumentHalted",
        INDEXED,
    ]

    index = RedisEventLog(redis_client, KEYS, resp=resp, stream=KEYS.index(INDEXED))
    assert await index.read(0, 100) == [e for e in logged if e.type == INDEXED]
    assert [e.seq for e in await index.follow(4, block_ms=10)] == [6]
    waiting = asyncio.create_task(index.follow(6, block_ms=3000))
    await asyncio.sleep(0.1)
    await writer.append("w", new_entries(1, start=7))  # not indexed: the reader of the index sleeps on
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await writer.append("w", new_entries(1, start=8, tag="d", kind=INDEXED))
    assert [e.seq for e in await asyncio.wait_for(waiting, 2)] == [8]


async def test_an_index_ahead_of_the_log_refuses_the_append_and_nothing_is_written(
    redis_client: Redis, resp: RespClient
) -> None:
    """Redis keeps a script's writes when a later call fails, so the index is checked before anything is
    written: a log entry without its copy (a debit no partition would ever credit) never happens."""
    writer = _writer(redis_client, resp)
    await writer.append("w", new_entries(1), position="a")
    await redis_client.xadd(KEYS.index(INDEXED), {"x": "1"}, id="100-0")  # damaged: ahead of the log
    with pytest.raises(LogCorrupt, match="ahead of the log"):
        await writer.append("w", new_entries(1, start=2, tag="d", kind=INDEXED), position="b")
    assert await redis_client.xlen(KEYS.log) == 1
    assert await writer.position("w") == "a"
    assert await redis_client.xlen(KEYS.index(INDEXED)) == 1
    await writer.append("w", new_entries(1, start=3), position="c")  # entries not indexed still land
    assert await redis_client.xlen(KEYS.log) == 2


async def test_an_import_fills_the_index_as_appends_do(redis_client: Redis, resp: RespClient) -> None:
    """A log restored from an archive into an empty Redis gets its index copies in the same MULTI (a
    debit in flight at the backup is then still credited after the restore)."""
    writer = _writer(redis_client, resp)
    await writer.append("w", [*new_entries(1), *new_entries(2, start=2, tag="d", kind=INDEXED)], position="a")
    entries = await writer.read(0, 100)

    restored_keys = Keys("iy")
    bells = Bells(restored_keys, {}, indexed=[INDEXED])
    restored = RedisEventLog(redis_client, restored_keys, bells=bells)
    await restored.import_entries(entries)
    index = RedisEventLog(redis_client, restored_keys, stream=restored_keys.index(INDEXED))
    assert await index.read(0, 100) == [e for e in entries if e.type == INDEXED] != []

    await redis_client.delete(restored_keys.log)  # the log lost, its stale index left behind
    with pytest.raises(LogCorrupt, match="ahead of the log"):
        await restored.import_entries(entries)
    assert await redis_client.xlen(restored_keys.log) == 0


async def test_a_damaged_index_is_rebuilt_from_the_log(redis_client: Redis, resp: RespClient) -> None:
    """A row ahead of the log refuses every append of the index's type; `greenex log reindex` (this)
    rebuilds the index from the log, and appends of the type land again."""
    writer = _writer(redis_client, resp)
    await writer.append("w", [*new_entries(2), *new_entries(2, start=3, tag="d", kind=INDEXED)], position="a")
    await redis_client.xadd(KEYS.index(INDEXED), {"junk": "1"}, id="999-0")
    with pytest.raises(LogCorrupt, match="ahead of the log"):
        await writer.append("w", new_entries(1, start=5, tag="d", kind=INDEXED), position="b")

    assert await writer.rebuild_indexes(page=1) == {KEYS.index(INDEXED): 2}  # paged: one entry a read
    index = RedisEventLog(redis_client, KEYS, resp=resp, stream=KEYS.index(INDEXED))
    assert [e.seq for e in await index.read(0, 100)] == [3, 4]
    await writer.append("w", new_entries(1, start=5, tag="d", kind=INDEXED), position="b")
    assert [e.seq for e in await index.read(0, 100)] == [3, 4, 5]
