"""The `greenex` command: operator and developer entry point composing the services."""

from __future__ import annotations

import os

import typer

from services.cli import audit, replay, status
from services.cli.compliance_cli import register_compliance
from services.cli.deadletters import dead_letters_app
from services.cli.errors import run_cli
from services.cli.exchange import register
from services.cli.loadtest import register as register_loadtest
from services.cli.log import log_app
from services.cli.operator import op_app
from services.cli.registry_cli import register_registry
from services.cli.security_cli import acl_app, keys_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="greenex",
    help="greenex carbon-credit exchange: services, replay, operator tools.",
    no_args_is_help=True,
)


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import PackageNotFoundError  # noqa: PLC0415 - ~50 ms on every start-up
        from importlib.metadata import version as package_version  # noqa: PLC0415

        try:
            typer.echo(f"greenex {package_version('greenex')}")
        except PackageNotFoundError:
            typer.echo("greenex (not installed: run bash deploy/setup.sh)")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print it."),
    redis_url: str | None = typer.Option(
        None, "--redis-url", help="The exchange's Redis for any command (default: REDIS_URL, or var/redis)."
    ),
) -> None:
    """greenex carbon-credit exchange."""
    if redis_url:
        os.environ["REDIS_URL"] = redis_url  # every command reads its settings from the environment


app.add_typer(log_app, name="log")
app.add_typer(op_app, name="op")
app.add_typer(keys_app, name="keys")
app.add_typer(acl_app, name="acl")
app.add_typer(dead_letters_app, name="dead-letters")
register(app)
register_registry(app)
register_compliance(app)
register_loadtest(app)
replay.register(app)
audit.register(app)
status.register(app)


def main() -> None:
    """The `greenex` script: the app, with one line instead of a traceback for an expected failure."""
    run_cli(app)


if __name__ == "__main__":
    main()
