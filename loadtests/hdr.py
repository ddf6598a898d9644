"""Percentile summaries and percentile plots of HdrHistograms (values in ns, shown in ms)."""

from __future__ import annotations

from pathlib import Path

from hdrh.histogram import HdrHistogram

from loadtests.plotting import latency_axes, save_plot

__all__ = ["PERCENTILES", "percentile_plot", "summary_ms"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def summary_ms(hist: HdrHistogram) -> dict[str, float]:
    """count, p50/p90/p99/p99.9 and max in milliseconds (0 for an empty histogram)."""
    count = int(hist.get_total_count())
    out: dict[str, float] = {"count": float(count)}
    for p in PERCENTILES:
        out[f"p{p:g}"] = hist.get_value_at_percentile(p) / 1e6 if count else 0.0
    out["max"] = hist.get_max_value() / 1e6 if count else 0.0
    return out


def _curve(hist: HdrHistogram) -> tuple[list[float], list[float]]:
    """(1/(1-q), value ms) points for the classic HdrHistogram percentile plot."""
    xs: list[float] = []
    ys: list[float] = []
    for i in range(60):
        q = 1.0 - 10 ** (-i / 10)  # 0, 20.6 %, 36.9 % ... 99.9999 %
        if q * 100 > 99.9999:
            break
        xs.append(1.0 / (1.0 - q))
        ys.append(hist.get_value_at_percentile(q * 100) / 1e6)
    return xs, ys


def percentile_plot(curves: dict[str, HdrHistogram], title: str, path: Path) -> Path:
    """Latency by percentile on a log axis, one line per histogram; empty histograms are skipped."""
    fig, ax = latency_axes()
    for label, hist in curves.items():
        if hist.get_total_count():
            xs, ys = _curve(hist)
            ax.plot(xs, ys, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")  # the floor and the tail differ by orders of magnitude
    ticks = [1, 2, 10, 100, 1000, 10000]
    ax.set_xticks(ticks, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"])
    ax.set_xlabel("percentile")
    return save_plot(fig, ax, title, path)
