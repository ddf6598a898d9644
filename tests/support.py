"""Test helpers: eventually(), a fake clock and sample log entries."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import msgspec

from shared.crypto import SealedSecret
from shared.domain.events import InstrumentHalted
from shared.eventlog.entry import NewEntry

__all__ = ["SEALED_KEY", "FakeClock", "eventually", "new_entries"]


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, interval: float = 0.01
) -> None:
    """Wait until `predicate` (sync or async) holds; fail with AssertionError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


class FakeClock:
    """A deterministic nanosecond clock: each call advances by `step`."""

    def __init__(self, start: int = 1_700_000_000_000_000_000, step: int = 1_000) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def new_entries(
    count: int, *, start: int = 1, tag: str = "ev", kind: str = "InstrumentHalted"
) -> list[NewEntry]:
    """`count` distinct entries whose bodies are real encoded events (so they decode for display);
    `kind` relabels their type, for tests about routing by type that never decode the body."""
    return [
        NewEntry(
            event_id=f"{tag}/c{i}/0",
            causation=f"in:{tag}:{i}-0",
            type=kind,
            event_ns=1_000 * i,
            body=msgspec.msgpack.encode(InstrumentHalted(instrument=f"SZEA-{i}")),
        )
        for i in range(start, start + count)
    ]


# A sealed key for ParticipantRegistered events fed to cores that never open it (only intake does).
SEALED_KEY = SealedSecret(key_id="k1", fingerprint="0" * 16, nonce="00" * 12, ciphertext="00" * 32)
