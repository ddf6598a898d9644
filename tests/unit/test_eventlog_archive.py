"""Archives: a byte-identical round trip, and every damaged byte named by its entry's seq."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from shared.eventlog.archive import (
    MAGIC,
    export_log,
    import_archive,
    iter_archive,
    verify_archive,
    write_archive,
)
from shared.eventlog.entry import Entry
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.port import LogCorrupt
from tests.support import FakeClock, new_entries


async def filled_log(count: int = 20) -> InMemoryEventLog:
    log = InMemoryEventLog(clock=FakeClock())
    for start in range(1, count + 1, 3):
        await log.append(f"p{start % 2}", new_entries(min(3, count + 1 - start), start=start))
    return log


def frame_seq_of_each_byte(data: bytes) -> list[int]:
    """The seq whose frame holds each byte of an archive, walking its length fields; magic is seq 1."""
    owners = [1] * len(MAGIC)
    offset, seq = len(MAGIC), 0
    while offset < len(data):
        seq += 1
        (length,) = struct.unpack_from(">I", data, offset)
        owners += [seq] * (8 + length)
        offset += 8 + length
    assert len(owners) == len(data)
    return owners


async def test_round_trip_is_byte_identical(tmp_path: Path) -> None:
    """Export, import into a fresh log and export again: same entries, same bytes."""
    log = await filled_log()
    first, second = tmp_path / "a.grnx", tmp_path / "b.grnx"
    assert await export_log(log, first, page=7) == 20
    copy = InMemoryEventLog()
    assert await import_archive(copy, first, batch=6) == 20
    assert await copy.read(0, 100) == await log.read(0, 100)
    assert await export_log(copy, second) == 20
    assert first.read_bytes() == second.read_bytes()
    assert list(iter_archive(first)) == await log.read(0, 100)
    report = verify_archive(first)
    assert (report.ok, report.count, report.head_hash) == (True, 20, (await log.head())[1].hex())
    assert not list(tmp_path.glob("*.tmp"))


async def test_same_inputs_and_clock_give_identical_archives(tmp_path: Path) -> None:
    """Two runs with the same fake clock produce byte-identical logs."""
    write_archive(tmp_path / "1", await (await filled_log()).read(0, 100))
    write_archive(tmp_path / "2", await (await filled_log()).read(0, 100))
    assert (tmp_path / "1").read_bytes() == (tmp_path / "2").read_bytes()


def test_every_flipped_byte_names_its_entry(tmp_path: Path) -> None:
    """Flipping any single byte (one bit or all eight) fails verification at that byte's entry."""
    source = asyncio.run(filled_log())
    good = tmp_path / "good"
    write_archive(good, asyncio.run(source.read(0, 100)))
    data = good.read_bytes()
    owners = frame_seq_of_each_byte(data)
    assert owners[-1] == 20
    damaged = tmp_path / "damaged"
    for position in range(len(data)):
        for mask in (0x01, 0xFF):
            flipped = bytearray(data)
            flipped[position] ^= mask
            damaged.write_bytes(flipped)
            report = verify_archive(damaged)
            assert not report.ok, f"byte {position} mask {mask:#x} passed"
            assert report.first_bad_seq == owners[position], (position, mask, report.reason)
            assert report.count == owners[position] - 1
            with pytest.raises(LogCorrupt) as bad:
                list(iter_archive(damaged))
            assert bad.value.seq == owners[position]


def test_truncation_inside_a_frame_names_it(tmp_path: Path) -> None:
    """A file cut inside a frame names that frame's seq as truncated."""
    entries = list(asyncio.run(asyncio.run(filled_log(5)).read(0, 10)))
    path = tmp_path / "a"
    write_archive(path, entries)
    data = path.read_bytes()
    owners = frame_seq_of_each_byte(data)
    for cut in [9, len(MAGIC) + 8 + 3, len(data) - 1]:
        path.write_bytes(data[:cut])
        report = verify_archive(path)
        assert (report.ok, report.first_bad_seq) == (False, owners[cut])
        assert report.reason.startswith("truncated")


def test_bad_magic_and_wrong_seq(tmp_path: Path) -> None:
    """A file that is not an archive (or an older format) names seq 1; a frame holding another seq is
    refused."""
    path = tmp_path / "a"
    path.write_bytes(b"NOTALOG!")
    assert (verify_archive(path).first_bad_seq, verify_archive(path).reason) == (
        1,
        "bad magic: not a greenex log archive",
    )
    for old, named in ((b"GRNXLOG1", "a format 1 archive"), (b"GRNXLOG2", "a format 2 archive")):
        path.write_bytes(old)  # older formats (writer-sealed links; no producer tags): named, not misread
        assert verify_archive(path).reason.startswith(named)
        assert "reads format 3 only" in verify_archive(path).reason
    entries: list[Entry] = asyncio.run(asyncio.run(filled_log(3)).read(0, 10))
    write_archive(path, [entries[0], entries[2]])
    assert (verify_archive(path).first_bad_seq, verify_archive(path).reason) == (2, "frame holds seq 3")


async def test_import_refuses_a_damaged_archive_whole(tmp_path: Path) -> None:
    """A damaged archive is refused before any entry is imported."""
    path = tmp_path / "a"
    write_archive(path, await (await filled_log()).read(0, 100))
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x10
    path.write_bytes(data)
    target = InMemoryEventLog()
    with pytest.raises(LogCorrupt) as bad:
        await import_archive(target, path, batch=5)
    assert bad.value.seq == 20
    assert await target.read() == []


def test_failed_export_leaves_no_file(tmp_path: Path) -> None:
    """An export that fails midway leaves neither the archive nor its temporary file."""
    path = tmp_path / "a"

    def broken() -> list[Entry]:
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError):
        write_archive(path, (e for e in broken()))
    assert list(tmp_path.iterdir()) == []
