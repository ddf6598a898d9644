"""The open-loop sender and the one-task report reader shared by the live test and the bare-hop baseline."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hdrh.histogram import HdrHistogram

from loadtests.openloop import due_until
from shared.eventlog.redis_wire import fields_of
from shared.resp import Command, RespClient

__all__ = ["Clock", "no_gc_pauses", "read_streams", "send_open_loop"]

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


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """No cyclic collection in the generator while it measures: its own full collections (20-70 ms,
    measured with gc.callbacks) would be counted as the exchange's latency. A run is bounded, so the
    garbage waits for the end."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def send_open_loop(
    senders: Sequence[tuple[RespClient, str]],
    targets: Sequence[int],
    payloads: Sequence[bytes],
    offsets_ns: Sequence[int],
    clock: Clock,
    lag: HdrHistogram,
    progress: Callable[[int], None] | None = None,
) -> float:
    """XADD payload i at offset i to the stream of sender `targets[i]` (each sender a connection logged
    in as itself, and its stream), pipelined per tick and sender; record how late each batch left;
    return seconds.

    The plan never waits for answers (open loop): when Redis or this process stalls, the orders due
    meanwhile go out together in the next pipeline and their latency counts from their planned time.
    The lean client keeps the generator's own CPU, which the exchange shares the cores with, small.
    """
    cursor, n = 0, len(payloads)
    while cursor < n:
        now = clock.elapsed_ns()
        end = due_until(offsets_ns, cursor, now)
        if end == cursor:
            await asyncio.sleep(min(_TICK_S, (offsets_ns[cursor] - now) / 1e9))
            continue
        due: dict[int, list[Command]] = {}
        for i in range(cursor, end):
            due.setdefault(targets[i], []).append(("XADD", senders[targets[i]][1], "*", "data", payloads[i]))
        await asyncio.gather(*(senders[target][0].execute(commands) for target, commands in due.items()))
        lag.record_value(max(1_000, clock.elapsed_ns() - offsets_ns[cursor]))
        if progress is not None:
            progress(end - cursor)
        cursor = end
    return clock.elapsed_ns() / 1e9


async def read_streams(
    redis: RespClient,
    keys: Sequence[str],
    on_row: Callable[[str, bytes, int], None],
    stop: asyncio.Event,
    count: int = 2000,
    block_ms: int = 20,
) -> int:
    """XREAD every key in one call until `stop`; `on_row(key, data, received wall ns)`; return rows read.

    One call for all the keys one connection may read keeps the generator's blocked connections and
    decode loops few (with ACLs on, each client reads its own report stream as itself: one reader each).
    """
    ids: dict[str, bytes] = dict.fromkeys(keys, b"0-0")
    rows_read = 0
    while not stop.is_set():
        reply: Any = await redis.call(
            "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", *ids, *ids.values()
        )
        if not reply:
            continue
        now = time.time_ns()
        for raw_key, rows in reply:
            key = raw_key.decode()
            for _, fields in rows:
                on_row(key, fields_of(fields)[b"data"], now)
            ids[key] = rows[-1][0]
            rows_read += len(rows)
    return rows_read
