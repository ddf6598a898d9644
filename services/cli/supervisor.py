"""Starts the system map's processes (and a private Redis when none answers) as child processes and
restarts them; wipes a prefix's keys for a fresh demo or after a load-test run."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import structlog
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from services.system import SYSTEM
from shared.keys import Keys

__all__ = ["PROCESSES", "Supervisor", "ensure_redis", "wipe_prefix"]

PROCESSES = tuple(process.name for process in SYSTEM.processes)
log = structlog.get_logger("greenex.supervisor")
ROOT = Path(__file__).resolve().parents[2]


async def _answers(url: str) -> bool:
    """Whether a Redis server answers at `url` (one that wants a login answers too)."""
    client = Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(await client.ping())
    except (AuthenticationError, NoPermissionError):
        return True
    except (ResponseError, RedisConnectionError) as exc:
        # A server with its default user off refuses the anonymous PING (or redis-py's HELLO) by name.
        return "NOAUTH" in str(exc) or "authenticated" in str(exc)
    except OSError:
        return False
    except Exception:  # noqa: BLE001 - redis-py wraps connection errors in its own types
        return False
    finally:
        await client.aclose()


async def wipe_prefix(redis: Redis, exchange: Keys) -> None:
    """Delete every key of one exchange (every key under its prefix), a few hundred per command."""
    keys = [k async for k in redis.scan_iter(exchange.everything, count=1000)]
    for i in range(0, len(keys), 500):
        await redis.delete(*keys[i : i + 500])


async def ensure_redis(
    url: str, data_dir: Path, *, aclfile: Path | None = None, fresh: bool = False, timeout_s: float = 120.0
) -> asyncio.subprocess.Process | None:
    """Use the Redis at `url`; if none answers, start a private one with AOF in `data_dir` (listening on
    the URL's TCP port, or only on its socket for a `unix://` URL), its users from `aclfile` (the
    default user off). `fresh`: empty `data_dir` first (for data nobody keeps, like the load test's).
    A server replaying a large AOF answers only once it is loaded: wait for it up to `timeout_s`."""
    if await _answers(url):
        return None
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit(
            f"nothing answers at {url} and redis-server is not installed (run bash deploy/setup.sh)"
        )
    if fresh:
        shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        # A Unix socket costs fewer system calls per round trip than loopback TCP (loadtests/RESULTS.md).
        Path(parsed.path).parent.mkdir(parents=True, exist_ok=True)
        listen = ["--port", "0", "--unixsocket", parsed.path, "--unixsocketperm", "700"]
    else:
        listen = ["--port", str(parsed.port or 6379)]
    proc = await asyncio.create_subprocess_exec(
        server,
        str(ROOT / "deploy" / "redis.conf"),
        *listen,
        "--dir",
        str(data_dir),
        *(["--aclfile", str(aclfile)] if aclfile is not None else []),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    deadline = asyncio.get_running_loop().time() + timeout_s
    while proc.returncode is None and asyncio.get_running_loop().time() < deadline:
        if await _answers(url):
            log.info("redis_started", url=url, dir=str(data_dir), appendonly=True)
            return proc
        await asyncio.sleep(0.05)
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()
    raise SystemExit(f"redis-server did not start at {url} (exit code {proc.returncode})")


@dataclass
class Supervisor:
    """Keeps one OS process per process of the system map alive; a crash (fail fast) is answered by a
    restart."""

    env: dict[str, str]
    services: tuple[str, ...] = PROCESSES
    log_dir: Path | None = None
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    redis_pid: int | None = None  # the private Redis started beside the services, if any
    _stopping: bool = False

    async def start(self) -> None:
        for name in self.services:
            await self._spawn(name)

    async def _spawn(self, name: str) -> None:
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services",
            name,
            cwd=ROOT,
            # A supervisor killed with -9 must not leave its services running as orphans beside the
            # next `greenex up` (services/runtime/main.py watches for it).
            env={**os.environ, **self.env, "GREENEX_EXIT_WITH_PARENT": "1"},
            stdout=out,
            stderr=out if out is not None else None,
        )
        if out is not None:
            out.close()  # the child holds its own descriptor; ours would leak one per restart
        log.info("service_spawned", service=name, pid=self.procs[name].pid)

    async def watch(self) -> None:
        """Restart any service that exits until stop() is called."""
        while not self._stopping:
            for name, proc in list(self.procs.items()):
                if proc.returncode is not None and not self._stopping:
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    log.warning(
                        "service_exited", service=name, code=proc.returncode, restarts=self.restarts[name]
                    )
                    await asyncio.sleep(0.2)
                    await self._spawn(name)
            await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                proc.kill()
                await proc.wait()
