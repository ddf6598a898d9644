"""`greenex up`, `greenex demo`, `greenex book`, `greenex balances`: run the exchange and look at it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.progress import Progress

from services.cli.demo import run_session, secret_of, seed_exchange, wait_quiet
from services.cli.demo_registry import run_registry_chain
from services.cli.readmodel import ExchangeState, replay_log
from services.cli.supervisor import ROOT, Supervisor, ensure_redis, wipe_prefix
from services.cli.views import conservation_problems, print_balances, print_book, print_summary
from services.intake.service import operator_secret
from shared.config import Settings, load_settings
from shared.eventlog.redis_log import RedisEventLog
from shared.logging import configure_logging

__all__ = ["register"]

console = Console()


async def _started(
    settings: Settings, log_dir: Path, *, services: bool = True
) -> tuple[Supervisor, asyncio.subprocess.Process | None]:
    """Redis (a private one if none answers) and a supervisor, with the services started unless told."""
    redis_proc = await ensure_redis(settings.redis_url, ROOT / "var" / "redis")
    sup = Supervisor(
        env={"REDIS_URL": settings.redis_url, "GREENEX_PREFIX": settings.prefix}, log_dir=log_dir
    )
    if services:
        await sup.start()
    return sup, redis_proc


async def _state(settings: Settings) -> ExchangeState:
    redis = Redis.from_url(settings.redis_url)
    try:
        return await replay_log(RedisEventLog(redis, settings.keys))
    finally:
        await redis.aclose()


async def _up(settings: Settings) -> None:
    sup, redis_proc = await _started(settings, ROOT / "var" / "log")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print(f"greenex up against {settings.redis_url}; service logs in var/log/; Ctrl-C stops")
    watcher = asyncio.create_task(sup.watch())
    await stop.wait()
    await sup.stop()
    watcher.cancel()
    if redis_proc is not None:
        redis_proc.terminate()
        await redis_proc.wait()


async def _demo(settings: Settings, orders: int, seed: int, fresh: bool) -> int:
    sup, redis_proc = await _started(settings, ROOT / "var" / "log", services=not fresh)
    redis = Redis.from_url(settings.redis_url)
    if fresh:
        # Before the services start: they rebuild from the log and register their wake-ups at start.
        await wipe_prefix(redis, settings.keys)
        await sup.start()
    watcher = asyncio.create_task(sup.watch())
    try:
        await seed_exchange(redis, settings, operator_secret())
        # The registry chain first: the maker then retires what it bought before the session's orders
        # freeze any of its credits, whatever the session's size.
        with console.status("registry chain: label, purchase, retirement, neutrality claim"):
            await run_registry_chain(redis, settings, secret_of)
        with Progress(console=console) as progress:
            task = progress.add_task(f"trading session ({orders} signed orders)", total=orders)
            await run_session(redis, settings, orders, seed, lambda n: progress.advance(task, n))
        with console.status("waiting for the services to drain"):
            await wait_quiet(redis, settings)
        state = await replay_log(RedisEventLog(redis, settings.keys))
        print_summary(console, state)
        return 1 if conservation_problems(state) else 0
    finally:
        await sup.stop()
        watcher.cancel()
        await redis.aclose()
        if redis_proc is not None:
            redis_proc.terminate()
            await redis_proc.wait()


def register(app: typer.Typer) -> None:
    @app.command()
    def up() -> None:
        """Start all four services (and a private AOF Redis if none answers at REDIS_URL)."""
        configure_logging()
        asyncio.run(_up(load_settings()))

    @app.command()
    def demo(
        orders: int = typer.Option(3000, help="signed orders to send in the session"),
        seed: int = typer.Option(2025, help="seed of the session's order flow"),
        fresh: bool = typer.Option(True, help="wipe this prefix's keys first"),
    ) -> None:
        """Start the exchange, seed it, run a realistic trading session and print the summary."""
        configure_logging("WARNING")
        with contextlib.suppress(KeyError):
            os.environ.pop("GREENEX_LOG_LEVEL")
        raise typer.Exit(asyncio.run(_demo(load_settings(), orders, seed, fresh)))

    @app.command()
    def asyncapi(out: Path = typer.Option(ROOT / "docs" / "asyncapi.json", help="where to write it")) -> None:
        """Write the AsyncAPI spec of the client contract (FastStream's, plus the command schemas)."""
        from services.intake.contract import contract_document  # noqa: PLC0415 - builds an app: only here

        out.write_text(json.dumps(contract_document(), indent=2, sort_keys=True) + "\n")
        console.print(f"wrote {out}")

    @app.command()
    def system(
        write: bool = typer.Option(False, "--write", help="regenerate deploy/Procfile and compose"),
    ) -> None:
        """The system map: every process, the cores it hosts, what each core reads and answers."""
        from services.cli.deployfiles import write_deploy_files  # noqa: PLC0415 - only for --write
        from services.system import SYSTEM  # noqa: PLC0415 - the CLI's other commands do not need it

        for process in SYSTEM.processes:
            console.print(f"[bold]{process.name}[/]  python -m {process.module}")
            for core in process.cores:
                made = core.make()
                console.print(
                    f"  core {core.name}: reads {len(made.inputs)} types, answers {sorted(made.answers_to)}"
                )
            console.print(f"  woken by: {', '.join(sorted(process.bell_types)) or '-'}")
        if write:
            for path in write_deploy_files(SYSTEM):
                console.print(f"wrote {path}")

    @app.command()
    def book(symbol: str, levels: int = 10) -> None:
        """L2 depth of one instrument, rebuilt from the log."""
        state = asyncio.run(_state(load_settings()))
        if symbol not in state.matching.engine.books:
            raise typer.BadParameter(f"no instrument {symbol}")
        print_book(console, state, symbol, levels)

    @app.command()
    def balances(participant: str | None = typer.Argument(None)) -> None:
        """Cash and holdings by serial block, rebuilt from the log."""
        print_balances(console, asyncio.run(_state(load_settings())), participant)
