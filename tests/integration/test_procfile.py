"""deploy/Procfile runs an exchange as written: a fresh key ring, Redis on the services' default socket
with the ring's users and its default user locked, every process of the map following the log."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from services.cli.deployfiles import PROCFILE
from services.cli.supervisor import ROOT
from services.runtime.digests import parse_digests
from services.system import SYSTEM
from shared.keyring import KeyRing
from shared.keys import Keys

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
KEYS = Keys("greenex")  # the Procfile's processes run with the default settings


def _entries(procfile: Path) -> dict[str, str]:
    lines = [line for line in procfile.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split(": ", 1) for line in lines)


@dataclass(frozen=True)
class Deployed:
    home: Path
    env: dict[str, str]

    def greenex(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "services.cli.main", *args]
        return subprocess.run(
            command, check=False, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    """A directory laid out as the Procfile's header says, each entry running in it as honcho would."""
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # `python` is this interpreter
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path}
    for name in ("REDIS_URL", "GREENEX_KEYS_DIR", "GREENEX_PREFIX", "GREENEX_HOME", "GREENEX_CLI_USER"):
        env.pop(name, None)
    site = Deployed(tmp_path, env)
    assert site.greenex("keys", "init").returncode == 0
    (tmp_path / "var" / "redis").mkdir()
    with contextlib.ExitStack() as outputs:
        procs = []
        for name, command in _entries(tmp_path / "deploy" / "Procfile").items():
            output = outputs.enter_context((tmp_path / f"{name}.out").open("w"))
            procs.append(
                subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=tmp_path,
                    env=env,
                    start_new_session=True,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            )
        try:
            yield site
        finally:
            for proc in reversed(procs):
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=10)


def _wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError):
            if predicate():
                return
        time.sleep(0.2)
    raise AssertionError(f"the Procfile's exchange never got there: {what}")


def test_the_procfile_has_redis_and_every_process_of_the_map() -> None:
    assert list(_entries(PROCFILE)) == ["redis", *(p.name for p in SYSTEM.processes)]


def test_the_procfile_starts_an_exchange_behind_its_acls(deployed: Deployed) -> None:
    socket = deployed.home / "var" / "redis" / "redis.sock"
    password = KeyRing(deployed.home / "var" / "keys").redis_password("admin")
    admin = redis.Redis(unix_socket_path=str(socket), username="admin", password=password)
    _wait_for("intake reads the operator's stream", lambda: bool(admin.exists(KEYS.commands("operator"))))
    added = deployed.greenex("op", "add-participant", "alice", "Alice Ltd")
    assert added.returncode == 0, added.stdout + added.stderr

    def every_core_folded_it() -> bool:
        digests = parse_digests(admin.hgetall(KEYS.digests))  # type: ignore[arg-type]  # sync client
        return all(digests.get(core, (0, ""))[0] >= 1 for core in SYSTEM.core_names)

    # Each process reached Redis as its own user, with the ring's password, and follows the log.
    _wait_for("every core folds the operator's entry", every_core_folded_it)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=str(socket)).ping()  # the default user is locked
    assert socket.stat().st_mode & 0o777 == 0o700
    admin.close()
