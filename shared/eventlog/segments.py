"""The archived part of a trimmed log: segment files in a directory, read together with the stream.

`greenex log archive` moves the oldest entries out of Redis into segments named by the seqs they hold
(`log-<first>-<last>.grnx`, the archive format of archive.py), each continuing the one before it. The
full history is then the segments followed by the stream; `HistoryLog` reads it as one log, so replay,
audit, the views and `log verify` need not know where an entry lives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

from shared.eventlog.archive import iter_archive
from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt, LogReader

__all__ = ["ArchiveDir", "HistoryLog", "Segment", "segment_name"]

_NAME = re.compile(r"log-([0-9]{12})-([0-9]{12})\.grnx")


def segment_name(first: int, last: int) -> str:
    return f"log-{first:012d}-{last:012d}.grnx"


class Segment(NamedTuple):
    first: int
    last: int
    path: Path


class ArchiveDir:
    """The segments of one exchange's trimmed log; they must run from seq 1 without a gap."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def segments(self) -> list[Segment]:
        """Every segment in seq order; LogCorrupt naming the first missing seq if they do not join up."""
        if not self.path.is_dir():
            return []
        found = sorted(
            Segment(int(m[1]), int(m[2]), p)
            for p in self.path.iterdir()
            if (m := _NAME.fullmatch(p.name)) is not None
        )
        expected = 1
        for segment in found:
            if segment.first != expected or segment.last < segment.first:
                raise LogCorrupt(expected, f"the archives in {self.path} do not hold seq {expected}")
            expected = segment.last + 1
        return found

    @property
    def last_seq(self) -> int:
        """The last archived seq (0 if nothing is archived)."""
        segments = self.segments()
        return segments[-1].last if segments else 0

    def entries(self, after_seq: int = 0) -> Iterator[Entry]:
        """The archived entries after `after_seq`, in order (framing checked as they stream)."""
        for segment in self.segments():
            if segment.last <= after_seq:
                continue
            for entry in iter_archive(segment.path, segment.first):
                if entry.seq > after_seq:
                    yield entry


class HistoryLog:
    """The archives, then the stream, read as one log (`read`, `read_checked`, `head`).

    Reads usually continue where the last one stopped, so the open segment's iterator is kept between
    calls. An entry in neither place (a stream trimmed past what was archived) is LogCorrupt naming it.
    """

    def __init__(self, archives: ArchiveDir, stream: StreamReader) -> None:
        self.archives, self.stream = archives, stream
        self._archived = archives.last_seq
        self._cursor: tuple[int, Iterator[Entry]] | None = None  # (last seq it gave, the iterator)

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        entries, fault = await self.read_checked(after_seq, limit)
        if fault is not None:
            raise fault
        return entries

    async def read_checked(self, after_seq: int, limit: int) -> tuple[list[Entry], LogCorrupt | None]:
        """The good entries after `after_seq`, and the fault that stopped the page early (a damaged
        segment, an entry in neither place, or what the stream's own check found)."""
        try:
            out = self._from_archives(after_seq, limit) if after_seq < self._archived else []
        except LogCorrupt as damaged:
            self._cursor = None
            return [], damaged
        if len(out) == limit:
            return out, None
        at = out[-1].seq if out else after_seq
        tail, fault = await self.stream.read_checked(at, limit - len(out))
        if tail and tail[0].seq != at + 1:
            return out, LogCorrupt(at + 1, _missing(at + 1, tail[0].seq, self.archives.path))
        return out + tail, fault

    async def head(self) -> tuple[int, bytes]:
        return await self.stream.head()

    def _from_archives(self, after_seq: int, limit: int) -> list[Entry]:
        if self._cursor is None or self._cursor[0] != after_seq:
            self._cursor = (after_seq, self.archives.entries(after_seq))
        iterator, out = self._cursor[1], []
        for entry in iterator:
            out.append(entry)
            if len(out) == limit:
                break
        self._cursor = (out[-1].seq if out else after_seq, iterator)
        return out


class StreamReader(LogReader, Protocol):
    async def head(self) -> tuple[int, bytes]:
        """(seq, hash) of the newest entry."""
        ...

    async def read_checked(self, after_seq: int, limit: int) -> tuple[list[Entry], LogCorrupt | None]:
        """As `read`, with the fault that stopped the page early (an entry it cannot decode)."""
        ...


def _missing(seq: int, first_in_stream: int, archives: Path) -> str:
    return (
        f"entries {seq}..{first_in_stream - 1} are in neither the stream nor the archives in {archives}: "
        "the stream was trimmed past them (docs/operations.md, 'A trimmed log')"
    )
