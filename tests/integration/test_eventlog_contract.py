"""One contract for every EventLog adapter: the in-memory one and the Redis-stream one."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest
from redis.asyncio import Redis

from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.entry import GENESIS_HASH, Entry
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.port import DuplicateAppend, EventLog, LogCorrupt, LogFenced
from shared.eventlog.redis_log import NO_BELLS, Bells, RedisEventLog
from shared.eventlog.verify import verify_entries, verify_log
from shared.keys import Keys
from shared.resp import RespClient
from tests.support import FakeClock, eventually, new_entries


class Backend:
    """The log under test, and a way to open another writer's handle onto the same log."""

    def __init__(self, log: InMemoryEventLog | RedisEventLog, reopen: Callable[[], EventLog]) -> None:
        self.log = log
        self.reopen = reopen


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.integration),
        # The services' configuration: the lean client, and follow() woken by its reader's bell.
        pytest.param("redis-lean-bells", marks=pytest.mark.integration),
    ]
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = InMemoryEventLog(clock=FakeClock())
        yield Backend(memory, lambda: memory)  # in one process every writer shares the one log
        return
    # The session server's URL (a sync fixture: an async one cannot be requested from in here).
    client = Redis.from_url(request.getfixturevalue("redis_server"))
    await client.flushall()
    lean = request.param == "redis-lean-bells"
    resp = RespClient.like(client) if lean else None
    keys = Keys("t")
    # new_entries writes InstrumentHalted: the type that rings the reader's bell.
    bells = Bells(keys, {"contract-reader": ["InstrumentHalted"]}) if lean else NO_BELLS
    reader = "contract-reader" if lean else None
    log = RedisEventLog(
        client, keys, clock=FakeClock(), resp=resp, bells=bells, reader=reader, producer_keys=IN_MEMORY_KEYS
    )
    later = FakeClock(start=2_000_000_000_000_000_000)
    yield Backend(
        log,
        lambda: RedisEventLog(
            client, keys, clock=later, resp=resp, bells=bells, producer_keys=IN_MEMORY_KEYS
        ),
    )
    if resp is not None:
        await resp.aclose()
    await client.aclose()


async def read_all(log: EventLog) -> list[Entry]:
    return await log.read(0, 1_000_000)


async def test_empty_log(backend: Backend) -> None:
    """An empty log has head (0, genesis), no entries and no producer positions."""
    log = backend.log
    assert await log.head() == (0, GENESIS_HASH)
    assert await log.read() == []
    assert await log.follow(0, block_ms=0) == []
    assert await log.position("matching") == ""


async def test_append_assigns_gapless_seq_and_chains(backend: Backend) -> None:
    """Appends get seqs 1..n in order, the producer and clock time, and a verifiable hash chain."""
    log = backend.log
    first = await log.append("matching", new_entries(3))
    second = await log.append("intake", new_entries(2, start=4))
    entries = await read_all(log)
    assert entries == first + second
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [e.event_id for e in entries] == [f"ev/c{i}/0" for i in range(1, 6)]
    assert [e.producer for e in entries] == ["matching"] * 3 + ["intake"] * 2
    assert [e.logged_ns for e in entries] == [1_700_000_000_000_001_000] * 3 + [1_700_000_000_000_002_000] * 2
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert await log.head() == (5, entries[-1].hash)
    report = verify_entries(entries)
    assert (report.ok, report.count, report.head_seq, report.head_hash) == (
        True,
        5,
        5,
        entries[-1].hash.hex(),
    )
    assert (await verify_log(log)).head_hash == entries[-1].hash.hex()


async def test_read_pages(backend: Backend) -> None:
    """read returns entries strictly after `after_seq`, at most `limit` of them."""
    log = backend.log
    await log.append("p", new_entries(10))
    assert [e.seq for e in await log.read(0, 3)] == [1, 2, 3]
    assert [e.seq for e in await log.read(3, 3)] == [4, 5, 6]
    assert [e.seq for e in await log.read(8, 100)] == [9, 10]
    assert await log.read(10) == []


async def test_position_makes_appends_idempotent(backend: Backend) -> None:
    """A position not after the producer's last is refused whole; other producers are independent."""
    log = backend.log
    await log.append("intake", new_entries(2), position="L01")
    before = await read_all(log)
    for stale in ["L01", "L00", "A"]:
        with pytest.raises(DuplicateAppend):
            await log.append("intake", new_entries(3, start=10), position=stale)
    assert await read_all(log) == before
    assert await log.position("intake") == "L01"
    await log.append("other", new_entries(1, start=20), position="L01")
    await log.append("intake", new_entries(1, start=30), position="L02")
    assert await log.position("intake") == "L02"
    assert [e.event_id for e in await read_all(log)] == ["ev/c1/0", "ev/c2/0", "ev/c20/0", "ev/c30/0"]


async def test_positions_order_bytewise(backend: Backend) -> None:
    """Positions compare as Python strings do (bytewise UTF-8), whatever the server's locale."""
    log = backend.log
    last = ""
    for i, candidate in enumerate(["B", "a", "Z", "a0", "a-", "é", "z", "éa", "S1", "éa"]):
        if candidate > last:
            await log.append("p", new_entries(1, start=i), position=candidate)
            last = candidate
        else:
            with pytest.raises(DuplicateAppend):
                await log.append("p", new_entries(1, start=i), position=candidate)
        assert await log.position("p") == last
    assert last == "éa"


