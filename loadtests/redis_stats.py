"""Redis's own work per order, from `INFO commandstats`: which commands an order costs and how long Redis
spent in each (issue 17, item 4: the floor is partly Redis's single thread)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

__all__ = ["command_stats", "per_order"]

CommandStats = dict[str, tuple[int, int]]  # command -> (calls, microseconds)


async def command_stats(admin: Redis) -> CommandStats:
    """Calls and microseconds of each command since Redis started (admin: INFO needs its rights)."""
    info: dict[str, Any] = await admin.info("commandstats")
    return {
        key.removeprefix("cmdstat_"): (int(stats["calls"]), int(stats["usec"]))
        for key, stats in info.items()
        if key.startswith("cmdstat_")
    }


def per_order(before: CommandStats, after: CommandStats, orders: int) -> dict[str, dict[str, float]]:
    """Each command's calls and microseconds per order between two readings, the costliest first. A
    script's time (`evalsha`) includes the commands it runs, which Redis also counts under their own
    names, so the figures do not add up to Redis's time (its CPU per order, from /proc, does). On one
    Redis shared by several partitions, it is the whole run's work per order."""
    if orders <= 0:
        return {}
    out: dict[str, dict[str, float]] = {}
    for command, (calls, usec) in after.items():
        calls0, usec0 = before.get(command, (0, 0))
        if calls > calls0:
            calls_each, us_each = (calls - calls0) / orders, (usec - usec0) / orders
            out[command] = {"calls": round(calls_each, 2), "us": round(us_each, 1)}
    return dict(sorted(out.items(), key=lambda item: -item[1]["us"]))
