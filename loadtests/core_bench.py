"""Matching-core benchmark: orders/s and per-order latency on a seeded command mix, events included."""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections import Counter

import msgspec
from hdrh.histogram import HdrHistogram

from loadtests.order_stream import BENCH_INSTRUMENTS, generate_commands
from services.matching.engine import MatchingEngine
from shared.domain.commands import EngineCommand

__all__ = ["main", "run_throughput", "run_latency"]


def run_throughput(commands: list[EngineCommand], encode: bool) -> tuple[float, int]:
    """Seconds to push every command through a fresh engine, and how many events it emitted."""
    engine = MatchingEngine(BENCH_INSTRUMENTS)
    decide = engine.decide
    encoder = msgspec.msgpack.Encoder().encode
    emitted = 0
    gc.disable()  # the collector's pauses are a property of the process, measured by the latency pass
    start = time.perf_counter()
    if encode:
        for command in commands:
            events = decide(command)
            emitted += len(events)
            for event in events:
                encoder(event)
    else:
        for command in commands:
            emitted += len(decide(command))
    elapsed = time.perf_counter() - start
    gc.enable()
    return elapsed, emitted


def run_latency(commands: list[EngineCommand]) -> HdrHistogram:
    """Per-order latency in ns (decide() only), with the garbage collector on."""
    engine = MatchingEngine(BENCH_INSTRUMENTS)
    decide = engine.decide
    clock = time.perf_counter_ns
    histogram = HdrHistogram(1, 1_000_000_000, 3)
    record = histogram.record_value
    for command in commands:
        t0 = clock()
        decide(command)
        record(clock() - t0)
    return histogram


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    commands = list(generate_commands(args.orders, args.seed))
    mix = Counter(type(c).__name__ for c in commands)
    where = f"python {platform.python_version()} on {platform.machine()}"
    print(f"{where}, {args.orders} commands, seed {args.seed}")
    print("mix:", dict(mix))
    engine = MatchingEngine(BENCH_INSTRUMENTS)
    outcomes = Counter(
        f"{type(e).__name__}:{getattr(e, 'reason', '')}".rstrip(":")
        for c in commands
        for e in engine.decide(c)
    )
    print("events:", dict(outcomes.most_common()))
    for label, encode in (("events built", False), ("events built + msgpack-encoded", True)):
        best = min(run_throughput(commands, encode) for _ in range(args.repeat))
        rate = args.orders / best[0]
        print(f"{label:32s} {rate:>10,.0f} commands/s  ({best[1]:,} events, best of {args.repeat})")
    hist = run_latency(commands)
    pct = {p: hist.get_value_at_percentile(p) / 1000 for p in (50, 90, 99, 99.9)}
    print(
        "per-command latency (us): "
        + "  ".join(f"p{p:g}={v:.2f}" for p, v in pct.items())
        + f"  max={hist.get_max_value() / 1000:.1f}"
    )


if __name__ == "__main__":
    main()
