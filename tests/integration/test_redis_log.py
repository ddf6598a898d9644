"""Redis-specific behaviour of the log: stream layout, damaged storage, concurrent writers, the client."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any, cast

import msgspec
import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from shared.crypto import derive_key
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.entry import Entry
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.port import DuplicateAppend, LogCorrupt
from shared.eventlog.redis_log import Effect, RedisEventLog, encode_entry
from shared.eventlog.verify import verify_log
from shared.keys import Keys
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
    """Entries sit at ids seq-0 with fields t (type), e (msgpack content: seven fields and the producer's
    HMAC tag over them), p and h (hex links, each the SHA-1 of `<p>:<seq>:<sha256 hex of e>`, as an
    operator can recompute with shell tools); positions sit in a hash."""
    log = RedisEventLog(redis_client, Keys("x"), clock=FakeClock(), producer_keys=IN_MEMORY_KEYS)
    appended = await log.append("intake", new_entries(2), position="S7")
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis_client.xrange(Keys("x").log))
    assert [row[0] for row in rows] == [b"1-0", b"2-0"]
    first = appended[0]
    content = [
        first.event_id,
        first.causation,
        "intake",
        first.type,
        first.event_ns,
        first.logged_ns,
        first.body,
    ]
    # The tag key as docs/security.md derives it: HKDF of the log master key, per producer.
    intake_key = derive_key(derive_key(b"greenex in-memory log", "master"), "greenex log producer:intake")
    tag = hmac.digest(intake_key, msgspec.msgpack.encode(content), "sha256")
    assert first.auth == tag
    content.append(tag)
    assert rows[0][1] == {
        b"t": b"InstrumentHalted",
        b"e": msgspec.msgpack.encode(content),
        b"p": b"0" * 40,
        b"h": first.hash.hex().encode(),
    }
    for seq, (_, fields) in enumerate(rows, start=1):
        text = b"%s:%d:%s" % (fields[b"p"], seq, hashlib.sha256(fields[b"e"]).hexdigest().encode())
        assert fields[b"h"] == hashlib.sha1(text).hexdigest().encode()
    assert rows[1][1][b"p"] == rows[0][1][b"h"]
    assert await redis_client.hgetall(Keys("x").positions) == {b"intake": b"S7"}


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("undecodable", "undecodable entry at stream id 3-0"),
        ("no_link", "no link at stream id 3-0"),
        ("wrong_id", "prev_hash does not link"),
        ("wrong_type", "type field b'Other' disagrees"),
        ("body", "hash mismatch"),
    ],
)
async def test_verify_names_the_damaged_entry(redis_client: Redis, damage: str, reason: str) -> None:
    """verify_log reports the first damaged entry's seq, counting the good ones before it."""
    entries = await sealed(5)
    rows = [(f"{e.seq}-0", encode_entry(e)) for e in entries]
    if damage == "undecodable":
        rows[2] = ("3-0", encode_entry(entries[2]) | {"e": b"\xc1garbage"})
    elif damage == "no_link":  # also what a log written before the script sealed looks like
        rows[2] = ("3-0", {"t": b"InstrumentHalted", "e": msgspec.msgpack.encode(entries[2])})
    elif damage == "wrong_id":
        rows[2] = ("3-0", encode_entry(entries[3]))
    elif damage == "wrong_type":
        rows[2] = ("3-0", encode_entry(entries[2]) | {"t": b"Other"})
    else:
        rows[2] = ("3-0", encode_entry(msgspec.structs.replace(entries[2], body=b"\x90")))
    await xadd_all(redis_client, Keys("x").log, rows)
    report = await verify_log(RedisEventLog(redis_client, Keys("x"), producer_keys=IN_MEMORY_KEYS), page=2)
    assert (report.ok, report.first_bad_seq, report.count, report.head_seq) == (False, 3, 2, 2)
    assert report.reason.startswith(reason)
    assert report.head_hash == entries[1].hash.hex()


async def test_read_raises_on_undecodable_entry(redis_client: Redis) -> None:
    """read refuses to hand out a page past an entry it cannot decode."""
    await redis_client.xadd(Keys("x").log, {"t": b"T", "e": b"\xc1"}, id="1-0")
    with pytest.raises(LogCorrupt) as bad:
        await RedisEventLog(redis_client, Keys("x"), producer_keys=IN_MEMORY_KEYS).read()
    assert bad.value.seq == 1


