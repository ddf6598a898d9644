"""The rate sweep as a picture: p50 and p99 match latency by offered rate, against the limit."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.plotting import latency_axes, save_plot

__all__ = ["sweep_plot"]


def sweep_plot(rows: Sequence[dict[str, Any]], limit_ms: float, title: str, path: Path) -> Path:
    """One point per run of the sweep, a line through each rate's median; runs at a rate that was not
    sustained are drawn hollow. Needs at least one run."""
    if not rows:
        raise ValueError("a sweep plot needs at least one run")
    rates = sorted({r["rate"] for r in rows})
    fig, ax = latency_axes()
    for key, colour in (("p50", "tab:blue"), ("p99", "tab:orange")):
        # The line joins each rate's median (what --sweep-runs judges); every run is a point.
        medians = [statistics.median(r["match_ms"][key] for r in rows if r["rate"] == rate) for rate in rates]
        ax.plot(rates, medians, color=colour, alpha=0.5)
        for row in rows:
            face = colour if row["sustained"] else "none"
            ax.scatter([row["rate"]], [row["match_ms"][key]], facecolors=face, edgecolors=colour, zorder=3)
        ax.plot([], [], color=colour, marker="o", label=f"match latency {key}")
    ax.axhline(limit_ms, color="tab:red", linestyle="--", label=f"p99 limit {limit_ms:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (orders/s); hollow: not sustained")
    return save_plot(fig, ax, title, path)
