"""Rate sweep: the highest sustained rate whose p99 match latency stays under a limit (double, bisect)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RateSearch", "sustained"]


def sustained(summary: dict[str, Any], p99_limit_ms: float) -> bool:
    """Every order answered, the plan kept (>= 95 % of the rate sent) and p99 match latency in bounds."""
    match = summary["match_ms"]
    return bool(
        summary["unanswered"] == 0
        and summary["achieved_rate"] >= 0.95 * summary["rate"]
        and match["count"] > 0
        and match["p99"] <= p99_limit_ms
    )


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
