"""`greenex up`, `greenex demo`, `greenex book`, `greenex balances`: run the exchange and look at it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from services.cli.demo import run_session, seed_exchange, wait_quiet
from services.cli.demo_compliance import run_compliance
from services.cli.demo_registry import run_registry_chain
from services.cli.fastview import view_state
from services.cli.history import history
from services.cli.local import AlreadyRunning, default_home, local_exchange, private_settings
from services.cli.readmodel import ExchangeState, replay_log
from services.cli.supervisor import ROOT, redis_answers
from services.cli.venue import Venue
from services.cli.views import conservation_problems, print_balances, print_book, print_summary
from shared.config import Settings, cli_user, load_settings
from shared.logging import configure_logging

__all__ = ["DemoKept", "clear_demo_home", "register", "replayed_book"]

console = Console()


def replayed_book(settings: Settings, symbol: str, levels: int) -> None:
    """`greenex book --replay`: the book rebuilt from the services' snapshots and the log."""
    state = asyncio.run(_state(settings))
    if symbol not in state.matching.engine.books:
        raise typer.BadParameter(f"no instrument {symbol}")
    print_book(console, state, symbol, levels)


async def _state(settings: Settings) -> ExchangeState:
    venue = Venue(settings)
    try:
        return await view_state(settings, venue.redis(cli_user()))
    finally:
        await venue.aclose()


