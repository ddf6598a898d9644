"""The Procfile's Redis: `python -m services.cli.procfile_redis redis-server ARGS...` runs the server and,
when the runner stops everything, stops it only after the exchange's processes have let go of it.

A Procfile runner (honcho, foreman, overmind) signals every line at once. Redis shuts down within a
millisecond, the services take a few hundred: each would lose its last snapshot and digest, leave its
lease to lapse, and some would log a crash for the connection Redis closed under their shutdown. So
the server runs in a session of its own, out of the runner's reach, and the runner's signal is passed
on to it once the processes that held the map's leases have exited (or after a bound, well inside the
runners' five seconds before SIGKILL); if Redis exits first, this exits with its code, and the runner
stops the rest as it would have.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType
from typing import cast

import structlog
from redis.exceptions import RedisError

from services.system import SYSTEM
from shared.config import OPERATOR_USER, connect, load_settings
from shared.eventlog.lease import holder_of
from shared.keyring import KeyMissing
from shared.logging import configure_logging

__all__ = ["RELEASE_WAIT_S", "main"]

RELEASE_WAIT_S = 3.0  # foreman, honcho and overmind send SIGKILL 5 s after their SIGTERM
log = structlog.get_logger("greenex.procfile")


def main(command: list[str]) -> int:
    """Run `command` (a redis-server) until it exits or a stop signal comes; return its exit code."""
    if not command:
        sys.exit("usage: python -m services.cli.procfile_redis redis-server [ARGS...]")
    configure_logging("INFO")
    received: list[int] = []

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    # A session of its own: the runner's signal is ours to pass on. The command is the Procfile's own line.
    server = subprocess.Popen(command, start_new_session=True)  # noqa: S603
    while server.poll() is None and not received:
        time.sleep(0.05)
    if received and server.poll() is None:
        holders = asyncio.run(_lease_holders_here())
        waited = _until_gone(holders, RELEASE_WAIT_S)
        log.info("stopping_redis_last", waited_s=round(waited, 2), signal=signal.Signals(received[0]).name)
        server.send_signal(received[0])
    return server.wait()


async def _lease_holders_here() -> list[int]:
    """The pids of this host's processes that hold the map's leases. Their processes, not the leases,
    are what to wait for: a service releases its lease before its last snapshot is written. A Redis or
    key ring we cannot read means nobody to wait for."""
    settings = load_settings()
    try:
        redis = connect(settings, OPERATOR_USER)
    except KeyMissing:
        return []
    try:
        leases = [await redis.get(settings.keys.lease(p.name)) for p in SYSTEM.processes]
        values = cast(list[bytes | None], leases)
    except (RedisError, OSError):
        return []
    finally:
        await redis.aclose()
    here = [holder_of(v.decode()) for v in values if v is not None]
    return [int(pid) for host, pid in here if host == socket.gethostname() and pid.isdigit()]


def _until_gone(pids: list[int], bound_s: float) -> float:
    """Wait until none of `pids` exists, at most `bound_s`; the seconds waited."""
    start = time.monotonic()
    while any(_alive(pid) for pid in pids) and time.monotonic() - start < bound_s:
        time.sleep(0.05)
    return time.monotonic() - start


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
