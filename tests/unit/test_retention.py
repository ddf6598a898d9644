"""Where the cut goes, and the archives + stream read as one log."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.retention import choose_cut
from shared.eventlog.archive import write_archive
from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt
from shared.eventlog.segments import ArchiveDir, HistoryLog, segment_name
from shared.eventlog.verify import verify_entries
from tests.unit.test_eventlog_archive import filled_log


def test_the_cut_follows_a_signed_entry_below_every_snapshot_and_before() -> None:
    snapshots = {"matching": 900, "intake": 700, "settlement": 1200}
    signed = [99, 199, 650, 699, 800]
    assert choose_cut(1000, snapshots, signed) == (700, "intake's newest snapshot (seq 700)")
    assert choose_cut(500, snapshots, [99, 199, 650]) == (200, "--before")
    assert choose_cut(1000, {"intake": 50}, [99]) == (0, "no signed checkpoint below intake's newest "
                                                         "snapshot (seq 50) at 50")  # fmt: skip


class _Stream:
    """The part still in Redis: entries from some seq on."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        return [e for e in self.entries if e.seq > after_seq][:limit]

    async def read_checked(self, after_seq: int, limit: int) -> tuple[list[Entry], LogCorrupt | None]:
        return await self.read(after_seq, limit), None

    async def head(self) -> tuple[int, bytes]:
        return self.entries[-1].seq, self.entries[-1].hash


def _archive(tmp_path: Path, entries: list[Entry], *cuts: int) -> ArchiveDir:
    """Segments [1, cuts[0]), [cuts[0], cuts[1]), ...; the rest is the stream's."""
    start = 1
    for cut in cuts:
        write_archive(tmp_path / segment_name(start, cut - 1), entries[start - 1 : cut - 1])
        start = cut
    return ArchiveDir(tmp_path)


async def sealed_log(count: int) -> list[Entry]:
    return await (await filled_log(count)).read(0, count)


async def test_history_reads_segments_then_the_stream_as_one_log(tmp_path: Path) -> None:
    entries = await sealed_log(300)
    history = HistoryLog(_archive(tmp_path, entries, 101, 201), _Stream(entries[200:]))
    got, after = [], 0
    while page := await history.read(after, 37):  # pages that straddle both ends of every segment
        got += page
        after = page[-1].seq
    assert got == entries
    assert verify_entries(got).ok
    assert await history.read(150, 3) == entries[150:153]  # a jump back restarts the segment's read


async def test_entries_in_neither_place_are_named(tmp_path: Path) -> None:
    entries = await sealed_log(300)
    history = HistoryLog(_archive(tmp_path, entries, 101), _Stream(entries[150:]))
    assert len(await history.read(0, 100)) == 100  # the segment itself reads
    with pytest.raises(LogCorrupt, match=r"entries 101\.\.150 are in neither") as bad:
        await history.read(100, 1000)
    assert bad.value.seq == 101


async def test_segments_must_join_up(tmp_path: Path) -> None:
    entries = await sealed_log(300)
    write_archive(tmp_path / segment_name(1, 100), entries[:100])
    write_archive(tmp_path / segment_name(151, 200), entries[150:200])
    with pytest.raises(LogCorrupt, match="do not hold seq 101"):
        ArchiveDir(tmp_path).segments()
    assert ArchiveDir(tmp_path / "none").last_seq == 0


async def test_a_damaged_segment_names_its_seq(tmp_path: Path) -> None:
    entries = await sealed_log(300)
    archives = _archive(tmp_path, entries, 101, 201)
    segment = archives.segments()[1].path
    data = bytearray(segment.read_bytes())
    data[-5] ^= 0xFF  # the last entry of the second segment: seq 200
    segment.write_bytes(bytes(data))
    history = HistoryLog(archives, _Stream(entries[200:]))
    good, fault = await history.read_checked(100, 200)
    assert good == []
    assert fault is not None
    assert fault.seq == 200