async def _up(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    home = default_home()
    local = local_exchange(settings, home / "redis", log_dir=home / "log", notify=_console_line)
    async with local as supervisor:
        console.print(
            f"greenex up against {settings.redis_url} (keys in {settings.keys_dir}); "
            f"service logs in {home / 'log'}; Ctrl-C stops"
        )
        if settings.partitions > 1:
            console.print(
                f"{settings.partitions} partitions: set GREENEX_PARTITIONS={settings.partitions} for other "
                "commands and GREENEX_PARTITION=<n> to work in partition n; `greenex partitions` checks "
                "them all", highlight=False,
            )  # fmt: skip
        stopped, gave_up = asyncio.create_task(stop.wait()), asyncio.create_task(supervisor.given_up.wait())
        await asyncio.wait([stopped, gave_up], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        gave_up.cancel()
        if supervisor.gave_up_on is not None:
            raise CrashLoop(supervisor.gave_up_on)
    console.print("greenex stopped")


class CrashLoop(Exception):  # noqa: N818  -- named as the fact
    """A service kept crashing: `greenex up` stops everything rather than run without it."""


def _console_line(line: str) -> None:
    console.print(f"{time.strftime('%H:%M:%S')} {line}", highlight=False)


DEMO_HOME = ROOT / "var" / "demo"


class DemoKept(Exception):  # noqa: N818  -- named as the fact
    """var/demo holds an exchange that the demo will not wipe (a running one, or without --fresh)."""


async def clear_demo_home(home: Path, fresh: bool) -> None:
    """Nothing is wiped without --fresh, and never under a running exchange."""
    if not home.is_dir() or not any(home.iterdir()):
        return
    if await redis_answers(private_settings(home).redis_url):
        raise DemoKept(f"a demo exchange is running under {home}: stop it (Ctrl-C) first")
    if not fresh:
        raise DemoKept(
            f"{home} holds the last demo's exchange (its log, keys and service logs): "
            "`greenex demo --fresh` replaces it"
        )
    shutil.rmtree(home)


def _run_demo(orders: int, seed: int, fresh: bool) -> int:
    try:
        return asyncio.run(_demo(orders, seed, fresh))
    except DemoKept as kept:
        typer.echo(f"error: {kept}", err=True)
        return 1


async def _demo(orders: int, seed: int, fresh: bool) -> int:
    """A new exchange on its own private Redis and key ring under var/demo/, ACLs on."""
    await clear_demo_home(DEMO_HOME, fresh)
    settings = private_settings(DEMO_HOME)  # the default venue: `GREENEX_HOME=var/demo greenex up` resumes it
    async with local_exchange(settings, DEMO_HOME / "redis", log_dir=DEMO_HOME / "log"):
        venue = Venue(settings)
        try:
            await seed_exchange(venue)
            # The registry chain first: the maker then retires what it bought before the session's orders
            # freeze any of its credits, whatever the session's size.
            with console.status("registry chain: label, purchase, retirement, neutrality claim"):
                await run_registry_chain(venue)
            # Compliance before the session too: the emitters surrender from holdings no order froze yet.
            with console.status("compliance year 2025: allocation, verified emissions, surrenders"):
                await run_compliance(venue)
            with Progress(console=console) as progress:
                task = progress.add_task(f"trading session ({orders} signed commands)", total=orders)
                await run_session(venue, orders, seed, lambda n: progress.advance(task, n))
            with console.status("waiting for the services to drain"):
                await wait_quiet(venue)
            state = await replay_log(history(settings, venue.redis(cli_user())))
        finally:
            await venue.aclose()
    print_summary(console, state)
    console.print(f"the demo's exchange (Redis AOF, keys, logs) is under {DEMO_HOME}, ACLs on throughout")
    where = DEMO_HOME.relative_to(Path.cwd()) if DEMO_HOME.is_relative_to(Path.cwd()) else DEMO_HOME
    home = f"GREENEX_HOME={where}"
    console.print(f"to look at it again: `{home} .venv/bin/greenex up`, then in another terminal "
                  f"`{home} .venv/bin/greenex book CEA-2025` (or balances, registry, audit ...)")  # fmt: skip
    return 1 if conservation_problems(state) else 0


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        partitions: int = typer.Option(
            0, help="run the exchange as this many partitions (default: GREENEX_PARTITIONS, else 1); "
            "docs/operations.md, 'Partitions'", show_default=False,
        ),
    ) -> None:
        """Start every process of the system map: on its own private Redis (ACLs on, a Unix socket under
        var/redis) unless REDIS_URL names a provisioned one (`greenex acl apply`); with partitions, every
        process once per partition."""
        configure_logging()
        try:
            settings = load_settings(partitions=partitions or None)
        except ValueError as bad:
            typer.echo(f"error: {bad}", err=True)
            raise typer.Exit(1) from None
        try:
            asyncio.run(_up(settings))
        except AlreadyRunning as running:
            typer.echo(f"error: {running}", err=True)
            raise typer.Exit(1) from None
        except CrashLoop as loop:
            typer.echo(f"error: {loop} kept crashing; everything is stopped (its log says why)", err=True)
            raise typer.Exit(1) from None

    @app.command()
    def demo(
        orders: int = typer.Option(3000, help="signed commands (orders, cancels, replaces) in the session"),
        seed: int = typer.Option(2025, help="seed of the session's order flow"),
        fresh: bool = typer.Option(False, "--fresh", help="replace the last demo's exchange under var/demo"),
    ) -> None:
        """A new exchange on an embedded private Redis (ACLs on) under var/demo: seed it, run a realistic
        trading session, print the summary."""
        configure_logging("WARNING")
        with contextlib.suppress(KeyError):
            os.environ.pop("GREENEX_LOG_LEVEL")
        raise typer.Exit(_run_demo(orders, seed, fresh))

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
    def balances(
        participant: str | None = typer.Argument(None),
        serials: bool = typer.Option(False, "--serials", help="also list the serial blocks held"),
    ) -> None:
        """Cash, and tonnes held by instrument, project and vintage, rebuilt from the log."""
        state = asyncio.run(_state(load_settings()))
        if participant is not None and participant not in state.settlement.balances():
            hint = "`greenex balances` lists them"
            typer.echo(f"error: no account {participant!r} at seq {state.seq} ({hint})", err=True)
            raise typer.Exit(1)
        print_balances(console, state, participant, serials)
