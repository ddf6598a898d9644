"""Rate sweep: the highest sustained rate whose p99 match latency stays under a limit (double, bisect)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RateSearch", "sustained_runs"]


def sustained_runs(summaries: Sequence[dict[str, Any]], p99_limit_ms: float) -> bool:
    """Several runs at one rate: every order answered and the plan kept in each, and the median of their
    p99s in bounds (one run's stall, which these shared machines produce now and then, does not decide
    the rate on its own)."""
    if not summaries:
        return False
    kept = all(
        s["unanswered"] == 0 and s["achieved_rate"] >= 0.95 * s["rate"] and s["match_ms"]["count"] > 0
        for s in summaries
    )
    return kept and statistics.median(s["match_ms"]["p99"] for s in summaries) <= p99_limit_ms


@dataclass
class RateSearch:
    """Doubles from `start` until a run fails, then bisects until the bracket is within `resolution`."""

    start: float = 1000.0
    ceiling: float = 64_000.0
    floor: float = 100.0
    resolution: float = 0.10  # stop when the failing rate is within 10 % of the passing one
    passed: float | None = None
    failed: float | None = None
    history: list[tuple[float, bool]] = field(default_factory=list)

    def next_rate(self) -> float | None:
        """The next rate to try, or None when the answer is known (or out of range)."""
        if self.failed is None:
            rate = self.start if self.passed is None else self.passed * 2
            return rate if rate <= self.ceiling else None
        if self.passed is None:
            rate = self.failed / 2
            return rate if rate >= self.floor else None
        if self.failed <= self.passed * (1 + self.resolution):
            return None
        mid = (self.passed + self.failed) / 2
        rounded = float(round(mid, -2))  # round rates read better in a table, if they stay inside
        return rounded if self.passed < rounded < self.failed else mid

    def record(self, rate: float, ok: bool) -> None:
        self.history.append((rate, ok))
        if ok:
            self.passed = rate if self.passed is None else max(self.passed, rate)
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)
