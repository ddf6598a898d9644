"""Follower snapshots and replay: snapshot + tail equals a full replay, and answers are never doubled."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from loadtests.replay_bench import build_exchange_log
from services.cli.readmodel import ExchangeState, Stop, replay_archive, replay_entries
from services.runtime.follower import CannotFold, LogFollower
from services.runtime.snapshots import Snapshot, decode_record, encode_record, new_snapshot
from services.settlement.core import Settlement
from services.system import SYSTEM
from shared.eventlog.archive import write_archive
from shared.eventlog.auth import IN_MEMORY_KEYS, ProducerKeys
from shared.eventlog.entry import GENESIS_HASH, Entry, NewEntry, content_digest, encode_content, link_hash
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.port import LogCorrupt
from shared.eventlog.verify import ChainVerifier, verify_entries
from tests.support import FakeClock

ORDERS, SEED = 1500, 11


@pytest.fixture(scope="module")
def exchange_log() -> tuple[InMemoryEventLog, list[Entry]]:
    """A realistic log: seeded requests through the real verification, matching and settlement cores."""
    print(f"orders={ORDERS} seed={SEED}")
    log = asyncio.run(build_exchange_log(ORDERS, SEED))
    return log, asyncio.run(log.read(0, 10**9))


def test_replaying_twice_gives_the_same_digest(exchange_log: tuple[InMemoryEventLog, list[Entry]]) -> None:
    """Replay is a pure fold: two replays of one log agree on the digest and on every count."""
    _, entries = exchange_log
    first, second = replay_entries(entries), replay_entries(entries)
    assert first.digest() == second.digest()
    assert first.counts == second.counts
    assert first.counts["TradeExecuted"] == first.counts["TradeSettled"] > 100


def test_replay_until_is_a_prefix(exchange_log: tuple[InMemoryEventLog, list[Entry]]) -> None:
    """--until N equals replaying the first N entries; --until-time stops before later-logged entries."""
    _, entries = exchange_log
    half = len(entries) // 2
    assert replay_entries(entries, stop=Stop(until=half)).digest() == replay_entries(entries[:half]).digest()
    cut = entries[half].logged_ns
    by_time = replay_entries(entries, stop=Stop(until_ns=cut))
    assert by_time.seq == max(e.seq for e in entries if e.logged_ns <= cut)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
async def test_followers_from_snapshot_plus_tail_match_a_full_replay(
    exchange_log: tuple[InMemoryEventLog, list[Entry]], fraction: float
) -> None:
    """Each core restored from a snapshot at seq k and fed the tail ends where a full replay ends, and
    appends nothing: every answer to the tail is already in the log (the logged positions say so)."""
    log, entries = exchange_log
    k = int(len(entries) * fraction)
    full = replay_entries(entries)
    prefix = replay_entries(entries[:k])
    for core in SYSTEM.cores:
        snapshot = new_snapshot(prefix.core(core.name), k, entries[k - 1].hash, "")
        record = encode_record(snapshot, IN_MEMORY_KEYS)
        snap = decode_record(record, IN_MEMORY_KEYS)
        follower = LogFollower(core.make(), log)
        follower.restore(snap, await log.position(core.name))
        appended = await follower.step(entries[k:])
        assert appended == []
        assert follower.processor.digest() == full.core(core.name).digest()


async def test_follower_refuses_a_batch_that_does_not_link(
    exchange_log: tuple[InMemoryEventLog, list[Entry]],
) -> None:
    """A batch that skips an entry or comes from another chain crashes the follower (it then rebuilds)."""
    log, entries = exchange_log
    follower = LogFollower(Settlement(), log)
    await follower.step(entries[:100])
    with pytest.raises(LogCorrupt, match="expected seq 101"):
        await follower.step(entries[101:200])
    forged = msgspec.structs.replace(entries[100], prev_hash=bytes(32))
    with pytest.raises(LogCorrupt) as bad:
        await follower.step([forged])
    assert bad.value.seq == 101


def test_snapshot_record_detects_any_damage_and_any_other_writer() -> None:
    """A flipped byte anywhere in a record fails its seal; so does a record sealed by anyone without the
    log master key (written with a stolen Redis password, say)."""
    snap = Snapshot(
        service="matching", seq=5, head_hash=b"h" * 32, logged_position="L1", taken_ns=1, state=b"abc"
    )
    record = encode_record(snap, IN_MEMORY_KEYS)
    assert decode_record(record, IN_MEMORY_KEYS) == snap
    for at in (0, 31, 32, len(record) - 1):
        damaged = bytearray(record)
        damaged[at] ^= 0x01
        with pytest.raises(ValueError, match=r"seal mismatch|undecodable"):
            decode_record(bytes(damaged), IN_MEMORY_KEYS)
    forged = encode_record(snap, ProducerKeys(b"\x07" * 32))
    with pytest.raises(ValueError, match="seal mismatch"):
        decode_record(forged, IN_MEMORY_KEYS)
    other_core = encode_record(msgspec.structs.replace(snap, service="settlement"), IN_MEMORY_KEYS)
    assert decode_record(other_core, IN_MEMORY_KEYS).service == "settlement"  # sealed for its own core


def test_tampered_archive_is_refused_naming_the_seq(
    tmp_path: Path, exchange_log: tuple[InMemoryEventLog, list[Entry]]
) -> None:
    """An entry whose body was altered (CRC rewritten to match) fails the hash chain at its seq."""
    _, entries = exchange_log
    tampered = list(entries)
    tampered[41] = msgspec.structs.replace(entries[41], body=entries[41].body.replace(b"P0", b"P9", 1))
    assert tampered[41].body != entries[41].body
    write_archive(tmp_path / "bad.grnxlog", tampered)
    with pytest.raises(LogCorrupt) as bad:
        replay_archive(tmp_path / "bad.grnxlog")
    assert bad.value.seq == 42
    assert "hash mismatch" in bad.value.reason


def test_archive_replay_equals_in_memory_replay(
    tmp_path: Path, exchange_log: tuple[InMemoryEventLog, list[Entry]]
) -> None:
    """Replaying the exported file gives the digest of replaying the entries themselves."""
    _, entries = exchange_log
    write_archive(tmp_path / "log.grnxlog", entries)
    assert replay_archive(tmp_path / "log.grnxlog").digest() == replay_entries(entries).digest()
    assert isinstance(replay_entries([]), ExchangeState)


def _rechained(entries: list[Entry]) -> list[Entry]:
    """The entries with every link recomputed: what someone who can write the log could produce."""
    out, prev = [], GENESIS_HASH
    for entry in entries:
        link = link_hash(prev, entry.seq, content_digest(encode_content(entry.content())))
        out.append(msgspec.structs.replace(entry, prev_hash=prev, hash=link))
        prev = link
    return out


def _trusting() -> ChainVerifier:
    return ChainVerifier(producer_keys=IN_MEMORY_KEYS, answers={c.name: c.answers_to for c in SYSTEM.cores})


def test_replay_checked_aside_equals_replay_checked_inline(
    tmp_path: Path, exchange_log: tuple[InMemoryEventLog, list[Entry]]
) -> None:
    """A second process checking tags and causations while this one folds gives the same state, and
    stops where --until stops."""
    _, entries = exchange_log
    write_archive(tmp_path / "log.grnxlog", entries)
    inline = replay_archive(tmp_path / "log.grnxlog", verifier=_trusting())
    aside = replay_archive(tmp_path / "log.grnxlog", verifier=_trusting(), aside=True)
    assert aside.digest() == inline.digest() == replay_entries(entries).digest()
    half = len(entries) // 2
    damaged = _rechained(
        [*entries[:half], msgspec.structs.replace(entries[half], auth=bytes(32)), *entries[half + 1 :]]
    )
    until = replay_archive(tmp_path / "log.grnxlog", verifier=_trusting(), aside=True, until=half)
    write_archive(tmp_path / "damaged.grnxlog", damaged)
    assert (
        replay_archive(tmp_path / "damaged.grnxlog", verifier=_trusting(), aside=True, until=half).digest()
        == until.digest()
    )


def test_replay_checked_aside_refuses_a_forged_entry_even_when_the_fold_breaks_on_it(
    tmp_path: Path, exchange_log: tuple[InMemoryEventLog, list[Entry]]
) -> None:
    """An entry that links but was tagged by no producer is named by its seq, also when folding it
    raised first (its body is garbage the cores cannot decode)."""
    _, entries = exchange_log
    for k, damage in ((100, {"auth": bytes(32)}), (200, {"body": b"\xc1 not msgpack", "auth": bytes(32)})):
        forged = _rechained(
            [*entries[: k - 1], msgspec.structs.replace(entries[k - 1], **damage), *entries[k:]]
        )
        write_archive(tmp_path / "forged.grnxlog", forged)
        assert verify_entries(forged).ok  # the chain alone accepts it
        with pytest.raises(LogCorrupt) as bad:
            replay_archive(tmp_path / "forged.grnxlog", verifier=_trusting(), aside=True)
        assert bad.value.seq == k
        assert "producer tag does not verify" in bad.value.reason


async def test_a_core_that_cannot_fold_an_entry_stops_naming_it() -> None:
    """An entry a core fails on (here a body that does not decode) is never skipped: the follower raises
    CannotFold with its seq, and the process then stops (fail fast) instead of looping past it."""
    log = InMemoryEventLog(clock=FakeClock())
    entries = await log.append("intake", [
        NewEntry(event_id="operator/c1/0", causation="in:operator:1-0", type="CashDeposited", event_ns=1,
                 body=b"\xc1 not msgpack"),
    ])  # fmt: skip
    follower = LogFollower(Settlement(), log)
    with pytest.raises(CannotFold) as failed:
        await follower.step(entries)
    assert failed.value.seq == 1
    assert "settlement cannot fold CashDeposited" in failed.value.reason
