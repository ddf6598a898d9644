"""CPU time of processes from /proc, to tell how much of the 2 cores each part of the test took."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_per_order_us", "cpu_seconds", "cpu_shares"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a live process, or None if it is gone or not on this machine."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces: split after it
    return (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_shares(
    before: dict[str, float | None], after: dict[str, float | None], wall_s: float
) -> dict[str, float]:
    """Cores used by each named process over `wall_s` (1.0 = one full core)."""
    out: dict[str, float] = {}
    for name, start in before.items():
        end = after.get(name)
        if start is not None and end is not None and wall_s > 0:
            out[name] = round((end - start) / wall_s, 3)
    return out


def cpu_per_order_us(cores: dict[str, float], orders_per_s: float) -> dict[str, float]:
    """Microseconds of CPU each process spent per order sent (it falls as batches grow with the rate)."""
    if orders_per_s <= 0:
        return {}
    return {name: round(share / orders_per_s * 1e6, 1) for name, share in cores.items()}
