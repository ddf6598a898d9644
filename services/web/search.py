"""The registry search: certificates by id, by part of a beneficiary or serial label, or by a serial number,
from an index the web app keeps in memory (pure; services/web/reader.py keeps it up to date).

Certificates arrive in log order (by the seq of the entry that made them) and never change, so the index
only grows:
- text: each certificate's beneficiary and serial labels, lower-cased, in segments of about SEGMENT
  characters searched backwards with `str.rfind` (C speed, newest first, stopping at `limit`). Only the
  last segment is joined again when certificates arrive, so a new certificate costs at most one segment's
  copy, and a wide character (an emoji makes CPython store a string at 4 bytes a character) widens one
  segment, not the whole text;
- serials: per instrument the retired ranges, sorted by start (a serial is retired at most once, so an
  instrument's ranges never overlap and one bisection finds the only one that can hold a number). New
  ranges wait in a short unsorted tail, merged in (timsort: linear on two sorted runs) when it grows.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_QUERY", "SEARCH_LIMIT", "CertificateIndex"]

SEARCH_LIMIT = 50
MAX_QUERY = 64  # characters: ids, serial numbers and names are shorter; longer ones only cost CPU
SEGMENT = 1 << 20
_TAIL = 1024
_FIELD, _RECORD = "\x1f", "\x1e"  # separators no query can match across (a query holding one finds nothing)


@dataclass
class _Ranges:
    tail_limit: int
    sorted_: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, owner position)
    tail: list[tuple[int, int, int]] = field(default_factory=list)

    def add(self, start: int, end: int, owner: int) -> None:
        self.tail.append((start, end, owner))
        if len(self.tail) >= self.tail_limit:
            self.sorted_ = sorted(self.sorted_ + self.tail)
            self.tail = []

    def holding(self, serial: int) -> list[int]:
        found = [owner for start, end, owner in self.tail if start <= serial <= end]
        at = bisect.bisect_right(self.sorted_, (serial, float("inf"))) - 1
        if at >= 0 and self.sorted_[at][1] >= serial:
            found.append(self.sorted_[at][2])
        return found


@dataclass
class _Segment:
    first: int  # the position of its first certificate
    offsets: list[int] = field(default_factory=list)  # where each certificate's record starts
    records: list[str] = field(default_factory=list)  # until joined for good
    text: str = ""
    length: int = 0

    def add(self, record: str) -> None:
        self.offsets.append(self.length)
        self.records.append(record)
        self.length += len(record)

    def joined(self, final: bool) -> str:
        if self.records and len(self.text) < self.length:
            self.text = "".join(self.records)
            if final:
                self.records = []  # the text holds them now
        return self.text


class CertificateIndex:
    """Certificate ids in the order they were added (the log's), searchable; newest first. `segment` and
    `tail` are the sizes above (smaller in tests, to exercise many segments and merges)."""

    def __init__(self, segment: int = SEGMENT, tail: int = _TAIL) -> None:
        self._segment_size, self._tail = segment, tail
        self.ids: list[str] = []
        self.seqs: list[int] = []
        self._position: dict[str, int] = {}  # lower-cased id -> position
        self._segments: list[_Segment] = [_Segment(0)]
        self._ranges: dict[str, _Ranges] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, cert_id: str) -> bool:
        return cert_id.lower() in self._position

    @property
    def newest_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def add(self, doc: dict[str, Any]) -> None:
        """One certificate document (services/public/views.certificate_doc); again is a no-op."""
        cert_id: str = doc["id"]
        if cert_id.lower() in self._position:
            return
        position = len(self.ids)
        self.ids.append(cert_id)
        self.seqs.append(doc["seq"])
        self._position[cert_id.lower()] = position
        record = _FIELD.join([doc["beneficiary"], *(p["label"] for p in doc["serials"])]).lower() + _RECORD
        last = self._segments[-1]
        if last.length >= self._segment_size:
            last.joined(final=True)
            last = _Segment(position)
            self._segments.append(last)
        last.add(record)
        ranges = self._ranges.setdefault(doc["instrument"], _Ranges(self._tail))
        for piece in doc["serials"]:
            ranges.add(piece["start"], piece["end"], position)

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[str]:
        """Ids of the certificates whose id is `query`, whose serials hold it (a number), or whose
        beneficiary or serial labels contain it (any case); newest first, at most `limit`. A query longer
        than MAX_QUERY finds nothing."""
        q = query.strip().lower()
        if not q or len(q) > MAX_QUERY or _FIELD in q or _RECORD in q:
            return []
        hits: set[int] = set()
        exact = self._position.get(q)
        if exact is not None:
            hits.add(exact)
        if q.isascii() and q.isdigit():  # "²".isdigit() too, which int() refuses
            serial = int(q)
            for ranges in self._ranges.values():
                hits.update(ranges.holding(serial))
        hits.update(self._containing(q, limit))
        return [self.ids[p] for p in sorted(hits, reverse=True)[:limit]]

    def _containing(self, q: str, limit: int) -> list[int]:
        found: list[int] = []
        for segment in reversed(self._segments):
            text = segment.joined(final=segment is not self._segments[-1])
            end = len(text)
            while len(found) < limit:
                at = text.rfind(q, 0, end)
                if at < 0:
                    break
                local = bisect.bisect_right(segment.offsets, at) - 1
                found.append(segment.first + local)
                end = segment.offsets[local]  # on to the certificates before this one
            if len(found) >= limit:
                break
        return found
