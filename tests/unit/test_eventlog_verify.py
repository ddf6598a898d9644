"""verify_entries: gapless seq, prev_hash links and recomputed hashes, naming the first bad seq."""

from __future__ import annotations

import asyncio

import msgspec

from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.entry import (
    GENESIS_HASH,
    Entry,
    NewEntry,
    content_digest,
    encode_content,
    entry_of,
    link_hash,
)
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.verify import verify_entries
from tests.support import FakeClock, new_entries


def seal(new: NewEntry, *, seq: int, producer: str, logged_ns: int, prev_hash: bytes) -> Entry:
    """An entry sealed at `seq` as the log would seal it (tagged with the in-memory log's keys)."""
    content = IN_MEMORY_KEYS.content(new, producer, logged_ns)
    link = link_hash(prev_hash, seq, content_digest(encode_content(content)))
    return entry_of(content, seq=seq, prev_hash=prev_hash, hash=link)


def chain(count: int) -> list[Entry]:
    log = InMemoryEventLog(clock=FakeClock())
    asyncio.run(log.append("p", new_entries(count)))
    return asyncio.run(log.read(0, count))


def test_good_chain_reports_head() -> None:
    """A good chain reports its count and head."""
    entries = chain(6)
    report = verify_entries(entries)
    assert report.ok
    assert (report.count, report.head_seq, report.head_hash) == (6, 6, entries[-1].hash.hex())
    assert (report.first_bad_seq, report.reason) == (None, "")


def test_empty_chain() -> None:
    """Nothing to check is fine and reports the genesis head."""
    report = verify_entries([])
    assert (report.ok, report.count, report.head_seq, report.head_hash) == (True, 0, 0, GENESIS_HASH.hex())


def test_continues_from_a_given_head() -> None:
    """A tail of the log verifies against the entry before it."""
    entries = chain(6)
    assert verify_entries(entries[3:], start_seq=4, prev_hash=entries[2].hash).count == 3
    assert verify_entries(entries[3:], start_seq=4, prev_hash=GENESIS_HASH).first_bad_seq == 4


def test_each_kind_of_damage_names_its_seq() -> None:
    """A changed field, a broken link, a gap and a reorder each name the exact seq."""
    entries = chain(6)
    body = [*entries[:3], msgspec.structs.replace(entries[3], body=b"\x90"), *entries[4:]]
    resealed = seal(new_entries(1, start=9)[0], seq=4, producer="p", logged_ns=1, prev_hash=entries[2].hash)
    relinked = [*entries[:3], resealed, *entries[4:]]
    gap = entries[:2] + entries[3:]
    swapped = [*entries[:1], entries[2], entries[1], *entries[3:]]
    cases = [
        (body, 4, "hash mismatch"),
        ([msgspec.structs.replace(entries[0], producer="x"), *entries[1:]], 1, "hash mismatch"),
        (relinked, 5, "prev_hash does not link to the previous entry"),
        (gap, 3, "sequence gap: expected seq 3, found 4"),
        (swapped, 2, "sequence gap: expected seq 2, found 3"),
    ]
    for damaged, seq, reason in cases:
        report = verify_entries(damaged)
        assert (report.ok, report.first_bad_seq, report.reason, report.count) == (False, seq, reason, seq - 1)
        assert report.head_hash == (damaged[seq - 2].hash if seq > 1 else GENESIS_HASH).hex()
