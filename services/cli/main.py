"""The `greenex` command: operator and developer entry point composing the services.

Importing every command's module costs most of a second on these machines (the services, the replay
machinery, the registry's badge renderer ...). The commands people run most often and that need little
(`greenex book`, `--version`) run on a small app that holds only them; any other command, `--help` and
the module attribute `app` get the whole one. Both share the root options, and a test keeps the small
app's commands identical to the whole app's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer

from services.cli.book_cli import register_book
from services.cli.errors import run_cli

__all__ = ["LIGHT_COMMANDS", "full_app", "light_app", "main"]  # and `app` (module __getattr__)

LIGHT_COMMANDS = frozenset({"book"})
_HELP = "greenex carbon-credit exchange: services, replay, operator tools."


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import PackageNotFoundError  # noqa: PLC0415 - ~50 ms on every start-up
        from importlib.metadata import version as package_version  # noqa: PLC0415

        try:
            typer.echo(f"greenex {package_version('greenex')}")
        except PackageNotFoundError:
            typer.echo("greenex (not installed: run bash deploy/setup.sh)")
        raise typer.Exit


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print it."),
    redis_url: str | None = typer.Option(
        None, "--redis-url", help="The exchange's Redis for any command (default: REDIS_URL, or var/redis)."
    ),
) -> None:
    """greenex carbon-credit exchange."""
    if redis_url:
        os.environ["REDIS_URL"] = redis_url  # every command reads its settings from the environment


def _new_app() -> typer.Typer:
    app = typer.Typer(name="greenex", help=_HELP, no_args_is_help=True)
    app.callback()(_root)
    return app


def light_app() -> typer.Typer:
    """The root options and the light commands only."""
    app = _new_app()
    register_book(app)
    return app


def full_app() -> typer.Typer:
    """Every command."""
    # The whole CLI, imported only when a command needs it (see the module docstring).
    from services.cli import audit, partitions, replay, status  # noqa: PLC0415
    from services.cli.compliance_cli import register_compliance  # noqa: PLC0415
    from services.cli.deadletters import dead_letters_app  # noqa: PLC0415
    from services.cli.exchange import register  # noqa: PLC0415
    from services.cli.loadtest import register as register_loadtest  # noqa: PLC0415
    from services.cli.log import log_app  # noqa: PLC0415
    from services.cli.operator import op_app  # noqa: PLC0415
    from services.cli.public_cli import register_public  # noqa: PLC0415
    from services.cli.registry_cli import register_registry  # noqa: PLC0415
    from services.cli.security_cli import acl_app, keys_app  # noqa: PLC0415

    app = _new_app()
    app.add_typer(log_app, name="log")
    app.add_typer(op_app, name="op")
    app.add_typer(keys_app, name="keys")
    app.add_typer(acl_app, name="acl")
    app.add_typer(dead_letters_app, name="dead-letters")
    register_book(app)
    register(app)
    register_registry(app)
    register_compliance(app)
    register_loadtest(app)
    replay.register(app)
    audit.register(app)
    status.register(app)
    partitions.register(app)
    register_public(app)
    return app


def command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list runs (after the root options), or None for none (help, --version)."""
    args = iter(argv)
    for arg in args:
        if arg == "--redis-url":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
        elif arg in ("--help", "--version", "--install-completion", "--show-completion"):
            return None
    return None


def main() -> None:
    """The `greenex` script: the app, with one line instead of a traceback for an expected failure."""
    command = command_of(sys.argv[1:])
    light = command in LIGHT_COMMANDS or (command is None and "--version" in sys.argv[1:])
    run_cli(light_app() if light else full_app())


def __getattr__(name: str) -> Any:
    """`app`, the whole CLI, built when first asked for (tests and typer's tooling import it)."""
    if name == "app":
        built = globals()["app"] = full_app()
        return built
    raise AttributeError(name)


if __name__ == "__main__":
    main()