async def test_append_rechains_on_a_replaced_head(redis_client: Redis) -> None:
    """A handle whose cached head has the right seq but another hash re-seals on the real head."""
    log = RedisEventLog(redis_client, Keys("x"), clock=FakeClock(), producer_keys=IN_MEMORY_KEYS)
    await log.append("p", new_entries(2))
    await redis_client.delete(Keys("x").log)
    rewritten = RedisEventLog(redis_client, Keys("x"), clock=FakeClock(start=9), producer_keys=IN_MEMORY_KEYS)
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


async def test_writers_never_race_for_the_head(redis_client: Redis) -> None:
    """The script seals on whatever head it finds: writers that never read the log append in one script
    call each, interleaved, and the chain they make verifies (the race that made appends retry)."""
    handles = [
        RedisEventLog(redis_client, Keys("h"), clock=FakeClock(start=i), producer_keys=IN_MEMORY_KEYS)
        for i in range(3)
    ]
    calls = 0
    for handle in handles:
        run_script = handle._wire.run_script

        async def counted(*args: Any, _run: Any = run_script) -> list[Any]:
            nonlocal calls
            calls += 1
            return cast(list[Any], await _run(*args))

        handle._wire.run_script = counted  # type: ignore[method-assign, assignment]
    batches = await asyncio.gather(
        *(h.append(f"w{i}", new_entries(2, start=10 * n, tag=f"w{i}")) for n in range(5)
          for i, h in enumerate(handles))
    )  # fmt: skip
    assert calls == 15
    assert sorted(e.seq for batch in batches for e in batch) == list(range(1, 31))
    assert await handles[0].read(0, 100) == sorted((e for b in batches for e in b), key=lambda e: e.seq)
    assert (await verify_log(handles[0])).ok


async def test_append_refuses_a_head_without_a_link(redis_client: Redis) -> None:
    """A head entry the script cannot chain on (no `h` field) refuses the append and writes nothing."""
    await redis_client.xadd(Keys("h").log, {"t": b"T", "e": b"\x90"}, id="1-0")
    with pytest.raises(LogCorrupt) as bad:
        await RedisEventLog(redis_client, Keys("h"), producer_keys=IN_MEMORY_KEYS).append("p", new_entries(1))
    assert (bad.value.seq, await redis_client.xlen(Keys("h").log)) == (1, 1)


async def test_effects_run_only_when_the_append_lands(redis_client: Redis) -> None:
    """Effects run in the append script after the batch is in, and not at all when it is refused."""
    log = RedisEventLog(redis_client, Keys("t"), producer_keys=IN_MEMORY_KEYS)
    effects = [Effect("INCR", "t:landed", ()), Effect("XADD", "t:effects", ("*", "k", "v"))]
    await log.append("p", new_entries(2), position="P1", effects=effects)
    with pytest.raises(DuplicateAppend):
        await log.append("p", new_entries(1, start=3), position="P1", effects=effects)
    assert (await redis_client.get("t:landed"), await redis_client.xlen("t:effects")) == (b"1", 1)
    assert await redis_client.xlen(Keys("t").log) == 2


async def test_an_effect_reporting_an_entry_is_completed_with_its_seq(redis_client: Redis) -> None:
    """Matching's reports name the seq of the entry they report, which only the script knows: the first
    NUL byte of each argument becomes it; effects reporting nothing run as given (NUL bytes and all)."""
    log = RedisEventLog(redis_client, Keys("q"), producer_keys=IN_MEMORY_KEYS)
    await log.append("other", new_entries(4))  # the batch below starts at seq 5, unknown to its writer
    effects = [
        Effect("XADD", "q:out", ("*", "data", b'{"seq":\x00,"n":"second"}'), reports=2),
        Effect("XADD", "q:out", ("*", "data", b'{"seq":\x00,"n":"first","x":"\x00"}'), reports=1),
        Effect("XADD", "q:out", ("*", "data", b"raw\x00kept"), reports=0),
    ]
    appended = await log.append("p", new_entries(2, start=5, tag="m"), position="P1", effects=effects)
    assert [e.seq for e in appended] == [5, 6]
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis_client.xrange("q:out"))
    assert [fields[b"data"] for _, fields in rows] == [
        b'{"seq":6,"n":"second"}',
        b'{"seq":5,"n":"first","x":"\x00"}',
        b"raw\x00kept",
    ]
    with pytest.raises(ValueError, match="only inside the append"):
        effects[0].as_command()
