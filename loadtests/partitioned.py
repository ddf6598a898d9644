"""`greenex loadtest --partitions N`: one run of the exchange as N partitions, each loaded with its share
of the rate, summed up per partition and for the whole (issue 17, items 5 and the 2-partition target)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loadtests.live import RunConfig, run_partitioned

__all__ = ["report_partitioned"]


def report_partitioned(cfg: RunConfig, out_dir: Path, console: Console) -> None:
    results = asyncio.run(run_partitioned(cfg))
    summaries = [r.summary() for r in results]
    idle = f", {cfg.partitions - cfg.loaded} idle" if 0 < cfg.loaded < cfg.partitions else ""
    table = Table(title=f"{cfg.partitions} partitions{idle}, {cfg.rate:,.0f} orders/s planned in all")
    for column in ("partition", "sent/s", "unanswered", "match p50 ms", "match p99 ms", "ack p99 ms"):
        table.add_column(column, justify="right")
    for p, s in enumerate(summaries, start=1):
        match, ack = s["match_ms"], s["ack_ms"]
        table.add_row(str(p), f"{s['achieved_rate']:,.0f}", str(s["unanswered"]), f"{match['p50']:.2f}",
                      f"{match['p99']:.2f}", f"{ack['p99']:.2f}")  # fmt: skip
    console.print(table)
    # Every partition's measurement read the CPU of every process: one of them is the whole machine's.
    cpu = summaries[0]["cpu_cores"]
    total = sum(v for name, v in cpu.items() if v is not None and name != "loadgen")  # the exchange's own
    aggregate = sum(s["achieved_rate"] for s in summaries)
    per_order = f"{total / aggregate * 1e6:,.0f} us per order" if aggregate else "nothing sent"
    console.print(
        f"aggregate {aggregate:,.0f} orders/s sent; CPU {total:.2f} cores in all, the load generator apart "
        f"({per_order})"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"partitions-{cfg.partitions}-{int(cfg.rate)}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"partitions": summaries}, indent=1, default=str))
    console.print(f"results: {path}")
