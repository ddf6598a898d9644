"""The open-loop sender and the one-task report reader shared by the live test and the bare-hop baseline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from hdrh.histogram import HdrHistogram
from redis.asyncio import Redis

from loadtests.openloop import due_until

__all__ = ["Clock", "read_streams", "send_open_loop"]

_TICK_S = 0.001  # the scheduling tick: everything due is sent in one pipeline per tick


class Clock:
    """One start instant on both clocks: perf_counter for scheduling, wall time to compare with Redis/log."""

    def __init__(self) -> None:
        self.perf0 = time.perf_counter_ns()
        self.wall0 = time.time_ns()

    def elapsed_ns(self) -> int:
        return time.perf_counter_ns() - self.perf0

    def wall_of(self, offset_ns: int) -> int:
        return self.wall0 + offset_ns


async def send_open_loop(
    redis: Redis,
    key: str,
    payloads: Sequence[bytes],
    offsets_ns: Sequence[int],
    clock: Clock,
    lag: HdrHistogram,
    progress: Callable[[int], None] | None = None,
) -> float:
    """XADD payload i at offset i (pipelined per tick); record how late each batch left; return seconds.

    The plan never waits for answers (open loop): when Redis or this process stalls, the orders due
    meanwhile go out together in the next pipeline and their latency counts from their planned time.
    """
    cursor, n = 0, len(payloads)
    while cursor < n:
        now = clock.elapsed_ns()
        end = due_until(offsets_ns, cursor, now)
        if end == cursor:
            await asyncio.sleep(min(_TICK_S, (offsets_ns[cursor] - now) / 1e9))
            continue
        pipe = redis.pipeline(transaction=False)
        for i in range(cursor, end):
            pipe.execute_command("XADD", key, "*", "data", payloads[i])
        await pipe.execute()
        lag.record_value(max(1_000, clock.elapsed_ns() - offsets_ns[cursor]))
        if progress is not None:
            progress(end - cursor)
        cursor = end
    return clock.elapsed_ns() / 1e9


async def read_streams(
    redis: Redis,
    keys: Sequence[str],
    on_row: Callable[[str, bytes, int], None],
    stop: asyncio.Event,
    count: int = 2000,
    block_ms: int = 20,
) -> int:
    """XREAD every key in one call until `stop`; `on_row(key, data, received wall ns)`; return rows read.

    One reader for all clients keeps the load generator to one blocked connection and one decode loop.
    """
    ids: dict[Any, Any] = dict.fromkeys(keys, "0-0")
    rows_read = 0
    while not stop.is_set():
        reply: Any = await redis.xread(ids, count=count, block=block_ms)
        if not reply:
            continue
        now = time.time_ns()
        for raw_key, rows in reply:
            key = raw_key.decode()
            for _, fields in rows:
                on_row(key, fields[b"data"], now)
            ids[key] = rows[-1][0]
            rows_read += len(rows)
    return rows_read
