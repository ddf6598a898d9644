"""One open-loop run against the real services: seed, send signed orders at a fixed rate, read reports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import msgspec
from hdrh.histogram import HdrHistogram
from redis.asyncio import Redis

from loadtests.cpu import cpu_per_order_us, cpu_seconds, cpu_shares
from loadtests.flow import REFERENCE_FEN, build_flow, client_names, parse_mix, symbols
from loadtests.hdr import summary_ms
from loadtests.openloop import LatencyBook, new_histogram, schedule
from loadtests.redis_stats import command_stats, per_order
from loadtests.sender import Clock, no_gc_pauses, read_streams, send_open_loop
from loadtests.stages import stage_histograms
from services.cli.local import local_exchange, private_settings
from services.cli.supervisor import ROOT, wipe_prefix
from services.cli.venue import Venue
from services.runtime.digests import read_digests
from services.system import SYSTEM
from shared.config import ADMIN, OPERATOR_USER, Settings, connect
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog
from shared.keys import Keys
from shared.resp import RespClient
from shared.trading import NoAnswer, TradingClient

__all__ = ["RunConfig", "RunResult", "fresh_prefix", "run_load", "services_on"]

_json = msgspec.json.Decoder()


def fresh_prefix() -> str:
    return f"greenex-lt-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class RunConfig:
    rate: float = 1000.0
    duration_s: float | None = 10.0
    count: int | None = None
    instruments: int = 2
    clients: int = 20
    mix: str = "passive=45,marketable=40,cancel=15"
    seed: int = 7
    redis_url: str = ""  # empty: a private Redis on a socket under var/loadtest, fresh every run
    prefix: str = ""  # empty: a fresh one per run
    start_services: bool = True
    drain_s: float = 5.0
    partitions: int = 1  # > 1: run_partitioned, the rate split evenly over the loaded partitions
    loaded: int = 0  # with partitions: how many get orders (the first ones); 0: all of them


@dataclass
class RunResult:
    config: RunConfig
    prefix: str
    sent: int
    send_seconds: float
    book: LatencyBook
    send_lag: HdrHistogram
    stages: dict[str, HdrHistogram]
    cpu: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        b = self.book
        achieved = round(self.sent / self.send_seconds, 1) if self.send_seconds else 0.0
        return {
            "rate": self.config.rate,
            "sent": self.sent,
            "achieved_rate": achieved,
            "unanswered": b.unanswered(),
            "ack_ms": summary_ms(b.ack),
            "match_ms": summary_ms(b.match),
            "settle_ms": summary_ms(b.settle),
            "send_lag_ms": summary_ms(self.send_lag),
            "stages_ms": {k: summary_ms(v) for k, v in self.stages.items()},
            "cpu_cores": self.cpu,
            "cpu_us_per_order": cpu_per_order_us(self.cpu, achieved),
            "exec_types": b.exec_types,
            **self.extra,
        }


async def _caught_up(redis: Redis, keys: Keys, head: int, timeout: float) -> dict[str, float | None]:
    """Seconds from the end of sending until each follower core's published digest covers the log as it
    was then (None: not within `timeout`). A core publishes once it has been quiet for DIGEST_QUIET_S,
    so a core that kept up shows about that; one that fell behind shows how long it took to catch up."""
    started, cores = time.perf_counter(), [core.name for core in SYSTEM.cores]
    at: dict[str, float] = {}
    while time.perf_counter() - started < timeout and len(at) < len(cores):
        digests = await read_digests(redis, keys)
        for core in cores:
            if core not in at and digests.get(core, (0, ""))[0] >= head:
                at[core] = round(time.perf_counter() - started, 2)
        await asyncio.sleep(0.05)
    return {core: at.get(core) for core in cores}


# GREENEX_LOADTEST_HOME: another home, for a second run beside the first (each with its own Redis, as two
# partitions on two cluster masters would be).
LOADTEST_HOME = Path(os.environ.get("GREENEX_LOADTEST_HOME") or ROOT / "var" / "loadtest").resolve()


@contextlib.asynccontextmanager
async def services_on(settings: Settings, start: bool, *, clean_up: bool) -> AsyncIterator[dict[str, int]]:
    """The exchange's processes on `settings.prefix`, logged in as their own Redis users (on a fresh
    private Redis, or provisioned on the one at the URL); yields pids.

    `clean_up`: delete the prefix's keys at the end, once the services have stopped (they write a last
    snapshot and digest as they stop: deleted before, those stayed behind and grew Redis run by run).
    """
    if not start:
        try:
            yield {}
        finally:
            if clean_up:
                await _cleanup(settings)
        return
    env = {"GREENEX_LOG_LEVEL": "WARNING"}
    log_dir = ROOT / "var" / "log" / "loadtest"
    async with local_exchange(
        settings, LOADTEST_HOME / "redis", log_dir=log_dir, fresh=True, provision=True, env=env
    ) as supervisor:
        try:
            pids = {name: proc.pid for name, proc in supervisor.procs.items()}
            redis_pid = supervisor.redis_pid or await _local_redis_pid(settings)
            if redis_pid is not None:
                pids["redis-server"] = redis_pid
            yield pids
        finally:
            await supervisor.stop()
            if clean_up:
                await _cleanup(settings)


async def seed(venue: Venue, names: list[str], instruments: int) -> None:
    """Instruments and well-funded participants (each its own Redis user and signing key): the test
    measures the path, not the risk checks failing."""
    op = venue.operator
    ref = f"{REFERENCE_FEN // 100}.{REFERENCE_FEN % 100:02d}"
    for n, sym in enumerate(symbols(instruments)):
        await op.operator(
            "list_instrument", f"lt-i{n}", symbol=sym, kind="allowance", standard="SZEA",
            registry="Shenzhen ETS", vintage=2025, reference_price=ref,
        )  # fmt: skip
    serial = 1
    for who in names:
        await venue.onboard(who, who)
        await op.operator("deposit_cash", f"lt-d-{who}", participant=who, amount="1000000000.00")
        # A load test is not throttled: each client may send far more than the run's share.
        await op.operator("set_limits", f"lt-l-{who}", participant=who, commands_per_s=100_000, burst=100_000)
        for sym in symbols(instruments):
            await op.operator(
                "issue_credits", f"lt-c-{who}-{sym}", participant=who, instrument=sym,
                serial_start=serial, serial_end=serial + 9_999_999,
            )  # fmt: skip
            serial += 10_000_000


async def _warm_up(venue: Venue, names: list[str], syms: list[str], timeout: float) -> None:
    """One far-from-the-market order per client through the client library, each answered: the services
    are up and caught up. (The measured flow is signed in advance and sent by loadtests/sender.py, at
    rates no per-command client reaches.)"""
    settings = venue.settings
    for who in names:
        creds = venue.credentials[who]
        async with await TradingClient.connect(
            settings.redis_url, who, creds.redis_password, creds.signing_key, venue=settings.venue,
            prefix=settings.keys.prefix,
        ) as client:  # fmt: skip
            far = f"{REFERENCE_FEN * 0.95 / 100:.2f}"
            cid = await client.buy(syms[0], 1, price=far, client_order_id="warm")
            try:
                await client.outcome(cid, timeout=timeout)
            except NoAnswer as silent:
                raise TimeoutError(f"no answer to the warm-up order of {who}") from silent


def _pids_cpu(pids: dict[str, int]) -> dict[str, float | None]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


async def _read_log(venue: Venue, after: int) -> list[Entry]:
    log = RedisEventLog(venue.redis(OPERATOR_USER), venue.settings.keys)
    out: list[Entry] = []
    while page := await log.read(after, 5000):
        out.extend(page)
        after = page[-1].seq
    return out


async def _cleanup(settings: Settings) -> None:
    venue = Venue(settings)
    try:
        for keys in settings.partition_keys:
            await wipe_prefix(venue.redis(ADMIN), keys)
    finally:
        await venue.aclose()


async def _local_redis_pid(settings: Settings) -> int | None:
    """The pid of a Redis this machine runs (started by the caller, say), for its CPU per order; None for
    a Redis elsewhere, whose process this machine cannot measure."""
    url = urlparse(settings.redis_url)
    if url.scheme != "unix" and url.hostname not in {"127.0.0.1", "localhost", "::1"}:
        return None
    admin = connect(settings, ADMIN)
    try:
        info = await admin.info("server")
        return int(info["process_id"])
    finally:
        await admin.aclose()


async def run_load(cfg: RunConfig, progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Start (or use) the services on a fresh prefix, run the plan, drain, read the log, clean up."""
    return (await _run(replace(cfg, partitions=1, loaded=0), progress))[0]


