"""The rate sweep as a picture: p50 and p99 match latency by offered rate, against the limit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.plotting import latency_axes, save_plot

__all__ = ["sweep_plot"]


def sweep_plot(rows: Sequence[dict[str, Any]], limit_ms: float, title: str, path: Path) -> Path:
    """One point per run of the sweep (rates in the order they were tried, plotted by rate); runs that
    were not sustained are drawn hollow. Needs at least one run."""
    if not rows:
        raise ValueError("a sweep plot needs at least one run")
    ordered = sorted(rows, key=lambda r: r["rate"])
    rates = [r["rate"] for r in ordered]
    fig, ax = latency_axes()
    for key, colour in (("p50", "tab:blue"), ("p99", "tab:orange")):
        values = [r["match_ms"][key] for r in ordered]
        ax.plot(rates, values, color=colour, alpha=0.5)
        for rate, value, row in zip(rates, values, ordered, strict=True):
            face = colour if row["sustained"] else "none"
            ax.scatter([rate], [value], facecolors=face, edgecolors=colour, zorder=3)
        ax.plot([], [], color=colour, marker="o", label=f"match latency {key}")
    ax.axhline(limit_ms, color="tab:red", linestyle="--", label=f"p99 limit {limit_ms:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (orders/s); hollow: not sustained")
    return save_plot(fig, ax, title, path)
