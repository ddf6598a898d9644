"""`greenex book` runs on the small app: the same command as in the whole CLI, without importing it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from services.cli.main import LIGHT_COMMANDS, command_of, full_app, light_app


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["book", "CEA-2025"], "book"),
        (["--redis-url", "unix:///x.sock", "book", "X"], "book"),
        (["--redis-url=unix:///x.sock", "balances"], "balances"),
        (["--version"], None),
        (["--help"], None),
        ([], None),
        (["op", "deposit", "acme", "10"], "op"),
    ],
)
def test_the_command_is_found_after_the_root_options(argv: list[str], command: str | None) -> None:
    assert command_of(argv) == command


def _described(app: typer.Typer, name: str) -> list[tuple[object, ...]]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.get_command(typer.Context(group), name)
    assert command is not None, name
    return [(p.name, tuple(p.opts), getattr(p, "help", None), p.default) for p in command.params]


@pytest.mark.parametrize("name", sorted(LIGHT_COMMANDS))
def test_a_light_command_is_the_whole_apps_command(name: str) -> None:
    assert _described(light_app(), name) == _described(full_app(), name)


def test_the_light_app_imports_neither_the_services_nor_the_replay() -> None:
    probe = (
        "import sys; from services.cli.main import light_app; light_app(); "
        "print(sorted(m for m in ('services.system', 'services.cli.readmodel', 'services.cli.exchange') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
