"""deploy/Procfile runs an exchange as written, under a real Procfile runner (honcho), on a directory
with nothing made first: the redis line makes the key ring, Redis comes up with the ring's users and its
default user locked, every process of the map waits for it and then follows the log; a stop signal
stops every process cleanly, Redis last, and a second start resumes from the snapshots the first wrote."""

from __future__ import annotations

import contextlib
import os
import re
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

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]
KEYS = Keys("greenex")  # the Procfile's processes run with the default settings
HONCHO = Path(sys.executable).parent / "honcho"  # a dev dependency (pyproject.toml)


def _entries(procfile: Path) -> dict[str, str]:
    lines = [line for line in procfile.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split(": ", 1) for line in lines)


@dataclass
class Deployed:
    """A copy of deploy/ in an empty directory, and the honcho runs started on it (one at a time)."""

    home: Path
    env: dict[str, str]
    runner: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def output(self) -> Path:
        return self.home / f"honcho-{self.runs}.out"

    def start(self) -> None:
        self.runs += 1
        with self.output.open("w") as out:
            self.runner = subprocess.Popen(
                [str(HONCHO), "--no-colour", "start", "-f", "deploy/Procfile"],
                cwd=self.home, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def stop(self, timeout_s: float = 20.0) -> tuple[int, str]:
        """Ctrl-C, as in a terminal: honcho's exit code and everything it printed."""
        assert self.runner is not None
        self.runner.send_signal(signal.SIGINT)
        code = self.runner.wait(timeout=timeout_s)
        self.runner = None
        return code, self.output.read_text()

    def greenex(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "services.cli.main", *args]
        return subprocess.run(
            command, check=False, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=60
        )

    def admin(self) -> redis.Redis:
        password = KeyRing(self.home / "var" / "keys").redis_password("admin")
        return redis.Redis(unix_socket_path=str(self.socket), username="admin", password=password)

    @property
    def socket(self) -> Path:
        return self.home / "var" / "redis" / "redis.sock"


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    """deploy/ copied into an empty directory (no key ring, no var/), run by honcho as its header says."""
    if not HONCHO.exists():
        pytest.fail("honcho is not installed: run `bash deploy/setup.sh` (it is a dev dependency)")
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # `python` is this interpreter
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path}
    for name in ("REDIS_URL", "GREENEX_KEYS_DIR", "GREENEX_PREFIX", "GREENEX_HOME", "GREENEX_CLI_USER"):
        env.pop(name, None)
    site = Deployed(tmp_path, env)
    try:
        yield site
    finally:
        if site.runner is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(site.runner.pid, signal.SIGKILL)
            site.runner.wait(timeout=10)
        _kill_left_in(tmp_path)


def _kill_left_in(home: Path) -> None:
    """What a failed test leaves behind, out of honcho's reach: the Redis (a session of its own) and any
    service honcho started that still waits for it (`--wait 120`), found by its working directory."""
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            args = (proc / "cmdline").read_bytes()
            started_here = (proc / "cwd").resolve().is_relative_to(home)
            ours = b"redis-server" in args and str(home).encode() in args
            if ours or (started_here and b"services" in args):
                os.kill(int(proc.name), signal.SIGKILL)


def _wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError):
            if predicate():
                return
        time.sleep(0.2)
    raise AssertionError(f"the Procfile's exchange never got there: {what}")


def _every_core_folded(admin: redis.Redis, seq: int) -> Callable[[], bool]:
    def check() -> bool:
        digests = parse_digests(admin.hgetall(KEYS.digests))  # type: ignore[arg-type]  # sync client
        return all(digests.get(core, (0, ""))[0] >= seq for core in SYSTEM.core_names)

    return check


def test_the_procfile_has_redis_and_every_process_of_the_map() -> None:
    assert list(_entries(PROCFILE)) == ["redis", *(p.name for p in SYSTEM.processes)]


