"""Matplotlib set-up and saving shared by the load test's plots (imported only when one is drawn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["latency_axes", "save_plot"]


def latency_axes() -> tuple[Any, Any]:
    """A figure and axes for a latency plot, on the file-only backend (no display on these machines)."""
    import matplotlib  # noqa: PLC0415 - heavy, only when a plot is asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt.subplots(figsize=(8, 4.5))


def save_plot(fig: Any, ax: Any, title: str, path: Path) -> Path:
    """Title, grid, legend, then write the PNG and free the figure."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
