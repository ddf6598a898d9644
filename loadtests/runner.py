"""`greenex loadtest`: baseline hops, one open-loop run or a rate sweep, tables, a JSON file and plots."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loadtests.baseline import GREENEX_HOPS, HopResult, run_chain
from loadtests.hdr import percentile_plot, summary_ms
from loadtests.live import LOADTEST_HOME, RunConfig, RunResult, run_load
from loadtests.sweep import RateSearch, sustained_runs
from loadtests.sweep_plot import sweep_plot
from services.cli.local import private_settings
from services.cli.provision import ACL_FILE, init_keys
from services.cli.supervisor import ROOT, ensure_redis
from services.system import SYSTEM
from shared.config import ADMIN, url_with_login

__all__ = ["OUT_DIR", "Options", "run_session"]

OUT_DIR = ROOT / "loadtests" / "out"
_COLS = ("count", "p50", "p90", "p99", "p99.9", "max")


@dataclasses.dataclass(frozen=True)
class Options:
    run: RunConfig
    sweep: bool = False
    sweep_seconds: float = 6.0
    sweep_runs: int = 1  # runs per rate; with more, the median p99 decides (see sweep.sustained_runs)
    p99_limit_ms: float = 10.0
    baseline: bool = True
    out_dir: Path = OUT_DIR


def _latency_table(title: str, rows: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("latency (ms)")
    for col in _COLS:
        table.add_column(col, justify="right")
    for name, s in rows.items():
        table.add_row(name, f"{int(s['count'])}", *[f"{s[c]:.2f}" for c in _COLS[1:]])
    return table


async def _one_run(cfg: RunConfig, console: Console) -> RunResult:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{cfg.rate:,.0f} orders/s", total=None)

        def tick(done: int, total: int) -> None:
            if done % 200 == 0 or done == total:
                progress.update(task, completed=done, total=total)

        return await run_load(cfg, tick)


async def _baselines(url: str, rate: float, console: Console) -> dict[str, HopResult]:
    out: dict[str, HopResult] = {}
    with console.status("baseline: bare stream hops between processes"):
        for hops in (2, GREENEX_HOPS):
            out[f"bare chain: {hops} hops, {hops - 1} relays"] = await run_chain(url, hops, rate)
    return out


async def _bare_sweep(admin_url: str, opts: Options, console: Console) -> dict[str, Any]:
    """The bare 5-hop relay chain's own sustained rate, by the same search and p99 limit as greenex's
    sweep (every message delivered, median p99 of the runs in bounds): the floor greenex is a fraction of."""
    search, rows = RateSearch(start=1000.0), []
    while (rate := search.next_rate()) is not None:
        runs = [await run_chain(admin_url, GREENEX_HOPS, rate, opts.sweep_seconds)
                for _ in range(max(1, opts.sweep_runs))]  # fmt: skip
        p99s = [summary_ms(r.latency)["p99"] for r in runs]
        ok = all(r.lost == 0 for r in runs) and statistics.median(p99s) <= opts.p99_limit_ms
        search.record(rate, ok)
        median = statistics.median(p99s)
        console.print(f"  bare {GREENEX_HOPS}-hop chain {rate:>8,.0f}/s  p99 {median:.2f} ms  "
                      f"lost {sum(r.lost for r in runs)}  {'ok' if ok else 'FAIL'}")  # fmt: skip
        rows.append({"rate": rate, "sustained": ok, "p99_ms": p99s, "lost": [r.lost for r in runs]})
    console.print(f"bare chain: highest sustained rate with p99 <= {opts.p99_limit_ms} ms: {search.passed}")
    return {"rows": rows, "sustained": search.passed}


async def _sweep(opts: Options, console: Console) -> list[dict[str, Any]]:
    search, rows = RateSearch(start=1000.0), []
    while (rate := search.next_rate()) is not None:
        cfg = dataclasses.replace(opts.run, rate=rate, duration_s=opts.sweep_seconds, count=None, prefix="")
        summaries = []
        for _ in range(max(1, opts.sweep_runs)):
            summary = (await _one_run(cfg, console)).summary()
            m = summary["match_ms"]
            console.print(
                f"  {rate:>8,.0f}/s sent {summary['achieved_rate']:>8,.0f}/s  match p50 {m['p50']:.2f} "
                f"p99 {m['p99']:.2f} ms  unanswered {summary['unanswered']}"
            )
            summaries.append(summary)
        ok = sustained_runs(summaries, opts.p99_limit_ms)
        search.record(rate, ok)
        console.print(f"  {rate:>8,.0f}/s  {'ok' if ok else 'FAIL'}")
        rows += [{"rate": rate, "sustained": ok, **summary} for summary in summaries]
    console.print(f"highest sustained rate with p99 match <= {opts.p99_limit_ms} ms: {search.passed}")
    return rows


async def run_session(opts: Options, console: Console) -> dict[str, Any]:
    """Everything one invocation measures, side by side on the same machine and Redis (a private one,
    ACLs on, fresh every session, unless a URL is given); the bare hops run as admin."""
    if not opts.run.redis_url:
        shutil.rmtree(LOADTEST_HOME, ignore_errors=True)
    settings = private_settings(
        LOADTEST_HOME, **({"redis_url": opts.run.redis_url} if opts.run.redis_url else {})
    )
    opts = dataclasses.replace(opts, run=dataclasses.replace(opts.run, redis_url=settings.redis_url))
    ring = init_keys(settings, SYSTEM)
    # The durability profile of the private Redis (docs/operations.md): GREENEX_APPENDFSYNC=always.
    appendfsync = os.environ.get("GREENEX_APPENDFSYNC", "everysec")
    redis_proc = await ensure_redis(
        settings.redis_url, LOADTEST_HOME / "redis", aclfile=ring.path / ACL_FILE, fresh=True,
        login=(ADMIN, ring.redis_password(ADMIN)), appendfsync=appendfsync,
    )  # fmt: skip
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report: dict[str, Any] = {
        "machine": _machine(), "options": _jsonable(opts), "stamp": stamp, "appendfsync": appendfsync
    }  # fmt: skip
    try:
        if opts.baseline:
            admin_url = url_with_login(settings.redis_url, ADMIN, ring.redis_password(ADMIN))
            hops = await _baselines(admin_url, 1000.0, console)
            report["baseline"] = {k: {**summary_ms(v.latency), "lost": v.lost} for k, v in hops.items()}
            console.print(_latency_table("bare stream hops at 1,000 msg/s", report["baseline"]))
        if opts.sweep:
            admin_url = url_with_login(settings.redis_url, ADMIN, ring.redis_password(ADMIN))
            report["bare_sweep"] = await _bare_sweep(admin_url, opts, console)
            report["sweep"] = await _sweep(opts, console)
            passed = [row["rate"] for row in report["sweep"] if row["sustained"]]
            bare = report["bare_sweep"]["sustained"]
            if passed and bare:
                report["sustained_fraction"] = round(max(passed) / bare, 3)
                fraction = report["sustained_fraction"]
                console.print(f"greenex's sustained rate / the bare chain's: {max(passed):,.0f} / "
                              f"{bare:,.0f} = {fraction:.0%} (issue 17's target: >= 60 %)")  # fmt: skip
            title = f"greenex rate sweep ({opts.run.redis_url.partition(':')[0]})"
            plot = sweep_plot(report["sweep"], opts.p99_limit_ms, title, opts.out_dir / stamp / "sweep.png")
            report["plots"] = [str(plot)]
            console.print(f"plot: {plot}")
        else:
            result = await _one_run(opts.run, console)
            report["run"] = result.summary()
            _print_run(console, report["run"])
            _plots(result, hops if opts.baseline else {}, opts.out_dir / stamp, report)
            for plot in report["plots"]:
                console.print(f"plot: {plot}")
            if opts.baseline:
                report["floor_multiple"] = _floor_multiple(report)
                console.print(
                    f"p50 match latency / p50 bare {GREENEX_HOPS}-hop chain: {report['floor_multiple']}"
                )
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            await redis_proc.wait()
    path = opts.out_dir / f"loadtest-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"results: {path}")
    return report


def _floor_multiple(report: dict[str, Any]) -> float | None:
    chain = report["baseline"][f"bare chain: {GREENEX_HOPS} hops, {GREENEX_HOPS - 1} relays"]["p50"]
    match = report["run"]["match_ms"]["p50"]
    return round(match / chain, 2) if chain else None


def _print_run(console: Console, s: dict[str, Any]) -> None:
    console.print(
        f"sent {s['sent']:,} at {s['achieved_rate']:,.0f}/s (plan {s['rate']:,.0f}/s), unanswered "
        f"{s['unanswered']}, reports {s['exec_types']}, CPU cores used {s['cpu_cores']}, "
        f"CPU us per order {s['cpu_us_per_order']}"
    )
    if redis := s.get("redis_per_order"):
        top = ", ".join(f"{cmd} {v['calls']:g}x {v['us']:g} us" for cmd, v in list(redis.items())[:6])
        console.print(f"Redis per order: {top}")
    rows = {"order -> ack": s["ack_ms"], "order -> trade (match)": s["match_ms"]}
    rows |= {"trade -> settlement report": s["settle_ms"], "send lag (plan -> XADD done)": s["send_lag_ms"]}
    console.print(_latency_table("end to end, from the scheduled send time", rows))
    console.print(_latency_table("per stage, from log timestamps", s["stages_ms"]))


def _plots(result: RunResult, hops: dict[str, HopResult], where: Path, report: dict[str, Any]) -> None:
    rate = f"{result.config.rate:,.0f} orders/s"
    curves = {"order -> ack": result.book.ack, "order -> trade": result.book.match}
    curves |= {"trade -> settlement": result.book.settle} | {k: v.latency for k, v in hops.items()}
    report["plots"] = [
        str(percentile_plot(curves, f"greenex end to end at {rate}", where / "latency.png")),
        str(percentile_plot(result.stages, f"greenex per stage at {rate}", where / "stages.png")),
    ]


def _machine() -> dict[str, Any]:
    import os  # noqa: PLC0415

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def _jsonable(opts: Options) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(opts), default=str))  # type: ignore[no-any-return]
