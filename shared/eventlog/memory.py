"""In-memory EventLog adapter: a first-class implementation for unit, contract and determinism tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from shared.eventlog.auth import IN_MEMORY_KEYS, ProducerKeys
from shared.eventlog.effects import Effect
from shared.eventlog.entry import (
    GENESIS_HASH,
    Entry,
    NewEntry,
    content_digest,
    encode_content,
    entry_of,
    link_hash,
)
from shared.eventlog.port import DuplicateAppend, LogCorrupt, LogFenced
from shared.eventlog.verify import ChainVerifier

__all__ = ["InMemoryEventLog"]


class InMemoryEventLog:
    """The EventLog port over a list; with a fixed `clock`, equal inputs give byte-identical logs."""

    def __init__(
        self, clock: Callable[[], int] = time.time_ns, producer_keys: ProducerKeys = IN_MEMORY_KEYS
    ) -> None:
        self._clock = clock
        self.producer_keys = producer_keys
        self._entries: list[Entry] = []
        self._positions: dict[str, str] = {}
        # Replaced on every append, so each follower waits on the event of the head it saw.
        self._grown = asyncio.Event()

    async def append(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        *,
        position: str | None = None,
        expect_seq: int | None = None,
        effects: Sequence[Effect] = (),
    ) -> list[Entry]:
        if position == "":
            raise ValueError("a position must be a non-empty string")
        if effects:
            raise ValueError("effects are Redis commands: an in-memory log cannot run them")
        # No await before the last write: the whole batch lands atomically within the event loop.
        head_seq, head_hash = self._head()
        if expect_seq is not None and expect_seq != head_seq:
            raise LogFenced(f"expected head seq {expect_seq}, found {head_seq}")
        if position is not None and position <= self._positions.get(producer, ""):
            raise DuplicateAppend(f"{producer} already appended position {self._positions[producer]!r}")
        logged_ns = self._clock()
        sealed: list[Entry] = []
        for seq, new in enumerate(entries, start=head_seq + 1):
            content = self.producer_keys.content(new, producer, logged_ns)
            link = link_hash(head_hash, seq, content_digest(encode_content(content)))
            sealed.append(entry_of(content, seq=seq, prev_hash=head_hash, hash=link))
            head_hash = link
        self._extend(sealed)
        if position is not None:
            self._positions[producer] = position
        return sealed

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        # seq n sits at index n - 1 because seqs are gapless from 1.
        start = max(after_seq, 0)
        return self._entries[start : start + limit]

    async def read_checked(self, after_seq: int, limit: int) -> tuple[list[Entry], LogCorrupt | None]:
        return await self.read(after_seq, limit), None

    async def follow(self, after_seq: int, limit: int = 1000, block_ms: int = 100) -> list[Entry]:
        """Like read, waiting up to block_ms for entries; block_ms <= 0 never waits (unlike XREAD's 0)."""
        if after_seq >= len(self._entries) and block_ms > 0:
            try:
                await asyncio.wait_for(self._grown.wait(), block_ms / 1000)
            except TimeoutError:
                return []
        return await self.read(after_seq, limit)

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
        appended = await self.append(producer, entries, position=position, effects=effects)
        return appended, await self.follow(after_seq, limit, block_ms)

    async def head(self) -> tuple[int, bytes]:
        return self._head()

    async def position(self, producer: str) -> str:
        return self._positions.get(producer, "")

    async def import_entries(self, entries: Sequence[Entry]) -> None:
        """Load sealed entries after the current head, all or nothing; producer positions are not
        rebuilt, since a position names a producer's input, which the entries do not record."""
        head_seq, head_hash = self._head()
        verifier = ChainVerifier(start_seq=head_seq + 1, prev_hash=head_hash)
        for entry in entries:
            verifier.check(entry)
        self._extend(list(entries))

    def _head(self) -> tuple[int, bytes]:
        if not self._entries:
            return 0, GENESIS_HASH
        last = self._entries[-1]
        return last.seq, last.hash

    def _extend(self, entries: list[Entry]) -> None:
        if not entries:
            return
        self._entries.extend(entries)
        self._grown.set()
        self._grown = asyncio.Event()
