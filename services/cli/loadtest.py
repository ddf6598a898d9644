"""`greenex loadtest`: open-loop load against the real services, a rate sweep, and the bare-hop floor."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console

from shared.config import load_settings
from shared.logging import configure_logging

__all__ = ["register"]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as Ctrl-C: asyncio.run's SIGINT handler cancels the run, whose cleanup then runs."""
    on_sigint = signal.getsignal(signal.SIGINT)
    if callable(on_sigint):
        on_sigint(signum, frame)
    else:  # SIGINT ignored (a background job of a shell): stop all the same
        raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command()
    def loadtest(
        rate: float = typer.Option(1000.0, help="orders per second, planned in advance (open loop)"),
        duration: float = typer.Option(10.0, help="seconds of sending (ignored with --count)"),
        count: int | None = typer.Option(None, help="orders to send instead of a duration"),
        instruments: int = typer.Option(2, help="instruments the flow trades"),
        clients: int = typer.Option(20, help="simulated participants"),
        mix: str = typer.Option(
            "passive=45,marketable=40,cancel=15", help="shares of passive, marketable, market, cancel"
        ),
        seed: int = typer.Option(7, help="seed of the order flow"),
        redis_url: str | None = typer.Option(
            None, help="default: REDIS_URL; a private Redis starts if none answers"
        ),
        prefix: str | None = typer.Option(
            None, help="key prefix (default: a fresh one per run, deleted after)"
        ),
        start: bool = typer.Option(
            True, help="start the four services on the prefix (--no-start: use running ones)"
        ),
        sweep: bool = typer.Option(
            False, help="find the highest rate with p99 match latency under the limit"
        ),
        p99_limit_ms: float = typer.Option(10.0, help="the sweep's p99 match latency limit"),
        sweep_runs: int = typer.Option(
            1, help="runs per rate in a sweep; with more, the median p99 decides", min=1
        ),
        baseline: bool = typer.Option(True, help="measure bare stream hop chains first"),
        out: Path | None = typer.Option(None, help="where JSON and plots go (default loadtests/out)"),
        partitions: int = typer.Option(
            1, min=1, help="run the exchange as this many partitions, the rate split over them (no sweep)"
        ),
        loaded: int = typer.Option(
            0, min=0, help="with --partitions: load only the first N of them, the others idle (0: all)"
        ),
    ) -> None:
        """Many signed clients at a fixed rate, each as its own Redis user on its own {greenex}:in:<client>
        stream; latency percentiles, stages, CPU."""
        from loadtests.live import RunConfig  # noqa: PLC0415 - needs the bench extras: only here
        from loadtests.runner import OUT_DIR, Options, run_session  # noqa: PLC0415

        configure_logging("WARNING")
        # SIGTERM stops a run as Ctrl-C does: its services and private Redis are stopped on the way out
        # (killed with the default handler, the Redis stayed behind).
        signal.signal(signal.SIGTERM, _interrupt)
        settings = load_settings()
        if not start and prefix is None:
            prefix = settings.prefix  # running services use theirs
        cfg = RunConfig(
            rate=rate, duration_s=None if count else duration, count=count, instruments=instruments,
            clients=clients, mix=mix, seed=seed, redis_url=redis_url or settings.redis_url,
            prefix=prefix or "", start_services=start, partitions=partitions, loaded=min(loaded, partitions),
        )  # fmt: skip
        if partitions > 1:
            from loadtests.partitioned import report_partitioned  # noqa: PLC0415 - bench extras

            report_partitioned(cfg, out or OUT_DIR, Console())
            return
        opts = Options(
            run=cfg, sweep=sweep, sweep_runs=sweep_runs, p99_limit_ms=p99_limit_ms, baseline=baseline,
            out_dir=out or OUT_DIR,
        )  # fmt: skip
        asyncio.run(run_session(opts, Console()))
