"""Replay benchmark: build a realistic exchange log in-process, export it, time `replay` from the file."""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from loadtests.order_stream import BENCH_INSTRUMENTS, generate_commands
from loadtests.private_redis import run_line
from services.cli.readmodel import replay_archive
from services.harness import InProcessExchange
from services.system import SYSTEM
from shared.crypto import CheckpointKey, Sealer, new_key
from shared.domain.codec import Event
from shared.domain.commands import CancelOrder, PlaceOrder, ReplaceOrder
from shared.domain.events import InstrumentListed
from shared.domain.ledger import (
    CancelSubmitted,
    CashDeposited,
    CreditsIssued,
    OrderSubmitted,
    ParticipantRegistered,
    ReplaceSubmitted,
    SerialRange,
)
from shared.eventlog.archive import iter_archive, write_archive
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.verify import ChainVerifier

__all__ = ["build_exchange_log", "intake_events", "main"]

PARTICIPANTS = 50
TONNES = 10_000_000  # per participant and instrument: sellers never run short


def _setup_events(sealer: Sealer) -> Iterator[Event]:
    for inst in BENCH_INSTRUMENTS:
        yield InstrumentListed(instrument=inst)
    for i in range(PARTICIPANTS):
        name = f"P{i:03d}"
        key = sealer.seal(f"s-{name}".encode(), name, "k1")
        yield ParticipantRegistered(participant=name, name=name, key=key)
        yield CashDeposited(participant=name, amount=10**12)
        for n, inst in enumerate(BENCH_INSTRUMENTS):
            start = 1 + (i * len(BENCH_INSTRUMENTS) + n) * TONNES
            yield CreditsIssued(
                participant=name, instrument=inst.symbol, serials=SerialRange(start, start + TONNES - 1)
            )


def intake_events(orders: int, seed: int, sealer: Sealer) -> Iterator[Event]:
    """What intake would append for a seeded command stream: setup, then submitted requests
    (participants' keys sealed with `sealer`, as the intake reading them holds it)."""
    yield from _setup_events(sealer)
    for cmd in generate_commands(orders, seed, participants=PARTICIPANTS):
        if isinstance(cmd, PlaceOrder):
            yield OrderSubmitted(
                order_id=cmd.order_id,
                participant=cmd.participant,
                client_order_id=cmd.client_order_id,
                instrument=cmd.instrument,
                side=cmd.side,
                order_type=cmd.order_type,
                price=cmd.price,
                quantity=cmd.quantity,
                time_in_force=cmd.time_in_force,
            )
        elif isinstance(cmd, CancelOrder):
            yield CancelSubmitted(
                participant=cmd.participant,
                client_order_id=cmd.client_order_id,
                instrument=cmd.instrument,
                orig_client_order_id=cmd.orig_client_order_id,
            )
        elif isinstance(cmd, ReplaceOrder):
            yield ReplaceSubmitted(
                participant=cmd.participant,
                client_order_id=cmd.client_order_id,
                instrument=cmd.instrument,
                orig_client_order_id=cmd.orig_client_order_id,
                price=cmd.price,
                quantity=cmd.quantity,
            )


async def build_exchange_log(orders: int, seed: int, *, chunk: int = 50) -> InMemoryEventLog:
    """Run intake's requests through every follower core of the system map (the in-process harness).

    Requests go in `chunk` at a time and every core then catches up, so the log interleaves requests
    and answers the way the live exchange does under load.
    """
    exchange = InProcessExchange(clock=_Clock())
    pending: list[Event] = []
    for event in intake_events(orders, seed, exchange.sealer):
        pending.append(event)
        if len(pending) == chunk:
            await exchange.append_intake_events(pending)
            pending = []
    await exchange.append_intake_events(pending)
    return exchange.log


class _Clock:
    """Deterministic logged_ns: one microsecond per append from a fixed epoch."""

    def __init__(self) -> None:
        self.now = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z

    def __call__(self) -> int:
        self.now += 1000
        return self.now


def _best(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    log = asyncio.run(build_exchange_log(args.orders, args.seed))
    entries = asyncio.run(log.read(0, 10**9))
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.grnxlog"
        write_archive(path, entries)
        size = path.stat().st_size
        count = len(entries)
        read = _best(args.runs, lambda: sum(1 for _ in iter_archive(path)))
        verify = _best(args.runs, lambda: _verify_only(path, ChainVerifier()))
        verify_tags = _best(args.runs, lambda: _verify_only(path, _trusting_verifier()))
        full = _best(args.runs, lambda: replay_archive(path))
        full_tags = _best(args.runs, lambda: replay_archive(path, verifier=_trusting_verifier()))
        full_aside = _best(args.runs, lambda: replay_archive(path, verifier=_trusting_verifier(), aside=True))
        unverified = _best(args.runs, lambda: replay_archive(path, verify=False))
        state = replay_archive(path)
    print(run_line(orders=args.orders, seed=args.seed))
    print(f"log: {count:,} entries, {size / 1e6:.1f} MB archive, built in-process in {built:.1f} s")
    print(f"types: {dict(sorted(state.counts.items(), key=lambda kv: -kv[1]))}")
    for label, secs in (
        ("archive read + decode", read),
        ("  + hash-chain verify", verify),
        ("  + hash chain, producer tags and causations", verify_tags),
        ("replay through the cores, hash chain verified", full),
        ("replay, chain + tags + causations, one process", full_tags),
        ("  the same, checked in a second process (greenex replay --file)", full_aside),
        ("replay through the cores, unverified", unverified),
    ):
        print(f"{label:<60} {count / secs:>10,.0f} entries/s  ({secs:.2f} s, best of {args.runs})")
    print(f"state digest {state.digest()}")


def _trusting_verifier() -> ChainVerifier:
    """What `greenex replay --file` checks on a machine holding the key ring (services/cli/trust.py):
    the chain, every producer tag (the harness's log is tagged with IN_MEMORY_KEYS), causations, and
    checkpoints against a public key (the harness signs none: this measures the bookkeeping)."""
    answers = {core.name: core.answers_to for core in SYSTEM.cores}
    public_key = CheckpointKey(new_key()).public_key
    return ChainVerifier(producer_keys=IN_MEMORY_KEYS, answers=answers, checkpoint_key=public_key)


def _verify_only(path: Path, verifier: ChainVerifier) -> None:
    for entry in iter_archive(path):
        verifier.check(entry)


if __name__ == "__main__":
    main()