async def run_partitioned(cfg: RunConfig) -> list[RunResult]:
    """The exchange as `cfg.partitions` partitions, every process once per partition, all loaded at once:
    each partition gets its own clients, its own instruments and `cfg.rate / partitions` orders/s of the
    same kind of flow, measured as one run measures its venue (issue 17: the aggregate rate, and what a
    partition costs). With `cfg.loaded` < partitions, only the first `loaded` partitions get orders (at
    `cfg.rate / loaded` each) while the others' processes run idle: what idle partitions cost."""
    return await _run(cfg, None)


async def _run(cfg: RunConfig, progress: Callable[[int, int], None] | None) -> list[RunResult]:
    """One run: the services of every partition, then each loaded partition's flow at once, one result
    each (`progress` follows a single partition's flow)."""
    n, loaded = cfg.partitions, cfg.loaded or cfg.partitions
    prefix = cfg.prefix or fresh_prefix()
    settings = private_settings(
        LOADTEST_HOME, prefix=prefix, partitions=n, **({"redis_url": cfg.redis_url} if cfg.redis_url else {})
    )
    share = replace(cfg, rate=cfg.rate / loaded, clients=max(1, cfg.clients // loaded))
    count = None if cfg.count is None else cfg.count // loaded
    plan = schedule(share.rate, duration_s=cfg.duration_s, count=count)
    names = client_names(share.clients, tag=prefix.rpartition("-")[2])
    groups = [[f"{name}p{p}" for name in names] for p in range(1, loaded + 1)] if n > 1 else [names]
    async with services_on(settings, cfg.start_services, clean_up=not cfg.prefix) as pids:
        venues = [Venue(settings.in_partition(p)) for p in range(1, loaded + 1)]
        try:
            for venue, group in zip(venues, groups, strict=True):
                await seed(venue, group, cfg.instruments)
                await _warm_up(venue, group, symbols(cfg.instruments), timeout=60)
            # Signed now, each stamped with its planned send time (the venue's window is around it); a
            # second each to sign them.
            start_ms = time.time_ns() // 1_000_000 + 1_000 * loaded
            flows = [
                build_flow(
                    len(plan), share.clients, cfg.instruments, parse_mix(cfg.mix), cfg.seed + p,
                    signing_keys=[venue.credentials[w].signing_key for w in group], venue=settings.venue,
                    sent_ms=[start_ms + offset // 1_000_000 for offset in plan.offsets_ns], names=group,
                )
                for p, (venue, group) in enumerate(zip(venues, groups, strict=True))
            ]  # fmt: skip
            followed = progress if loaded == 1 else None
            with no_gc_pauses():
                return list(await asyncio.gather(*(
                    _measure(venue, share, group, plan.offsets_ns, flow, pids, followed)
                    for venue, group, flow in zip(venues, groups, flows, strict=True)
                )))  # fmt: skip
        finally:
            for venue in venues:
                await venue.offboard()
                await venue.aclose()


async def _drain(book: LatencyBook, drain_s: float) -> None:
    """Until every order is answered or `drain_s` passed, then a moment for the settlements."""
    deadline = time.monotonic() + drain_s
    while book.unanswered() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # settlements trail their trades


async def _measure(
    venue: Venue,
    cfg: RunConfig,
    names: list[str],
    offsets: list[int],
    flow: list[Any],
    pids: dict[str, int],
    progress: Callable[[int, int], None] | None,
) -> RunResult:
    """Each client sends on its own stream and reads its own reports, logged in as itself."""
    settings = venue.settings
    book, lag = LatencyBook(), new_histogram()
    start_seq = (await RedisEventLog(venue.redis(OPERATOR_USER), settings.keys).head())[0]
    connections = [RespClient.like(venue.participant_redis(venue.credentials[who])) for who in names]
    owner = {settings.keys.reports(who): who for who in names}

    def on_row(key: str, data: bytes, received: int) -> None:
        book.on_report(owner[key], _json.decode(data), received)

    stop = asyncio.Event()
    readers = [
        asyncio.create_task(read_streams(resp, [settings.keys.reports(who)], on_row, stop))
        for resp, who in zip(connections, names, strict=True)
    ]
    clock = Clock()
    for i, order in enumerate(flow):
        book.expect(names[order.client], order.client_order_id, clock.wall_of(offsets[i]), order.cancels)
    admin = venue.redis(ADMIN)
    stats0 = await command_stats(admin)
    cpu0, t0 = {**_pids_cpu(pids), "loadgen": time.process_time()}, time.perf_counter()
    sent_done = 0

    def tick(n: int) -> None:
        nonlocal sent_done
        sent_done += n
        if progress is not None:
            progress(sent_done, len(flow))

    senders = [(resp, settings.keys.commands(who)) for resp, who in zip(connections, names, strict=True)]
    payloads, targets = [o.payload for o in flow], [o.client for o in flow]
    caught_up: asyncio.Task[dict[str, float | None]] | None = None
    try:
        send_s = await send_open_loop(senders, targets, payloads, offsets, clock, lag, tick)
        cpu1, wall = {**_pids_cpu(pids), "loadgen": time.process_time()}, time.perf_counter() - t0
        stats1 = await command_stats(admin)
        operator = venue.redis(OPERATOR_USER)
        head = (await RedisEventLog(operator, settings.keys).head())[0]
        caught_up = asyncio.create_task(_caught_up(operator, settings.keys, head, cfg.drain_s + 10))
        await _drain(book, cfg.drain_s)
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM: the readers end before the services stop
        stop.set()
        if caught_up is not None:
            caught_up.cancel()
        await asyncio.gather(*readers, *([caught_up] if caught_up else []), return_exceptions=True)
        raise
    stop.set()
    await asyncio.gather(*readers)
    for resp in connections:
        await resp.aclose()
    book.record_unanswered(time.time_ns())
    entries = await _read_log(venue, start_seq)
    result = RunResult(
        cfg, settings.prefix, len(flow), send_s, book, lag,
        stage_histograms(entries, book.match_seqs), cpu_shares(cpu0, cpu1, wall),
    )  # fmt: skip
    result.extra["log_entries"] = len(entries)
    # Over the sending window, as the CPU figures (work trailing it is left out of both).
    result.extra["redis_per_order"] = per_order(stats0, stats1, len(flow))
    result.extra["caught_up_s"] = await caught_up
    result.extra["load_average"] = os.getloadavg()
    return result
