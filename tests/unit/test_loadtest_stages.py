"""Per-stage latencies from the log's timestamps follow each order's causation chain."""

from __future__ import annotations

import pytest

from loadtests.hdr import summary_ms
from loadtests.stages import STAGES, stage_histograms
from shared.eventlog.entry import Entry

MS = 1_000_000
T0 = 1_800_000_000_000  # an XADD at this many ms since the epoch


def _entry(
    seq: int, type_: str, causation: str, producer: str, logged_ms: float, event_ms: float = 0
) -> Entry:
    return Entry(
        seq=seq, event_id=f"e{seq}", causation=causation, producer=producer, type=type_,
        event_ns=round((T0 + event_ms) * MS), logged_ns=round((T0 + logged_ms) * MS), body=b"",
        auth=b"", prev_hash=b"", hash=b"",
    )  # fmt: skip


def test_stages_follow_causation_from_the_client_to_settlement() -> None:
    """Submitted 2+1 ms after the XADD, verified 4 ms later, matched 3 ms later, settled 5 ms later."""
    entries = [
        _entry(1, "OrderSubmitted", f"in:alice:{T0}-0", "intake", logged_ms=3, event_ms=2),
        _entry(2, "OrderVerified", "log:1", "verification", logged_ms=7),
        _entry(3, "OrderAccepted", "log:2", "matching", logged_ms=10),
        _entry(4, "TradeExecuted", "log:2", "matching", logged_ms=10),
        _entry(5, "TradeSettled", "log:4", "settlement", logged_ms=15),
        _entry(6, "OrderVerified", "log:99", "verification", logged_ms=20),  # its submission is not in view
    ]
    hists = stage_histograms(entries, report_receipts=[(4, round((T0 + 12) * MS)), (77, 0)])
    expected = dict(zip(STAGES, (2, 1, 4, 3, 5, 2), strict=True))
    for stage, ms in expected.items():
        s = summary_ms(hists[stage])
        assert s["count"] == 1, stage
        assert s["max"] == pytest.approx(ms, rel=1e-3), stage


def test_only_the_first_matching_answer_to_a_verified_order_counts() -> None:
    """An order's accept and its trades share one causation: verification -> matching counts once."""
    entries = [
        _entry(1, "OrderSubmitted", f"in:alice:{T0}-3", "intake", logged_ms=1, event_ms=1),
        _entry(2, "OrderVerified", "log:1", "verification", logged_ms=2),
        _entry(3, "OrderAccepted", "log:2", "matching", logged_ms=4),
        _entry(4, "TradeExecuted", "log:2", "matching", logged_ms=4),
        _entry(5, "OrderExpired", "log:2", "matching", logged_ms=4),
    ]
    assert hists_count(entries, STAGES[3]) == 1


def hists_count(entries: list[Entry], stage: str) -> int:
    return int(stage_histograms(entries)[stage].get_total_count())
