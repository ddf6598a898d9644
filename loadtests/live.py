"""One open-loop run against the real services: seed, send signed orders at a fixed rate, read reports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from hdrh.histogram import HdrHistogram
from redis.asyncio import Redis

from loadtests.cpu import cpu_per_order_us, cpu_seconds, cpu_shares
from loadtests.flow import REFERENCE_FEN, build_flow, client_names, parse_mix, secret_of, symbols
from loadtests.hdr import summary_ms
from loadtests.openloop import LatencyBook, new_histogram, schedule
from loadtests.sender import Clock, no_gc_pauses, read_streams, send_open_loop
from loadtests.stages import stage_histograms
from services.cli.supervisor import ROOT, Supervisor, ensure_redis, wipe_prefix
from services.intake.service import operator_secret
from shared.client import ExchangeClient
from shared.config import Settings
from shared.domain.ledger import OPERATOR
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog
from shared.resp import RespClient

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
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = ""  # empty: a fresh one per run
    start_services: bool = True
    drain_s: float = 5.0


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


@contextlib.asynccontextmanager
async def services_on(settings: Settings, start: bool, *, clean_up: bool) -> AsyncIterator[dict[str, int]]:
    """The exchange's processes on `settings.prefix` (and a private Redis if none answers); yields pids.

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
    redis_proc = await ensure_redis(settings.redis_url, ROOT / "var" / "redis-loadtest", fresh=True)
    sup = Supervisor(
        env={
            "REDIS_URL": settings.redis_url,
            "GREENEX_PREFIX": settings.prefix,
            "GREENEX_LOG_LEVEL": "WARNING",
        },
        log_dir=ROOT / "var" / "log" / "loadtest",
    )
    await sup.start()
    watcher = asyncio.create_task(sup.watch())
    try:
        yield {name: proc.pid for name, proc in sup.procs.items()}
    finally:
        await sup.stop()
        watcher.cancel()
        if clean_up:
            await _cleanup(settings)
        if redis_proc is not None:
            redis_proc.terminate()
            await redis_proc.wait()


async def seed(redis: Redis, settings: Settings, clients: int, instruments: int) -> None:
    """Instruments and well-funded participants: the test measures the path, not the risk checks failing."""
    op = ExchangeClient(redis, OPERATOR, operator_secret(), settings.keys)
    ref = f"{REFERENCE_FEN // 100}.{REFERENCE_FEN % 100:02d}"
    for n, sym in enumerate(symbols(instruments)):
        await op.operator(
            "list_instrument", f"lt-i{n}", symbol=sym, kind="allowance", standard="SZEA",
            registry="Shenzhen ETS", vintage=2025, reference_price=ref,
        )  # fmt: skip
    serial = 1
    for who in client_names(clients):
        await op.operator(
            "register_participant", f"lt-r-{who}", participant=who, name=who, secret=secret_of(who)
        )
        await op.operator("deposit_cash", f"lt-d-{who}", participant=who, amount="1000000000.00")
        for sym in symbols(instruments):
            await op.operator(
                "issue_credits", f"lt-c-{who}-{sym}", participant=who, instrument=sym,
                serial_start=serial, serial_end=serial + 9_999_999,
            )  # fmt: skip
            serial += 10_000_000


