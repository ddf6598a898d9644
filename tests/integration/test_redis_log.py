"""Redis-specific behaviour of the log: stream layout, damaged storage, stale heads, the client."""

from __future__ import annotations

from typing import cast

import msgspec
import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from shared.eventlog.entry import Entry
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import RedisEventLog, encode_entry
from shared.eventlog.verify import verify_log
from tests.support import FakeClock, new_entries

pytestmark = pytest.mark.integration


async def sealed(count: int) -> list[Entry]:
    source = InMemoryEventLog(clock=FakeClock())
    await source.append("p", new_entries(count))
    return await source.read(0, count)


async def xadd_all(client: Redis, key: str, rows: list[tuple[str, dict[str, bytes]]]) -> None:
    for stream_id, fields in rows:
        await client.xadd(key, fields, id=stream_id)  # type: ignore[arg-type]


async def test_stream_layout(redis_client: Redis) -> None:
    """Entries sit at ids seq-0 with fields t (type) and e (msgpack Entry); positions in a hash."""
    log = RedisEventLog(redis_client, key="x:log", clock=FakeClock())
    appended = await log.append("intake", new_entries(2), position="S7")
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis_client.xrange("x:log"))
    assert [row[0] for row in rows] == [b"1-0", b"2-0"]
    assert rows[0][1] == {b"t": b"InstrumentHalted", b"e": msgspec.msgpack.encode(appended[0])}
    assert await redis_client.hgetall("x:log:positions") == {b"intake": b"S7"}


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("undecodable", "undecodable entry at stream id 3-0"),
        ("wrong_id", "stream id 3-0 holds an entry with seq 4"),
        ("wrong_type", "type field b'Other' disagrees"),
        ("body", "hash mismatch"),
    ],
)
async def test_verify_names_the_damaged_entry(redis_client: Redis, damage: str, reason: str) -> None:
    """verify_log reports the first damaged entry's seq, counting the good ones before it."""
    entries = await sealed(5)
    rows = [(f"{e.seq}-0", encode_entry(e)) for e in entries]
    if damage == "undecodable":
        rows[2] = ("3-0", {"t": b"InstrumentHalted", "e": b"\xc1garbage"})
    elif damage == "wrong_id":
        rows[2] = ("3-0", encode_entry(entries[3]))
    elif damage == "wrong_type":
        rows[2] = ("3-0", encode_entry(entries[2]) | {"t": b"Other"})
    else:
        rows[2] = ("3-0", encode_entry(msgspec.structs.replace(entries[2], body=b"\x90")))
    await xadd_all(redis_client, "x:log", rows)
    report = await verify_log(RedisEventLog(redis_client, key="x:log"), page=2)
    assert (report.ok, report.first_bad_seq, report.count, report.head_seq) == (False, 3, 2, 2)
    assert report.reason.startswith(reason)
    assert report.head_hash == entries[1].hash.hex()


async def test_read_raises_on_undecodable_entry(redis_client: Redis) -> None:
    """read refuses to hand out a page past an entry it cannot decode."""
    await redis_client.xadd("x:log", {"t": b"T", "e": b"\xc1"}, id="1-0")
    with pytest.raises(LogCorrupt) as bad:
        await RedisEventLog(redis_client, key="x:log").read()
    assert bad.value.seq == 1


async def test_append_rechains_on_a_replaced_head(redis_client: Redis) -> None:
    """A handle whose cached head has the right seq but another hash re-seals on the real head."""
    log = RedisEventLog(redis_client, key="x:log", clock=FakeClock())
    await log.append("p", new_entries(2))
    await redis_client.delete("x:log")
    rewritten = RedisEventLog(redis_client, key="x:log", clock=FakeClock(start=9))
    await rewritten.append("q", new_entries(2, tag="other"))
    appended = await log.append("p", new_entries(1, start=3))
    assert appended[0].seq == 3
    assert appended[0].prev_hash == (await rewritten.read(1, 1))[0].hash
    assert (await verify_log(log)).ok


async def test_client_uses_hiredis(redis_client: Redis) -> None:
    """The adapter runs on redis-py 8 with the hiredis parser."""
    import redis  # noqa: PLC0415  -- only this test cares about the version

    assert int(redis.__version__.split(".")[0]) == 8
    connection = await redis_client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        assert isinstance(connection, Connection)
        assert type(connection._parser).__name__ == "_AsyncHiredisParser"
    finally:
        await redis_client.connection_pool.release(connection)


async def test_a_follower_seals_on_the_head_it_just_read(redis_client: Redis) -> None:
    """After following another writer's entries, the next append is sealed on them: one script call,
    not a refused one and a retry (the cost that made every append two round trips)."""
    mine = RedisEventLog(redis_client, key="h:log", clock=FakeClock())
    other = RedisEventLog(redis_client, key="h:log", clock=FakeClock())
    await mine.append("me", new_entries(1))
    await other.append("them", new_entries(3, start=10))
    calls = 0
    run_script = mine._run_script

    async def counted(*args: object) -> list[object]:
        nonlocal calls
        calls += 1
        return await run_script(*args)  # type: ignore[arg-type]

    mine._run_script = counted  # type: ignore[method-assign, assignment]
    assert [e.seq for e in await mine.follow(1, 10, block_ms=100)] == [2, 3, 4]
    appended = await mine.append("me", new_entries(1, start=20))
    assert ([e.seq for e in appended], calls) == ([5], 1)
    await other.append("them", new_entries(1, start=30))
    await mine.append("me", new_entries(1, start=40))  # stale again: refused once, then retried
    assert calls == 3
    assert (await verify_log(mine)).ok
