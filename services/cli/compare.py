"""Name the first difference between a live core (from its snapshot) and the same core replayed."""

from __future__ import annotations

from services.runtime.processor import Processor
from services.runtime.system import System

__all__ = ["first_difference", "restore_core"]


def restore_core(system: System, name: str, state: bytes) -> Processor:
    core = system.core(name).make()
    core.restore(state)
    return core


def first_difference(system: System, live: Processor, replayed: Processor) -> str | None:
    """A readable first difference (an account, an order, a book), or None when the states are equal."""
    if live.digest() == replayed.digest():
        return None
    found = system.core(live.name).explain(live, replayed)
    return found or "the states differ in internal bookkeeping (no account or order differs)"
