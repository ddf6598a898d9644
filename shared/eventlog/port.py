"""The EventLog port: an append-only, gapless, hash-chained log; adapters live beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.eventlog.effects import Effect
from shared.eventlog.entry import Entry, NewEntry

__all__ = ["DuplicateAppend", "EventLog", "LogCorrupt", "LogFenced"]


class DuplicateAppend(Exception):  # noqa: N818  -- named as the fact, like events
    """The producer already appended up to (or past) this position: the batch is refused whole."""


class LogFenced(Exception):  # noqa: N818  -- named as the fact, like events
    """Another writer moved the head past what the caller expected (`expect_seq`): nothing was written."""


class LogCorrupt(Exception):  # noqa: N818  -- named as the fact, like events
    """An entry breaks the sequence or the hash chain; `seq` names the first bad one."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"log entry seq={seq} is bad: {reason}")
        self.seq = seq
        self.reason = reason


class LogReader(Protocol):
    """Reading the log, all that a reader that never appends needs (snapshot checks, replay, audit)."""

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        """Up to `limit` entries after `after_seq`, in order (none after the head)."""
        ...


class EventLog(Protocol):
    async def append(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        *,
        position: str | None = None,
        expect_seq: int | None = None,
        effects: Sequence[Effect] = (),
    ) -> list[Entry]:
        """Append atomically, all or nothing, after the current head (with `effects`, where the log can
        run them: shared/eventlog/effects.py).

        `position` (a sortable string) makes the append idempotent per producer: it must be greater
        than the producer's last position, else DuplicateAppend. `expect_seq` fences: if the head is
        not exactly that seq, LogFenced and nothing is written. Without it, the batch goes after
        whatever the head is when the log takes it (concurrent writers never refuse each other).
        """
        ...

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        """Entries with seq > after_seq, in order, at most `limit`."""
        ...

    async def follow(self, after_seq: int, limit: int = 1000, block_ms: int = 100) -> list[Entry]:
        """Like read, but waits up to block_ms for new entries when there are none."""
        ...

    async def append_then_follow(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        *,
        position: str,
        after_seq: int,
        limit: int,
        block_ms: int,
        effects: Sequence[Effect] = (),
    ) -> tuple[list[Entry], list[Entry]]:
        """append(producer, entries, position=position), then follow(after_seq, limit, block_ms): what a
        follower does after every batch; an adapter may do both in one round trip. Returns both results.
        `effects`: run atomically with the append (shared/eventlog/effects.py), where the log can."""
        ...

    async def head(self) -> tuple[int, bytes]:
        """(seq, hash) of the last entry; (0, GENESIS_HASH) when empty."""
        ...

    async def position(self, producer: str) -> str:
        """The producer's last appended position, or "" if it never appended one."""
        ...

    async def import_entries(self, entries: Sequence[Entry]) -> None:
        """Load already-sealed entries (from an archive) into an empty log, verifying the chain."""
        ...
