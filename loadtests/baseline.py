"""The physical floor: open-loop round trips through chains of bare stream hops, each relay its own process.

greenex's path from an order to its trade report crosses five streams and four service processes:
client -> `in` -> intake -> `log` -> verification -> `log` -> matching -> `log` -> intake's reporter ->
`out:<participant>` -> client. The chain baseline is the same: five streams, four relay processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from loadtests.openloop import new_histogram, schedule
from loadtests.relay import URL_VARIABLE
from loadtests.sender import Clock, no_gc_pauses, read_streams, send_open_loop
from services.cli.supervisor import ROOT
from shared.resp import RespClient

__all__ = ["GREENEX_HOPS", "HopResult", "run_chain"]

GREENEX_HOPS = 5  # stream hops on the order -> trade report path (4 service processes in between)


@dataclass
class HopResult:
    hops: int
    relays: int
    rate: float
    latency: HdrHistogram
    lost: int


async def run_chain(url: str, hops: int, rate: float = 1000.0, duration_s: float = 4.0) -> HopResult:
    """Send at `rate` into stream 0; `hops - 1` relays carry it to stream `hops - 1`, which we read."""
    tag = f"greenex-lt-hop-{secrets.token_hex(3)}"
    keys = [f"{tag}:s{i}" for i in range(hops)]
    relays = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loadtests.relay",
            keys[i],
            keys[i + 1],
            cwd=ROOT,
            env={**os.environ, URL_VARIABLE: url},  # its login: never in argv, which `ps` shows to all
        )
        for i in range(hops - 1)
    ]
    redis = Redis.from_url(url)
    try:
        with no_gc_pauses():
            return await _measure(redis, keys, hops, rate, duration_s)
    finally:
        for proc in relays:
            proc.terminate()
            await proc.wait()
        await redis.delete(*keys)
        await redis.aclose()


async def _measure(redis: Redis, keys: list[str], hops: int, rate: float, duration_s: float) -> HopResult:
    await _wait_for_groups(redis, keys[:-1])
    plan = schedule(rate, duration_s=duration_s)
    payloads = [str(i).encode() for i in range(len(plan))]
    clock = Clock()
    latency, lag = new_histogram(), new_histogram()
    seen: set[int] = set()

    def on_row(_key: str, data: bytes, received: int) -> None:
        i = int(data)
        seen.add(i)
        latency.record_value(max(1_000, received - clock.wall_of(plan.offsets_ns[i])))

    stop = asyncio.Event()
    resp = RespClient.like(redis)
    try:
        reader = asyncio.create_task(read_streams(resp, keys[-1:], on_row, stop))
        await send_open_loop([(resp, keys[0])], [0] * len(payloads), payloads, plan.offsets_ns, clock, lag)
        deadline = time.monotonic() + 5
        while len(seen) < len(plan) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await reader
    finally:
        await resp.aclose()
    return HopResult(hops, hops - 1, rate, latency, len(plan) - len(seen))


async def _wait_for_groups(redis: Redis, keys: list[str]) -> None:
    """Each relay creates its group at start: sending before that would lose nothing but time the start."""
    for _ in range(200):
        ready = 0
        for key in keys:
            with contextlib.suppress(ResponseError):  # the stream does not exist yet
                ready += bool(await redis.xinfo_groups(key))
        if ready == len(keys):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("relays did not start")
