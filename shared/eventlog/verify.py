"""Hash-chain verification: gapless seq, prev_hash links and recomputed hashes, in constant memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import msgspec

from shared.eventlog.entry import GENESIS_HASH, Entry, entry_hash
from shared.eventlog.port import LogCorrupt

__all__ = ["ChainVerifier", "PagedReader", "VerifyReport", "recompute_hash", "verify_entries", "verify_log"]


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    count: int  # entries checked and found good before the first bad one
    head_seq: int  # the last good entry
    head_hash: str  # hex of the last good entry's hash
    first_bad_seq: int | None = None
    reason: str = ""


def recompute_hash(entry: Entry) -> bytes:
    return entry_hash(
        entry.prev_hash,
        entry.seq,
        entry.event_id,
        entry.causation,
        entry.producer,
        entry.type,
        entry.event_ns,
        entry.logged_ns,
        entry.body,
    )


class ChainVerifier:
    """Checks entries one at a time, so a log or archive of any size verifies without holding it."""

    def __init__(self, *, start_seq: int = 1, prev_hash: bytes = GENESIS_HASH) -> None:
        self.count = 0
        self.head_seq = start_seq - 1
        self.head_hash = prev_hash

    def check(self, entry: Entry) -> None:
        """Accept the next entry or raise LogCorrupt naming the first bad seq."""
        expected = self.head_seq + 1
        if entry.seq != expected:
            # Name the seq that should be here: a gap, a duplicate and a reorder all break it first.
            raise LogCorrupt(expected, f"sequence gap: expected seq {expected}, found {entry.seq}")
        if entry.prev_hash != self.head_hash:
            raise LogCorrupt(entry.seq, "prev_hash does not link to the previous entry")
        if recompute_hash(entry) != entry.hash:
            raise LogCorrupt(entry.seq, "hash mismatch")
        self.count += 1
        self.head_seq = entry.seq
        self.head_hash = entry.hash

    def report(self, bad: LogCorrupt | None = None) -> VerifyReport:
        if bad is None:
            return VerifyReport(
                ok=True, count=self.count, head_seq=self.head_seq, head_hash=self.head_hash.hex()
            )
        return VerifyReport(
            ok=False,
            count=self.count,
            head_seq=self.head_seq,
            head_hash=self.head_hash.hex(),
            first_bad_seq=bad.seq,
            reason=bad.reason,
        )


def verify_entries(
    entries: Iterable[Entry], *, start_seq: int = 1, prev_hash: bytes = GENESIS_HASH
) -> VerifyReport:
    """Verify a run of entries that should start at `start_seq` and link to `prev_hash`."""
    verifier = ChainVerifier(start_seq=start_seq, prev_hash=prev_hash)
    try:
        for entry in entries:
            verifier.check(entry)
    except LogCorrupt as bad:
        return verifier.report(bad)
    return verifier.report()


class PagedReader(Protocol):
    async def read_checked(self, after_seq: int, limit: int) -> tuple[list[Entry], LogCorrupt | None]:
        """The good entries after `after_seq`, and the fault that stopped the page early, if any."""
        ...


async def verify_log(log: PagedReader, *, page: int = 1000) -> VerifyReport:
    """Verify a whole log page by page, including entries its storage cannot decode."""
    verifier = ChainVerifier()
    while True:
        entries, fault = await log.read_checked(verifier.head_seq, page)
        try:
            for entry in entries:
                verifier.check(entry)
        except LogCorrupt as bad:
            return verifier.report(bad)
        if fault is not None:
            return verifier.report(fault)
        if len(entries) < page:
            return verifier.report()
