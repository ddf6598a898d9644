"""The CLI is for people: an expected failure is one line on stderr with a hint and a documented exit
code (README, "Exit codes"), never a traceback, from the `greenex` script itself (services/cli/main.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.supervisor import ROOT

pytestmark = pytest.mark.integration


def _greenex(home: Path, *args: str, keys: bool = True, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": f"unix://{home / 'nobody.sock'}", "GREENEX_HOME": str(home),
           "GREENEX_KEYS_DIR": str(home / ("keys" if keys else "no-keys")), **env_extra}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args], cwd=home, env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key ring and no Redis: what an operator has right after `greenex demo` stopped."""
    path = tmp_path_factory.mktemp("cli")
    assert _greenex(path, "keys", "init").returncode == 0
    return path


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


REDIS_COMMANDS = [
    ["book", "CEA-2025"], ["balances"], ["log", "verify"], ["replay"], ["audit", "ann"], ["registry"],
    ["op", "deposit", "ann", "10"], ["label", "x"], ["status"], ["dead-letters", "list"],
]  # fmt: skip
MISSING_FILES = [
    (["log", "verify", "--file", "/nonexistent"], "No such file or directory: /nonexistent"),
    (["log", "export", "/nonexistent/dir/x"], "No such file or directory: /nonexistent/dir/x"),
]


@pytest.mark.parametrize("command", REDIS_COMMANDS, ids=" ".join)
def test_with_redis_down_every_command_says_so_in_one_line(home: Path, command: list[str]) -> None:
    result = _greenex(home, *command)
    assert result.returncode == 1
    line = _one_line(result)
    assert line.startswith("error: ")
    assert "nobody.sock" in line


def test_without_a_key_ring_the_hint_says_how_to_make_one(home: Path) -> None:
    result = _greenex(home, "book", "CEA-2025", keys=False)
    assert result.returncode == 1
    assert "greenex keys init" in _one_line(result)


@pytest.mark.parametrize(("command", "says"), MISSING_FILES)
def test_a_missing_file_is_one_line(home: Path, command: list[str], says: str) -> None:
    result = _greenex(home, *command)
    assert result.returncode == 1
    assert says in _one_line(result)


def test_a_setting_out_of_range_is_one_line(home: Path) -> None:
    """GREENEX_PARTITION names a partition the exchange does not run: one line naming the setting."""
    result = _greenex(home, "partitions", GREENEX_PARTITIONS="2", GREENEX_PARTITION="3")
    assert result.returncode == 1
    assert "GREENEX_PARTITION is 1 to GREENEX_PARTITIONS (2), not 3" in _one_line(result)


@pytest.mark.parametrize("venue", ["szgx/p2", "a:b", "two words", "line\nbreak"])
def test_a_venue_checkpoints_could_not_name_unambiguously_is_refused(home: Path, venue: str) -> None:
    """Partition n's checkpoints sign `<venue>/p<n>` with ':' between fields: a venue `szgx/p2` would read
    as partition 2 in partition 1's checkpoints."""
    result = _greenex(home, "partitions", GREENEX_VENUE=venue)
    assert result.returncode == 1
    assert "GREENEX_VENUE is printable text without '/', ':' or spaces" in _one_line(result)


def test_a_bad_value_is_a_usage_error(home: Path) -> None:
    result = _greenex(home, "replay", "--until-time", "garbage")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "is not an ISO time" in result.stderr


def test_version(home: Path) -> None:
    result = _greenex(home, "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("greenex ")
    assert ROOT.is_dir()


@pytest.mark.parametrize(
    ("command", "says"),
    [(["op", "deposit", "ann", "abc"], "'abc' is not an amount in CNY"),
     (["op", "withdraw", "ann", "0.001"], "'0.001' is not an amount in CNY"),
     (["book", "CEA-2025", "--levels", "0"], "greater than or equal to 1")],
    ids=["deposit abc", "withdraw 0.001", "book --levels 0"],
)
def test_values_are_checked_at_the_edge(home: Path, command: list[str], says: str) -> None:
    result = _greenex(home, *command)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert says in " ".join(result.stderr.replace("│", " ").split())


def test_redis_url_before_any_command_points_it_elsewhere(home: Path) -> None:
    result = _greenex(home, "--redis-url", f"unix://{home / 'elsewhere.sock'}", "balances")
    assert result.returncode == 1
    assert "elsewhere.sock" in _one_line(result)
