"""Where serials come from (project, vintage) and retirement certificates derived from the log."""

from __future__ import annotations

import bisect
import datetime
import hashlib
import json
from typing import Any

import msgspec

from shared.domain.ledger import CreditsIssued, SerialRange
from shared.domain.registry import CreditsRetired

__all__ = [
    "Origin",
    "SerialOrigins",
    "certificate",
    "certificate_hash",
    "record_fields",
    "retirement_date",
    "serial_label",
    "split_serials",
]


class Origin(msgspec.Struct, frozen=True, array_like=True):
    """One issued block of an instrument and where its tonnes come from."""

    start: int
    end: int
    standard: str
    project: str
    vintage: int


def serial_label(instrument: str, origin: Origin | None, start: int, end: int) -> str:
    """CCER-<project>-<vintage>-<start>-<end> for offsets; <instrument>-<start>-<end> for allowances."""
    if origin is None or not origin.project:
        return f"{instrument}-{start}-{end}"
    return f"{origin.standard}-{origin.project}-{origin.vintage}-{start}-{end}"


class SerialOrigins:
    """Per instrument, every issued block sorted by start (blocks never overlap: intake and the
    registry allocate disjoint serials), so any serial range splits into its origins in O(log n)."""

    def __init__(self) -> None:
        self.blocks: dict[str, list[Origin]] = {}

    def add(self, issued: CreditsIssued) -> None:
        s = issued.serials
        origin = Origin(s.start, s.end, issued.standard, issued.project, issued.vintage)
        bisect.insort(self.blocks.setdefault(issued.instrument, []), origin, key=lambda o: o.start)

    def split(self, instrument: str, serials: SerialRange) -> list[tuple[SerialRange, Origin | None]]:
        """`serials` cut at issued-block boundaries, each piece with its block (None if never issued)."""
        return split_serials(self.blocks.get(instrument, []), serials)

    def labels(self, instrument: str, serials: tuple[SerialRange, ...]) -> list[str]:
        return [
            serial_label(instrument, origin, piece.start, piece.end)
            for block in serials
            for piece, origin in self.split(instrument, block)
        ]


def split_serials(blocks: list[Origin], serials: SerialRange) -> list[tuple[SerialRange, Origin | None]]:
    """`serials` cut at the boundaries of `blocks` (one instrument's, sorted by start), each piece with
    its block (None if never issued); O(log n + pieces)."""
    out: list[tuple[SerialRange, Origin | None]] = []
    at = serials.start
    i = max(0, bisect.bisect_right(blocks, at, key=lambda o: o.start) - 1)
    while at <= serials.end:
        block = blocks[i] if i < len(blocks) else None
        if block is not None and block.start <= at <= block.end:
            end = min(block.end, serials.end)
            out.append((SerialRange(at, end), block))
            at, i = end + 1, i + 1
        elif block is not None and block.end < at:
            i += 1
        else:
            end = serials.end if block is None else min(serials.end, block.start - 1)
            out.append((SerialRange(at, end), None))
            at = end + 1
    return out


def certificate_hash(body: dict[str, Any]) -> str:
    """sha256 of the certificate's canonical JSON (keys sorted, no spaces, UTF-8), `hash` excluded."""
    canonical = {k: v for k, v in body.items() if k != "hash"}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def record_fields(retired: CreditsRetired) -> dict[str, str]:
    """Date, purpose and identifier of a retirement record; absent on entries logged before records
    carried them, so those certificates keep the hash they were issued with."""
    fields: dict[str, str] = {}
    if retired.retired_ns:
        fields["date"] = retirement_date(retired.retired_ns)
    if retired.purpose:
        fields["purpose"] = retired.purpose
    if retired.identifier:
        fields["identifier"] = retired.identifier
    return fields


def retirement_date(event_ns: int) -> str:
    """The UTC date of a log time, ISO 8601."""
    return datetime.datetime.fromtimestamp(event_ns // 1_000_000_000, datetime.UTC).date().isoformat()


def certificate(
    retired: CreditsRetired, seq: int, entry_hash: bytes, origins: SerialOrigins
) -> dict[str, Any]:
    """The retirement certificate of a CreditsRetired entry: ranges with their labels, tonnes, vintages,
    the entry's log seq and chain hash, and a sha256 over all of it, so anyone holding the log can
    recompute it and see that the certificate names exactly the serials that left the market there."""
    pieces = [
        {
            "label": serial_label(retired.instrument, origin, piece.start, piece.end),
            "start": piece.start,
            "end": piece.end,
            "tonnes": piece.tonnes,
            "project": origin.project if origin else "",
            "vintage": origin.vintage if origin else 0,
        }
        for block in retired.serials
        for piece, origin in origins.split(retired.instrument, block)
    ]
    body: dict[str, Any] = {
        "id": retired.certificate_id,
        "kind": retired.kind,
        "participant": retired.participant,
        "beneficiary": retired.beneficiary,
        "reason": retired.reason,
        "instrument": retired.instrument,
        "serials": pieces,
        "tonnes": retired.tonnes,
        "vintages": sorted({p["vintage"] for p in pieces if p["vintage"]}),
        "seq": seq,
        "entry_hash": entry_hash.hex(),
    }
    body.update(record_fields(retired))
    body["hash"] = certificate_hash(body)
    return body
