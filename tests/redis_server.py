"""A private redis-server per test session (or per durability test): own port, own directory."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["REDIS_MISSING", "RedisServer", "free_port"]

REDIS_MISSING = (
    "redis-server is not on PATH: the integration tests start their own private Redis (>= 7). "
    "Run the project's setup script, or install it (e.g. `apt-get install redis-server`)."
)


def free_port() -> int:
    # The port could be taken between closing this socket and redis binding it; rare enough to accept.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """Start, stop (clean shutdown), kill (crash) or freeze a redis-server; restarts keep port and dir."""

    def __init__(self, workdir: Path, *, appendonly: bool = False, extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(REDIS_MISSING)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir),
                "--logfile", str(self.workdir / "redis.log"), *self.extra_args]  # fmt: skip
        log = self.workdir / "redis.log"
        logged_before = log.stat().st_size if log.exists() else 0
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not (self._answers_ping() and self._ready_since(logged_before)):
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer PING within {timeout}s: {self._log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Clean shutdown: on SIGTERM redis flushes its AOF before exiting."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Crash: SIGKILL, so only what already reached the AOF survives."""
        self._end(signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: the server stops between two steps, as on a machine that lost power; the files it
        wrote stay exactly as they are until kill()."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def _end(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(sig)
        self._proc.wait(timeout=30)
        self._proc = None

    def _answers_ping(self) -> bool:
        # A raw PING rather than a client: redis-py would retry with backoff, and a loading server
        # answers -LOADING, which must count as not ready.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                # A server whose default user is locked refuses the anonymous PING: it is up all the same.
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def _ready_since(self, offset: int) -> bool:
        # A server whose default user is locked answers -NOAUTH even while it loads its AOF, so the
        # PING alone cannot tell; its log says when it is ready.
        log = self.workdir / "redis.log"
        if not log.exists():
            return False
        with log.open("rb") as text:
            text.seek(offset)
            return b"Ready to accept connections" in text.read()

    def _log_tail(self) -> str:
        log = self.workdir / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
