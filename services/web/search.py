"""The registry search: certificates by id, by part of a beneficiary or serial label, or by a serial number,
from an index the web app keeps in memory (pure; services/web/reader.py keeps it up to date).

Certificates arrive in log order (by the seq of the entry that made them) and never change, so the index
only grows: one lower-cased text of every certificate's beneficiary and serial labels, searched backwards
with `str.rfind` (C speed, newest first, stopping at `limit`), and per instrument the retired serial
ranges sorted by start (a serial is retired at most once, so the ranges of an instrument never overlap
and one bisection finds the only one that can hold a number).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SEARCH_LIMIT", "CertificateIndex"]

SEARCH_LIMIT = 50
_FIELD, _RECORD = "\x1f", "\x1e"  # separators no query can match across (a query holding one finds nothing)


@dataclass
class _Ranges:
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # the certificate's position in `CertificateIndex.ids`

    def add(self, start: int, end: int, owner: int) -> None:
        at = bisect.bisect_right(self.starts, start)
        self.starts.insert(at, start)
        self.ends.insert(at, end)
        self.owners.insert(at, owner)

    def holding(self, serial: int) -> int | None:
        at = bisect.bisect_right(self.starts, serial) - 1
        return self.owners[at] if at >= 0 and self.ends[at] >= serial else None


class CertificateIndex:
    """Certificate ids in the order they were added (the log's), searchable; newest first."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.seqs: list[int] = []
        self._position: dict[str, int] = {}  # lower-cased id -> position
        self._records: list[str] = []
        self._offsets: list[int] = []  # where each certificate's record starts in the text
        self._length = 0
        self._text = ""
        self._joined = 0  # records already in `_text`
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
        self._offsets.append(self._length)
        self._records.append(record)
        self._length += len(record)
        ranges = self._ranges.setdefault(doc["instrument"], _Ranges())
        for piece in doc["serials"]:
            ranges.add(piece["start"], piece["end"], position)

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[str]:
        """Ids of the certificates whose id is `query`, whose serials hold it (a number), or whose
        beneficiary or serial labels contain it (any case); newest first, at most `limit`."""
        q = query.strip().lower()
        if not q or _FIELD in q or _RECORD in q:
            return []
        hits: set[int] = set()
        exact = self._position.get(q)
        if exact is not None:
            hits.add(exact)
        if q.isdigit():
            serial = int(q)
            hits.update(p for r in self._ranges.values() if (p := r.holding(serial)) is not None)
        hits.update(self._containing(q, limit))
        return [self.ids[p] for p in sorted(hits, reverse=True)[:limit]]

    def _containing(self, q: str, limit: int) -> list[int]:
        if self._joined < len(self._records):
            self._text += "".join(self._records[self._joined :])
            self._joined = len(self._records)
        found: list[int] = []
        end = len(self._text)
        while len(found) < limit:
            at = self._text.rfind(q, 0, end)
            if at < 0:
                break
            position = bisect.bisect_right(self._offsets, at) - 1
            found.append(position)
            end = self._offsets[position]  # on to the certificates before this one
        return found