def test_the_procfile_starts_on_a_fresh_directory_and_stops_cleanly(deployed: Deployed) -> None:
    """Every line at once on an empty directory: the key ring is made, the services wait for it and
    for Redis (one line each), the exchange follows the log behind its ACLs. Ctrl-C: every process
    exits 0, Redis after the services; a second start resumes from the snapshots they wrote."""
    assert not (deployed.home / "var").exists()
    deployed.start()
    _wait_for("the key ring and Redis's socket", deployed.socket.exists)
    admin = deployed.admin()
    _wait_for("intake reads the operator's stream", lambda: bool(admin.exists(KEYS.commands("operator"))))
    added = deployed.greenex("op", "add-participant", "alice", "Alice Ltd")
    assert added.returncode == 0, added.stdout + added.stderr
    # Each process reached Redis as its own user, with the ring's password, and follows the log.
    _wait_for("every core folds the operator's entry", _every_core_folded(admin, 1))
    head = admin.xlen(KEYS.log)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=str(deployed.socket)).ping()  # the default user is locked
    assert deployed.socket.stat().st_mode & 0o777 == 0o700
    admin.close()

    code, first = deployed.stop()
    names = list(_entries(PROCFILE))
    for name in names[1:]:
        assert re.search(rf"{name}\.1 +\| .*\"waiting_for_(keys|redis)\"", first), f"{name} did not wait"
    stopped = re.findall(r"system +\| (\w+)\.1 stopped \(rc=(-?\d+)\)", first)
    assert sorted(stopped) == sorted((name, "0") for name in names), first
    assert [name for name, _ in stopped][-1] == "redis"  # last: the services wrote their snapshots first
    assert "service_crashed" not in first
    assert "SIGKILL" not in first
    assert code == 130  # honcho's own code after a Ctrl-C
    assert not deployed.socket.exists()  # Redis shut down (it removes its socket)

    deployed.start()  # the ring is kept, Redis loads its AOF, each core restores its snapshot
    admin = deployed.admin()
    leases = [KEYS.lease(name) for name in names[1:]]  # released at the stop, taken again at this start
    _wait_for("every process holds its lease again", lambda: admin.exists(*leases) == len(leases))
    _wait_for("every core resumes", lambda: len(_resumed(deployed.output)) == len(SYSTEM.core_names))
    assert _resumed(deployed.output) == dict.fromkeys(SYSTEM.core_names, head)  # from the stop's snapshots
    assert admin.xlen(KEYS.log) == head
    admin.close()
    _, second = deployed.stop()
    assert "snapshot_missing_full_replay" in first
    assert "snapshot_missing_full_replay" not in second
    assert "service_crashed" not in second


def _resumed(output: Path) -> dict[str, int]:
    """The seq each core resumed after, from its `service_starting` line."""
    pattern = r'"service": "(\w+)", "position": "[^"]*", "resume_after": (\d+), "event": "service_starting"'
    return {core: int(seq) for core, seq in re.findall(pattern, output.read_text())}


def test_a_service_told_to_wait_gives_up_in_one_line(tmp_path: Path) -> None:
    """`--wait`: missing key files, then a Redis that never answers, each named once the wait is over."""
    keys = tmp_path / "keys"
    env = {**os.environ, "GREENEX_KEYS_DIR": str(keys), "REDIS_URL": "redis://127.0.0.1:1/0"}
    command = [sys.executable, "-m", "services", "matching", "--wait", "0.5"]

    def last_line() -> str:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=30, env=env, check=False
        )
        assert done.returncode == 1
        return done.stderr.strip().splitlines()[-1]

    assert last_line() == (
        f"matching: refusing to start: no log-master.key, redis-matching.pass in {keys} after 0.5 s"
        " (run `greenex keys init`)"
    )
    KeyRing.create(keys, ("matching",))
    unreachable = "matching: refusing to start: Redis at redis://127.0.0.1:1/0 did not answer within 0.5 s"
    assert last_line().startswith(unreachable)
