"""The shape every log-following core has: a deterministic fold over the log that may answer."""

from __future__ import annotations

from typing import Protocol, TypeVar

from shared.domain.codec import Event

__all__ = ["Processor", "restored"]


class Processor(Protocol):
    """A service's pure core, as the runtime drives it.

    The runtime feeds it every log entry whose type is in `inputs`, in log order, skipping entries the
    core produced itself. `decide` folds the entry into the state and returns the events it decides,
    already applied to its own state (so its later decisions see them before they land in the log).
    Same log, same outputs: after a crash the runtime re-runs `decide` from seq 0 (or a snapshot) and
    drops the outputs the log already holds.
    """

    name: str  # the producer name its events carry in the log
    inputs: frozenset[str]  # event type tags it reads; others are skipped without decoding
    # The inputs it may answer: only these ring its reader's bell (see shared/eventlog/redis_log.Bells).
    # The rest only change its state; they are folded, in log order, when the next of these arrives or
    # within the follower's block_ms, which is all a later decision needs.
    answers_to: frozenset[str]

    def decide(self, seq: int, event_ns: int, event: Event) -> list[Event]: ...

    def snapshot(self) -> bytes:
        """The whole state, canonically encoded: equal states give equal bytes."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the state with one `snapshot` wrote; raise ValueError (or an invariant error) if the
        bytes cannot be trusted, leaving the state as it was."""
        ...

    def digest(self) -> str:
        """A hash of the state, for comparing a live core with a replayed one."""
        ...


P = TypeVar("P", bound=Processor)


def restored(core: P, data: bytes) -> P:
    """`core` with the state of a snapshot loaded: `restored(Settlement(), data)`."""
    core.restore(data)
    return core
