"""Matching snapshots: a restored engine makes exactly the decisions the original would have made."""

from __future__ import annotations

import random

import pytest

from loadtests.order_stream import BENCH_INSTRUMENTS, OrderMix, generate_commands
from services.matching.engine import MatchingEngine, SelfTradePrevention
from services.matching.processor import MatchingProcessor
from services.matching.snapshot import MatchingSnapshotError, decode_engine, encode_engine
from services.runtime.processor import restored
from shared.domain.commands import EngineCommand, ExpireDayOrders, HaltInstrument, ResumeInstrument
from shared.domain.events import EngineEvent

SEEDS = (3, 17, 2025)


def commands(seed: int, count: int) -> list[EngineCommand]:
    """A seeded mix heavy in cancels and amends (dead orders in the queues), with halts and day ends."""
    rng = random.Random(seed)
    print(f"seed={seed}")
    mix = OrderMix(cancel=0.30, amend=0.15)
    out: list[EngineCommand] = list(generate_commands(count, seed, participants=12, mix=mix))
    symbols = [i.symbol for i in BENCH_INSTRUMENTS]
    for _ in range(count // 200):
        at, symbol = rng.randrange(len(out)), rng.choice(symbols)
        out[at:at] = [HaltInstrument(instrument=symbol), ResumeInstrument(instrument=symbol)]
    out.insert(count // 3, ExpireDayOrders(instrument=symbols[0]))
    return out


def run(engine: MatchingEngine, cmds: list[EngineCommand]) -> list[EngineEvent]:
    return [event for cmd in cmds for event in engine.decide(cmd)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stp", [SelfTradePrevention.CANCEL_RESTING, SelfTradePrevention.ALLOW])
def test_restored_engine_behaves_identically(seed: int, stp: SelfTradePrevention) -> None:
    """Snapshot mid-stream, restore, feed both the same tail: same events, same final bytes."""
    cmds = commands(seed, 6000)
    original = MatchingEngine(BENCH_INSTRUMENTS, stp=stp)
    run(original, cmds[: len(cmds) // 2])
    data = encode_engine(original)
    restored = decode_engine(data)
    assert encode_engine(restored) == data  # restoring loses nothing the encoding carries
    queued = [o for b in original.books.values() for side in (b.bids, b.asks) for lv in side.values()
              for o in lv.orders]  # fmt: skip
    assert any(not o.live for o in queued), "the stream should leave dead orders in some queue"
    tail = cmds[len(cmds) // 2 :]
    assert run(restored, tail) == run(original, tail)
    assert encode_engine(restored) == encode_engine(original)
    for symbol, book in original.books.items():
        assert restored.books[symbol].depth(50) == book.depth(50)


def test_halted_flag_and_trade_counter_survive() -> None:
    """A halted book stays halted after a restore and trade ids continue from the counter."""
    engine = MatchingEngine(BENCH_INSTRUMENTS)
    run(engine, commands(5, 500))
    engine.decide(HaltInstrument(instrument=BENCH_INSTRUMENTS[1].symbol))
    restored = decode_engine(encode_engine(engine))
    assert restored.books[BENCH_INSTRUMENTS[1].symbol].halted
    assert restored.next_trade_id == engine.next_trade_id > 1


def test_processor_snapshot_round_trip_keeps_the_digest() -> None:
    """MatchingProcessor.snapshot/restore round-trips; the restored processor republishes every book."""
    proc = MatchingProcessor()
    proc.engine = MatchingEngine(BENCH_INSTRUMENTS)
    run(proc.engine, commands(9, 1000))
    copy = restored(MatchingProcessor(), proc.snapshot())
    assert copy.digest() == proc.digest()
    assert copy.touched == {i.symbol for i in BENCH_INSTRUMENTS}


def test_damaged_snapshot_is_refused() -> None:
    """Truncated bytes or an id registry that names no resting order are refused, not half-restored."""
    engine = MatchingEngine(BENCH_INSTRUMENTS)
    run(engine, commands(1, 300))
    data = encode_engine(engine)
    with pytest.raises(MatchingSnapshotError):
        decode_engine(data[: len(data) // 2])
    engine._live_ids[("ghost", "g1")] = 999_999
    with pytest.raises(MatchingSnapshotError, match="disagree"):
        decode_engine(encode_engine(engine))
