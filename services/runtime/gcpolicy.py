"""Garbage-collector policy for the services: no full collection in the middle of the order flow.

CPython's automatic full (generation 2) collection walks every tracked object; in a service holding a
book or a ledger it stalled the process for 30-80 ms at random moments under load (measured with
gc.callbacks during `greenex loadtest`, see loadtests/RESULTS.md). After start-up the objects that
exist (modules, the framework, the rebuilt state) are frozen out of collection, young generations are
collected as usual, and the full collection runs on a timer instead, so its pause is bounded by what
was created since and comes at a known rate.
"""

from __future__ import annotations

import asyncio
import gc

__all__ = ["FULL_COLLECTION_EVERY_S", "collect_periodically", "freeze_startup_objects"]

FULL_COLLECTION_EVERY_S = 60.0
_NEVER = 1_000_000_000  # generation-2 threshold: the automatic full collection never triggers


def freeze_startup_objects() -> None:
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)


async def collect_periodically(every_s: float = FULL_COLLECTION_EVERY_S) -> None:
    """Reference cycles that outlived the young generations are freed here (a task; cancel to stop)."""
    while True:
        await asyncio.sleep(every_s)
        gc.collect()
