"""Restart benchmark: how long each process takes to be ready again on a long log, with and without
snapshots (issue 13: "restart time after 1,000,000 entries with a snapshot: seconds").

A realistic log is built in-process (the replay benchmark's seeded session through every core), imported
into a private Redis, and then each restart path the services run is timed on it, side by side:

- intake: Gateway.rebuild (its own entries, tags and freshness checked) from nothing, and from a snapshot
  `--behind` entries before the head (services snapshot every GREENEX_SNAPSHOT_EVERY = 100,000 entries);
- each follower core: resume_follower (snapshot, positions from the log) and the catch-up to the head;
- the report publisher: resume and the fold to the head;
- the checkpoint process's start: it verifies the whole stream (what `greenex log archive` shortens);
- the operator views (issue 14): `balances`/`registry` from the followers' snapshots plus the tail
  against a replay of the whole log, the live depth view `book` reads, and the CLI's own start-up.

    .venv/bin/python -m loadtests.restart_bench --orders 282000 --behind 100000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
from redis.asyncio import Redis

from loadtests.private_redis import private_redis, run_line
from loadtests.replay_bench import _Clock, intake_events
from services.cli.fastview import state_from_snapshots
from services.cli.readmodel import ExchangeState, replay_entries, replay_log
from services.cli.supervisor import ROOT
from services.harness import InProcessExchange
from services.intake.core import Intake
from services.intake.gateway import Gateway
from services.intake.reports.publisher import SNAPSHOT_NAME, ReportPublisher
from services.matching.service import depth_view
from services.runtime.app import resume_follower
from services.runtime.follower import LogFollower
from services.runtime.snapshots import Snapshot, SnapshotStore, new_snapshot
from services.system import SYSTEM
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.verify import ChainVerifier
from shared.keys import Keys
from shared.reports import DepthView
from shared.resp import RespClient

HOME = ROOT / "var" / "restart-bench"
KEYS = Keys("bench")


async def _build(orders: int, seed: int) -> tuple[InProcessExchange, list[Entry]]:
    exchange = InProcessExchange(clock=_Clock())
    events = list(intake_events(orders, seed, exchange.sealer))
    for start in range(0, len(events), 50):
        await exchange.append_intake_events(events[start : start + 50])
    return exchange, await exchange.log.read(0, 10**9)


class _UpTo:
    """The log as it was at seq `last` (to take a snapshot there)."""

    def __init__(self, log: RedisEventLog, last: int) -> None:
        self.log, self.last = log, last

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        return [e for e in await self.log.read(after_seq, limit) if e.seq <= self.last]

    async def position(self, producer: str) -> str:
        return await self.log.position(producer)


@dataclass
class _Bench:
    exchange: InProcessExchange
    entries: list[Entry]
    redis: Redis
    resp: RespClient
    log: RedisEventLog
    store: SnapshotStore
    at: int  # where the snapshots are: as far behind the head as the services let them fall
    label: str
    rows: list[tuple[str, float]] = field(default_factory=list)

    async def timed(self, label: str, work: Callable[[], Awaitable[object]]) -> None:
        gc.collect()
        started = time.perf_counter()
        await work()
        self.rows.append((label, time.perf_counter() - started))


async def _intake(b: _Bench) -> None:
    ex = b.exchange

    def gateway() -> Gateway:
        core = Intake(ex.operator_secret, sealer=ex.sealer, box=ex.box, venue=ex.venue)
        return Gateway(core, b.log, b.redis, b.resp, KEYS, IN_MEMORY_KEYS, snapshots=b.store)

    await b.timed("intake, no snapshot (the whole log)", gateway().rebuild)
    await b.redis.delete(KEYS.snapshots("intake"))
    old = gateway()
    old.log = _UpTo(b.log, b.at)  # type: ignore[assignment]
    await old.rebuild()  # saves its snapshot at `at`
    await b.timed(f"intake, {b.label}", gateway().rebuild)


async def _followers(b: _Bench) -> None:
    state = replay_entries(b.entries[: b.at], verify=False)
    for core in SYSTEM.cores:
        await b.store.save(new_snapshot(state.core(core.name), b.at, b.entries[b.at - 1].hash, ""))
        follower = LogFollower(
            core.make(), b.log, batch=5000, snapshots=b.store, producer_keys=IN_MEMORY_KEYS
        )

        async def resume(follower: LogFollower = follower) -> None:
            await resume_follower(follower)
            while page := await b.log.read(follower.cursor, follower.batch):
                follower._decide(page)  # the fold, without re-appending answers
                follower.settled = True

        await b.timed(f"{core.name}, {b.label}", resume)


async def _publisher(b: _Bench) -> None:
    publisher = ReportPublisher(b.redis, KEYS, IN_MEMORY_KEYS)  # its memory at `at` (nothing is sent)
    while page := await _UpTo(b.log, b.at).read(publisher.folded, 5000):
        publisher.prepare(page)
    await b.store.save(_publisher_snapshot(publisher))

    async def restart() -> None:
        again = ReportPublisher(b.redis, KEYS, IN_MEMORY_KEYS, b.store)
        await again.resume([], b.log)
        while page := await b.log.read(again.folded, 5000):
            again.prepare(page)

    await b.timed(f"report publisher, {b.label}", restart)


async def _checkpoint(b: _Bench) -> None:
    async def start() -> None:
        answers = {core.name: core.answers_to for core in SYSTEM.cores}
        verifier, after = ChainVerifier(producer_keys=IN_MEMORY_KEYS, answers=answers), 0
        while page := await b.log.read(after, 5000):
            for entry in page:
                verifier.check(entry)
            after = page[-1].seq

    await b.timed("checkpoint process (verifies the whole stream)", start)


async def _views(b: _Bench) -> None:
    """After _followers: every core's snapshot is `at`. The CLI's start is its own process, timed apart."""
    fast: dict[str, ExchangeState] = {}

    async def from_snapshots() -> None:
        fast["state"] = await state_from_snapshots(b.log, b.store)

    async def replayed() -> None:
        full = await replay_log(b.log)
        if full.core_digests() != fast["state"].core_digests():
            raise AssertionError("a view from snapshots differs from the full replay")

    await b.timed(f"balances/registry view, {b.label}", from_snapshots)
    await b.timed("balances/registry view, replaying the whole log", replayed)
    symbol = sorted(fast["state"].matching.engine.books)[0]
    await b.redis.set(KEYS.depth(symbol), depth_view(fast["state"].matching, symbol))

    async def depth() -> None:
        raw = await b.redis.get(KEYS.depth(symbol))
        msgspec.json.decode(raw or b"", type=DepthView)

    await b.timed("book view: the live depth (GET md:depth + decode)", depth)
    cli = [sys.executable, "-m", "services.cli.main", "--version"]

    async def start_up() -> None:
        subprocess.run(cli, cwd=ROOT, check=True, capture_output=True)  # noqa: S603 - our own CLI

    await b.timed("greenex CLI start-up (`greenex --version`, own process)", start_up)


async def _run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    exchange, entries = await _build(args.orders, args.seed)
    built = time.perf_counter() - started
    async with private_redis(HOME) as (redis, _):
        resp = RespClient.like(redis)
        log = RedisEventLog(redis, KEYS, resp=resp, producer_keys=IN_MEMORY_KEYS)
        at = entries[-1].seq - args.behind
        bench = _Bench(exchange, entries, redis, resp, log, SnapshotStore(redis, KEYS, IN_MEMORY_KEYS), at,
                       f"snapshot {args.behind:,} behind")  # fmt: skip
        try:
            for start in range(0, len(entries), 20_000):
                await log.import_entries(entries[start : start + 20_000])
            memory = (await redis.info("memory"))["used_memory"]
            for part in (_intake, _followers, _views, _publisher, _checkpoint):
                await part(bench)
        finally:
            await resp.aclose()
    print(run_line(orders=args.orders, seed=args.seed))
    print(f"log: {len(entries):,} entries (built in-process in {built:.1f} s), "
          f"Redis {memory / 2**20:,.0f} MiB")  # fmt: skip
    for label, secs in bench.rows:
        print(f"{label:<58} {secs:7.2f} s")


def _publisher_snapshot(publisher: ReportPublisher) -> Snapshot:
    return Snapshot(
        service=SNAPSHOT_NAME, seq=publisher.folded, head_hash=publisher.folded_hash, logged_position="",
        taken_ns=time.time_ns(), state=publisher.reporter.snapshot(), freshness=publisher.freshness.state(),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=282_000, help="~3.5 log entries per order")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--behind", type=int, default=100_000, help="entries between snapshot and head")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
