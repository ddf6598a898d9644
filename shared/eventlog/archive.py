"""Log archives: `GRNXLOG3`, then per entry a big-endian length, a CRC32 and the msgpack Entry."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import msgspec

from shared.eventlog.entry import Entry
from shared.eventlog.port import EventLog, LogCorrupt
from shared.eventlog.verify import ChainVerifier, VerifyReport

__all__ = [
    "MAGIC",
    "ArchiveWriter",
    "write_archive",
    "iter_archive",
    "verify_archive",
    "export_log",
    "import_archive",
]

MAGIC = b"GRNXLOG3"
# Version 1 chained entries with SHA-256 computed by the writers; its links do not verify as version 2's.
_OLD_MAGICS = {
    b"GRNXLOG1": "a format 1 archive (links sealed by writers)",
    b"GRNXLOG2": "a format 2 archive (no producer tags; participant secrets in the clear)",
}
_FRAME = struct.Struct(">II")  # payload length, CRC32 of the payload
# Entries are a few hundred bytes; a larger length is a damaged header, refused before reading it.
_MAX_PAYLOAD = 1 << 24
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


class ArchiveWriter:
    """Writes an archive to a temporary file and renames it into place only once complete.

    A cut at a frame boundary would read as a valid, shorter archive, so a half-written export must
    never appear under the final name.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.count = 0
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._file: BinaryIO | None = None

    def __enter__(self) -> ArchiveWriter:
        self._file = self._tmp.open("wb")
        self._file.write(MAGIC)
        return self

    def write(self, entry: Entry) -> None:
        assert self._file is not None, "use ArchiveWriter as a context manager"
        payload = _encoder.encode(entry)
        self._file.write(_FRAME.pack(len(payload), zlib.crc32(payload)))
        self._file.write(payload)
        self.count += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._file is not None
        with self._file:
            if exc_type is None:
                self._file.flush()
                os.fsync(self._file.fileno())
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_archive(path: Path | str, entries: Iterable[Entry]) -> int:
    """Write `entries` (a log from seq 1) to `path`; returns how many were written."""
    with ArchiveWriter(path) as writer:
        for entry in entries:
            writer.write(entry)
    return writer.count


def iter_archive(path: Path | str, first_seq: int = 1) -> Iterator[Entry]:
    """Stream the entries of an archive (whose first entry is `first_seq`: 1 for an export, later for a
    segment of a trimmed log), or raise LogCorrupt naming the seq of the damaged frame.

    The frame after the last good one holds seq = last good seq + 1, whichever of its bytes is
    damaged: the length (which shows as truncation, an oversize frame or a CRC mismatch), the CRC
    or the payload. A damaged magic names the first seq.
    """
    with Path(path).open("rb") as file:
        magic = file.read(len(MAGIC))
        if magic in _OLD_MAGICS:
            raise LogCorrupt(
                first_seq, f"{_OLD_MAGICS[magic]}: this version reads format 3 only (docs/operations.md)"
            )
        if magic != MAGIC:
            raise LogCorrupt(first_seq, "bad magic: not a greenex log archive")
        seq = first_seq - 1
        while header := file.read(_FRAME.size):
            seq += 1
            yield _read_frame(file, header, seq)


def _read_frame(file: BinaryIO, header: bytes, seq: int) -> Entry:
    if len(header) < _FRAME.size:
        raise LogCorrupt(seq, "truncated frame header")
    length, crc = _FRAME.unpack(header)
    if length > _MAX_PAYLOAD:
        raise LogCorrupt(seq, f"frame length {length} exceeds {_MAX_PAYLOAD}")
    payload = file.read(length)
    if len(payload) < length:
        raise LogCorrupt(seq, f"truncated frame: {len(payload)} of {length} bytes")
    if zlib.crc32(payload) != crc:
        raise LogCorrupt(seq, "CRC mismatch")
    try:
        entry = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise LogCorrupt(seq, f"undecodable payload: {exc}") from exc
    if entry.seq != seq:
        raise LogCorrupt(seq, f"frame holds seq {entry.seq}")
    return entry


def verify_archive(path: Path | str, verifier: ChainVerifier | None = None) -> VerifyReport:
    """Check framing and the hash chain of a whole archive in one streaming pass (and producer tags and
    causations, with a verifier that holds the keys and the map)."""
    verifier = verifier or ChainVerifier()
    try:
        for entry in iter_archive(path):
            verifier.check(entry)
    except LogCorrupt as bad:
        return verifier.report(bad)
    return verifier.report()


async def export_log(log: EventLog, path: Path | str, *, page: int = 1000) -> int:
    """Write the whole log to an archive, reading it page by page; returns the entry count."""
    # The file writes block the loop briefly; export is an operator command, not a service path.
    with ArchiveWriter(path) as writer:
        after = 0
        while entries := await log.read(after, page):
            for entry in entries:
                writer.write(entry)
            after = entries[-1].seq
    return writer.count


async def import_archive(log: EventLog, path: Path | str, *, batch: int = 1000) -> int:
    """Load an archive into `log` in batches; a damaged archive is refused before anything is written."""
    report = verify_archive(path)
    if not report.ok:
        assert report.first_bad_seq is not None
        raise LogCorrupt(report.first_bad_seq, report.reason)
    chunk: list[Entry] = []
    for entry in iter_archive(path):
        chunk.append(entry)
        if len(chunk) == batch:
            await log.import_entries(chunk)
            chunk = []
    if chunk:
        await log.import_entries(chunk)
    return report.count
