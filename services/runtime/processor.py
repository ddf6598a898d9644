"""The shape every log-following service core has: a deterministic fold over the log that may answer."""

from __future__ import annotations

from typing import Protocol

from shared.domain.codec import Event

__all__ = ["Processor"]


class Processor(Protocol):
    """A service's pure core.

    The runtime feeds it every log entry whose type is in `inputs`, in log order, skipping entries the
    processor produced itself. `process` updates the state and returns the events it decides, already
    applied to its own state (so its later decisions see them before they land in the log). Same log,
    same outputs: after a crash the runtime re-runs `process` from seq 0 (or a snapshot) and drops the
    outputs the log already holds.
    """

    name: str  # the producer name its events carry in the log
    inputs: frozenset[str]  # event type tags it reads; others are skipped without decoding
    # The inputs it may answer: only these wake its follower (see RedisEventLog.wake_on). The rest only
    # change its state; they are folded, in log order, when the next of these arrives or within the
    # follower's block_ms, which is all a later decision needs.
    answers_to: frozenset[str]

    def process(self, seq: int, event_ns: int, event: Event) -> list[Event]: ...
