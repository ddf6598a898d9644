"""Open-loop load: send times fixed in advance, latency measured from them (no coordinated omission)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

__all__ = ["LatencyBook", "Schedule", "due_until", "new_histogram", "schedule"]

# 1 us .. 60 s at 3 significant digits: every latency this test can see, in nanoseconds.
_LOWEST_NS, _HIGHEST_NS = 1_000, 60_000_000_000


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_NS, _HIGHEST_NS, 3)


@dataclass(frozen=True)
class Schedule:
    """Send offsets in ns from the start of the run, evenly spaced at `rate` per second."""

    offsets_ns: list[int]
    rate: float

    def __len__(self) -> int:
        return len(self.offsets_ns)


def schedule(rate: float, *, duration_s: float | None = None, count: int | None = None) -> Schedule:
    """Even spacing (a constant-rate arrival process): a fixed plan makes runs comparable.

    Exactly one of duration_s and count bounds the plan.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    if (duration_s is None) == (count is None):
        raise ValueError("give exactly one of duration_s and count")
    n = count if count is not None else math.floor(rate * (duration_s or 0.0))
    step = 1e9 / rate
    return Schedule([round(i * step) for i in range(n)], rate)


def due_until(offsets_ns: Sequence[int], start: int, now_ns: int) -> int:
    """Index one past the last offset at or before `now_ns`, scanning from `start` (the sender's cursor)."""
    end = start
    n = len(offsets_ns)
    while end < n and offsets_ns[end] <= now_ns:
        end += 1
    return end


def _reason(report: dict[str, object]) -> object:
    reason = report.get("reason")
    return reason.get("code") if isinstance(reason, dict) else None


@dataclass
class LatencyBook:
    """Per-order milestones keyed by (participant, client_order_id); latencies from the scheduled time.

    Only the first acknowledgement and the first taker trade of an order count: later reports for the same
    order are the book's business, not the order path's.
    """

    scheduled_ns: dict[tuple[str, str], int] = field(default_factory=dict)
    ack: HdrHistogram = field(default_factory=new_histogram)
    match: HdrHistogram = field(default_factory=new_histogram)
    settle: HdrHistogram = field(default_factory=new_histogram)
    acked: set[tuple[str, str]] = field(default_factory=set)
    matched: set[tuple[str, str]] = field(default_factory=set)
    trade_seen_ns: dict[tuple[str, int], int] = field(default_factory=dict)
    match_seqs: list[tuple[int, int]] = field(default_factory=list)  # (log seq, received ns) of match reports
    exec_types: dict[str, int] = field(default_factory=dict)

    # A cancel is answered by a `cancelled` report carrying the cancelled order's id, not the cancel's.
    cancel_of: dict[tuple[str, str], str] = field(default_factory=dict)

    def expect(
        self, participant: str, client_order_id: str, scheduled_ns: int, cancels: str | None = None
    ) -> None:
        self.scheduled_ns[(participant, client_order_id)] = scheduled_ns
        if cancels is not None:
            self.cancel_of[(participant, cancels)] = client_order_id

    def on_report(self, participant: str, report: dict[str, object], received_ns: int) -> None:
        kind = report.get("type")
        if kind == "settlement":
            seen = self.trade_seen_ns.pop((participant, int(report["trade_id"])), None)  # type: ignore[call-overload]
            if seen is not None:
                self.settle.record_value(max(_LOWEST_NS, received_ns - seen))
            return
        if kind != "execution_report":
            return
        exec_type = str(report.get("exec_type"))
        self.exec_types[exec_type] = self.exec_types.get(exec_type, 0) + 1
        key = (participant, str(report.get("client_order_id")))
        if exec_type == "cancelled" and _reason(report) == "user_cancel" and key in self.cancel_of:
            key = (participant, self.cancel_of.pop(key))
        sent = self.scheduled_ns.get(key)
        if sent is None:
            return
        if key not in self.acked:
            self.acked.add(key)
            self.ack.record_value(max(_LOWEST_NS, received_ns - sent))
        if exec_type != "trade":
            return
        self.trade_seen_ns[(participant, int(report["trade_id"]))] = received_ns  # type: ignore[call-overload]
        if report.get("liquidity") == "taker" and key not in self.matched:
            self.matched.add(key)
            self.match.record_value(max(_LOWEST_NS, received_ns - sent))
            seq = report.get("seq")
            if isinstance(seq, int):
                self.match_seqs.append((seq, received_ns))

    def unanswered(self) -> int:
        return len(self.scheduled_ns) - len(self.acked)

    def record_unanswered(self, now_ns: int) -> None:
        """Orders never acknowledged count at least until now: dropping them would flatter the tail."""
        for key, sent in self.scheduled_ns.items():
            if key not in self.acked:
                self.ack.record_value(min(_HIGHEST_NS, max(_LOWEST_NS, now_ns - sent)))
