"""Where the time goes: per-stage latencies from the log's timestamps, following causation chains.

An order's path through the log: the client's `XADD greenex:in` (the stream id's ms), intake's
OrderSubmitted (`event_ns` = read by intake, `logged_ns` = appended), verification's OrderVerified
(causation `log:<submitted>`), matching's OrderAccepted/TradeExecuted (causation `log:<verified>`),
settlement's TradeSettled (causation `log:<trade>`), and last the report the client reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hdrh.histogram import HdrHistogram

from loadtests.openloop import new_histogram
from shared.eventlog.entry import Entry

__all__ = ["STAGES", "stage_histograms"]

STAGES = (
    "client XADD -> intake read",
    "intake read -> OrderSubmitted logged",
    "OrderSubmitted -> OrderVerified",
    "OrderVerified -> matching event",
    "TradeExecuted -> TradeSettled",
    "matching event -> client report",
)

_MATCHING_ANSWERS = frozenset({"OrderAccepted", "TradeExecuted", "OrderRejected", "OrderExpired"})


def _record(hist: HdrHistogram, delta_ns: int) -> None:
    # Stream ids have ms resolution, so the first stage can come out slightly negative: clamp at 1 us.
    hist.record_value(min(60_000_000_000, max(1_000, delta_ns)))


def _parent(causation: str) -> int | None:
    return int(causation[4:]) if causation.startswith("log:") else None


def stage_histograms(
    entries: Iterable[Entry], report_receipts: Sequence[tuple[int, int]] = ()
) -> dict[str, HdrHistogram]:
    """One histogram per stage in STAGES; `report_receipts` are (log seq, ns the client read its report)."""
    hists = {name: new_histogram() for name in STAGES}
    logged: dict[int, int] = {}
    submitted: set[int] = set()
    verified: set[int] = set()
    answered: set[int] = set()  # verified seqs whose first matching answer was counted
    for e in entries:
        logged[e.seq] = e.logged_ns
        parent = _parent(e.causation)
        if e.type == "OrderSubmitted" and e.causation.startswith("in:"):
            xadd_ms = int(e.causation.rpartition(":")[2].partition("-")[0])  # in:<sender>:<ms>-<n>
            _record(hists[STAGES[0]], e.event_ns - xadd_ms * 1_000_000)
            _record(hists[STAGES[1]], e.logged_ns - e.event_ns)
            submitted.add(e.seq)
        elif parent is None:
            continue
        elif e.type == "OrderVerified" and parent in submitted:
            _record(hists[STAGES[2]], e.logged_ns - logged[parent])
            verified.add(e.seq)
        elif e.type in _MATCHING_ANSWERS and parent in verified and parent not in answered:
            answered.add(parent)
            _record(hists[STAGES[3]], e.logged_ns - logged[parent])
        elif e.type == "TradeSettled" and parent in logged:
            _record(hists[STAGES[4]], e.logged_ns - logged[parent])
    for seq, received_ns in report_receipts:
        if seq in logged:
            _record(hists[STAGES[5]], received_ns - logged[seq])
    return hists
