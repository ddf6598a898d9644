"""The registry search's index (services/web/search.py) finds what a scan of every certificate finds."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.web.search import CertificateIndex


def _cert(n: int, beneficiary: str, instrument: str, ranges: list[tuple[int, int]]) -> dict[str, Any]:
    # Labels that do not spell the numbers: a serial search must find a range by its numbers alone.
    serials = [{"label": f"{instrument}-P{n}-{k}", "start": a, "end": b} for k, (a, b) in enumerate(ranges)]
    return {"id": f"RC-{n}", "beneficiary": beneficiary, "instrument": instrument, "seq": n,
            "serials": serials}


def _scan(certs: list[dict[str, Any]], q: str) -> list[str]:
    """The obvious search: every certificate looked at, newest first."""
    low = q.strip().lower()
    if not low:
        return []

    def hit(c: dict[str, Any]) -> bool:
        serial = int(low) if low.isdigit() else None
        return (c["id"].lower() == low or low in c["beneficiary"].lower()
                or any(serial is not None and p["start"] <= serial <= p["end"] for p in c["serials"])
                or any(low in p["label"].lower() for p in c["serials"]))  # fmt: skip

    return [c["id"] for c in sorted(certs, key=lambda c: -c["seq"]) if hit(c)]


def test_id_beneficiary_serial_and_label() -> None:
    index = CertificateIndex()
    index.add(_cert(9, "Acme <b>", "CCER-24", [(100, 199)]))
    index.add(_cert(12, "Beta Ltd", "CCER-24", [(200, 250), (300, 300)]))
    index.add(_cert(15, "acme again", "CEA-25", [(150, 160)]))
    assert index.search("rc-9") == ["RC-9"]
    assert index.search(" ACME ") == ["RC-15", "RC-9"]
    assert index.search("150") == ["RC-15", "RC-9"]  # the same number in two instruments' serial spaces
    assert index.search("300") == ["RC-12"]
    assert index.search("251") == []
    assert index.search("200") == ["RC-12"]  # a range's first serial
    assert index.search("ccer-24-p12-1") == ["RC-12"]
    assert index.search("") == []
    assert index.search("acme", limit=1) == ["RC-15"]
    assert index.search("²") == []  # a digit to str.isdigit, not to int()
    assert index.search("a" * 65) == []  # longer than any id or name: not searched


def test_a_query_cannot_match_across_two_certificates_or_fields() -> None:
    index = CertificateIndex()
    index.add(_cert(1, "North", "X", [(1, 1)]))
    index.add(_cert(2, "wind", "X", [(2, 2)]))
    assert index.search("northwind") == []
    assert index.search("north\x1ex") == []
    assert index.search("wind") == ["RC-2"]


def test_adding_a_certificate_again_changes_nothing() -> None:
    index = CertificateIndex()
    cert = _cert(3, "Gamma", "X", [(5, 9)])
    index.add(cert)
    index.add(cert)
    assert len(index) == 1
    assert index.search("gamma") == ["RC-3"]
    assert index.search("7") == ["RC-3"]


_names = st.text(alphabet="abcAB 1-İ😀", min_size=0, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(_names, st.sampled_from(["X", "Y"]), st.integers(1, 9), st.integers(0, 3)),
                  max_size=25),
    blocks=st.permutations(range(100)),
    queries=st.lists(st.one_of(_names, st.integers(0, 1000).map(str), st.just("rc-3")), min_size=1,
                     max_size=8),
    limit=st.integers(1, 30),
    sizes=st.sampled_from([(1 << 20, 1024), (12, 2), (1, 1)]),
)
def test_the_index_agrees_with_a_scan(
    rows: list[tuple[str, str, int, int]], blocks: list[int], queries: list[str], limit: int,
    sizes: tuple[int, int],
) -> None:
    """Certificates added in seq order, searches between additions: the index returns the scan's answer
    (its first `limit`). Serials are retired in any order, never twice within an instrument; the text in
    one segment or many, ranges sorted at once or merged from small tails."""
    index, certs, free = CertificateIndex(*sizes), [], {"X": list(blocks), "Y": list(reversed(blocks))}
    for n, (beneficiary, instrument, width, pieces) in enumerate(rows, start=1):
        taken = [free[instrument].pop() for _ in range(pieces)]
        cert = _cert(n, beneficiary, instrument, [(10 * k + 1, 10 * k + width) for k in taken])
        certs.append(cert)
        index.add(cert)
        for q in queries:
            assert index.search(q, limit) == _scan(certs, q)[:limit]