async def _warm_up(
    redis: Redis, settings: Settings, names: list[str], syms: list[str], timeout: float
) -> None:
    """One far-from-the-market order per client, each answered: the services are up and caught up."""
    waiting = set(names)
    for who in names:
        client = ExchangeClient(redis, who, secret_of(who), settings.keys)
        await client.send(
            "new_order", client_order_id="warm", instrument=syms[0], side="buy",
            order_type="limit", price=f"{REFERENCE_FEN * 0.95 / 100:.2f}", quantity=1,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    owner = {settings.keys.reports(w): w for w in names}
    ids: dict[Any, Any] = dict.fromkeys(owner, "0-0")
    while waiting:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer to the warm-up order of {sorted(waiting)[:5]} ...")
        reply: Any = await redis.xread(ids, count=100, block=200)
        for key, rows in reply or []:
            waiting.discard(owner[key.decode()])
            ids[key.decode()] = rows[-1][0]


def _pids_cpu(pids: dict[str, int]) -> dict[str, float | None]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


async def _read_log(redis: Redis, settings: Settings, after: int) -> list[Entry]:
    log = RedisEventLog(redis, settings.keys)
    out: list[Entry] = []
    while page := await log.read(after, 5000):
        out.extend(page)
        after = page[-1].seq
    return out


async def _cleanup(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        await wipe_prefix(redis, settings.keys)
    finally:
        await redis.aclose()


async def run_load(cfg: RunConfig, progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Start (or use) the services on a fresh prefix, run the plan, drain, read the log, clean up."""
    prefix = cfg.prefix or fresh_prefix()
    settings = Settings(redis_url=cfg.redis_url, prefix=prefix)
    plan = schedule(cfg.rate, duration_s=cfg.duration_s, count=cfg.count)
    flow = build_flow(len(plan), cfg.clients, cfg.instruments, parse_mix(cfg.mix), cfg.seed)
    names = client_names(cfg.clients)
    async with services_on(settings, cfg.start_services, clean_up=not cfg.prefix) as pids:
        redis = Redis.from_url(cfg.redis_url)
        try:
            await seed(redis, settings, cfg.clients, cfg.instruments)
            await _warm_up(redis, settings, names, symbols(cfg.instruments), timeout=60)
            with no_gc_pauses():
                return await _measure(redis, settings, cfg, plan.offsets_ns, flow, pids, progress)
        finally:
            await redis.aclose()


async def _measure(
    redis: Redis,
    settings: Settings,
    cfg: RunConfig,
    offsets: list[int],
    flow: list[Any],
    pids: dict[str, int],
    progress: Callable[[int, int], None] | None,
) -> RunResult:
    names = client_names(cfg.clients)
    book, lag = LatencyBook(), new_histogram()
    start_seq = (await RedisEventLog(redis, settings.keys).head())[0]
    info: Any = await redis.info("server")
    pids = {**pids, "redis-server": int(info["process_id"])}
    out_keys = [settings.keys.reports(w) for w in names]
    owner = dict(zip(out_keys, names, strict=True))

    def on_row(key: str, data: bytes, received: int) -> None:
        book.on_report(owner[key], _json.decode(data), received)

    stop = asyncio.Event()
    resp = RespClient.like(redis)
    reader = asyncio.create_task(read_streams(resp, out_keys, on_row, stop))
    clock = Clock()
    for i, order in enumerate(flow):
        book.expect(names[order.client], order.client_order_id, clock.wall_of(offsets[i]), order.cancels)
    cpu0, t0 = {**_pids_cpu(pids), "loadgen": time.process_time()}, time.perf_counter()
    sent_done = 0

    def tick(n: int) -> None:
        nonlocal sent_done
        sent_done += n
        if progress is not None:
            progress(sent_done, len(flow))

    payloads = [o.payload for o in flow]
    send_s = await send_open_loop(resp, settings.keys.commands, payloads, offsets, clock, lag, tick)
    cpu1, wall = {**_pids_cpu(pids), "loadgen": time.process_time()}, time.perf_counter() - t0
    deadline = time.monotonic() + cfg.drain_s
    while book.unanswered() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # settlements trail their trades
    stop.set()
    await reader
    await resp.aclose()
    book.record_unanswered(time.time_ns())
    entries = await _read_log(redis, settings, start_seq)
    result = RunResult(
        cfg, settings.prefix, len(flow), send_s, book, lag,
        stage_histograms(entries, book.match_seqs), cpu_shares(cpu0, cpu1, wall),
    )  # fmt: skip
    result.extra["log_entries"] = len(entries)
    result.extra["load_average"] = os.getloadavg()
    return result