async def test_empty_batch_records_position(backend: Backend) -> None:
    """An input that produced no entries can still advance the producer's position."""
    log = backend.log
    assert await log.append("p", [], position="L05") == []
    assert await log.position("p") == "L05"
    assert await log.head() == (0, GENESIS_HASH)
    with pytest.raises(DuplicateAppend):
        await log.append("p", new_entries(1), position="L05")


async def test_expect_seq_fences(backend: Backend) -> None:
    """A wrong expect_seq raises LogFenced and writes neither entries nor the position."""
    log = backend.log
    await log.append("p", new_entries(2))
    for wrong in [0, 1, 3]:
        with pytest.raises(LogFenced):
            await log.append("p", new_entries(1, start=10), position="L09", expect_seq=wrong)
    assert [e.seq for e in await read_all(log)] == [1, 2]
    assert await log.position("p") == ""
    appended = await log.append("p", new_entries(1, start=10), position="L09", expect_seq=2)
    assert [e.seq for e in appended] == [3]
    assert await log.position("p") == "L09"


async def test_expect_seq_fences_a_writer_that_fell_behind(backend: Backend) -> None:
    """A second writer's handle fences against the real head, not the one it saw last."""
    log, other = backend.log, backend.reopen()
    await other.append("b", new_entries(1))
    await log.append("a", new_entries(1, start=2))
    with pytest.raises(LogFenced):
        await other.append("b", new_entries(1, start=3), expect_seq=1)
    appended = await other.append("b", new_entries(1, start=3), expect_seq=2)
    assert [e.seq for e in appended] == [3]
    assert (await verify_log(log)).ok


async def test_concurrent_writers_interleave_without_loss(backend: Backend) -> None:
    """Two handles appending at once: every entry lands exactly once and the chain verifies."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    writers = [backend.log, backend.reopen()]
    tasks = []
    next_id = 1
    for n in range(60):
        size = rng.randint(1, 3)
        tasks.append(writers[n % 2].append(f"w{n % 2}", new_entries(size, start=next_id)))
        next_id += size
    results = await asyncio.gather(*tasks)
    entries = await read_all(backend.log)
    assert sorted(e.event_id for e in entries) == sorted(f"ev/c{i}/0" for i in range(1, next_id))
    assert [e.seq for e in entries] == list(range(1, next_id))
    assert sorted(e.seq for batch in results for e in batch) == list(range(1, next_id))
    for batch in results:  # each batch is contiguous: appends are atomic
        assert [e.seq for e in batch] == list(range(batch[0].seq, batch[0].seq + len(batch)))
    assert verify_entries(entries).ok


async def test_follow_waits_for_new_entries(backend: Backend) -> None:
    """follow blocks while there is nothing new, then returns the entries appended meanwhile."""
    log = backend.log
    await log.append("p", new_entries(2))
    waiter = asyncio.create_task(log.follow(2, block_ms=5_000))
    await asyncio.sleep(0.05)  # give it time to block: this test is about it not returning early
    assert not waiter.done()
    await backend.reopen().append("p", new_entries(2, start=3))
    entries = await asyncio.wait_for(waiter, timeout=2)
    assert [e.seq for e in entries] == [3, 4]


async def test_follow_returns_at_once_or_times_out(backend: Backend) -> None:
    """follow returns waiting entries immediately, and [] after block_ms when none arrive."""
    log = backend.log
    await log.append("p", new_entries(3))
    assert [e.seq for e in await asyncio.wait_for(log.follow(1, limit=1, block_ms=5_000), 1)] == [2]
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await log.follow(3, block_ms=150) == []
    assert 0.1 <= loop.time() - started < 2


async def test_follow_sees_entries_eventually(backend: Backend) -> None:
    """A follower polling in a loop catches up with a writer."""
    log = backend.log
    seen: list[Entry] = []

    async def caught_up() -> bool:
        seen.extend(await log.follow(seen[-1].seq if seen else 0, block_ms=10))
        return len(seen) == 5

    await log.append("p", new_entries(5))
    await eventually(caught_up, timeout=2)
    assert [e.seq for e in seen] == [1, 2, 3, 4, 5]


async def test_import_entries_loads_and_chain_continues(backend: Backend) -> None:
    """Sealed entries import after the head; later appends link to the imported head."""
    source = InMemoryEventLog(clock=FakeClock(start=5))
    await source.append("p", new_entries(4))
    imported = await read_all(source)
    log = backend.log
    await log.import_entries(imported[:2])
    await log.import_entries(imported[2:])
    assert await read_all(log) == imported
    assert await log.head() == (4, imported[-1].hash)
    appended = await log.append("q", new_entries(1, start=5))
    assert appended[0].seq == 5
    assert appended[0].prev_hash == imported[-1].hash
    assert (await verify_log(log)).count == 5


async def test_import_refuses_a_broken_chain_whole(backend: Backend) -> None:
    """An import with one bad entry raises LogCorrupt naming it and writes nothing."""
    source = InMemoryEventLog(clock=FakeClock())
    await source.append("p", new_entries(5))
    entries = await read_all(source)
    tampered = [*entries[:3], msgspec.structs.replace(entries[3], body=b"\x01"), *entries[4:]]
    log = backend.log
    with pytest.raises(LogCorrupt) as bad:
        await log.import_entries(tampered)
    assert (bad.value.seq, bad.value.reason) == (4, "hash mismatch")
    with pytest.raises(LogCorrupt) as gap:
        await log.import_entries(entries[1:])
    assert gap.value.seq == 1
    assert await read_all(log) == []
    assert await log.head() == (0, GENESIS_HASH)
