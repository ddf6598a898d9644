"""Starts the system map's processes (and a private Redis when none answers) as child processes and
restarts them; wipes a prefix's keys for a fresh demo or after a load-test run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import structlog
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, BusyLoadingError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from services.system import SYSTEM
from shared.keys import Keys

__all__ = [
    "PROCESSES", "RestartPolicy", "Supervisor", "ensure_redis", "partitioned", "redis_answers", "wipe_prefix"
]

PROCESSES = tuple(process.name for process in SYSTEM.processes)


def partitioned(partitions: int) -> tuple[str, ...]:
    """The services of an exchange run as `partitions` partitions: the map's processes for partition 1,
    then `<process>@p<i>` for each other partition (shared/partitions.py)."""
    return (*PROCESSES, *(f"{name}@p{p}" for p in range(2, partitions + 1) for name in PROCESSES))


def _process_and_env(service: str) -> tuple[str, dict[str, str]]:
    """What `python -m services` runs for a supervised service, and the partition it works in."""
    process, _, partition = service.partition("@p")
    return process, {"GREENEX_PARTITION": partition or "1"}


log = structlog.get_logger("greenex.supervisor")
ROOT = Path(__file__).resolve().parents[2]


async def redis_answers(url: str, login: tuple[str, str] | None = None) -> bool:
    """Whether a Redis server answers at `url` (one that wants a login answers too). With `login`, only
    once it has loaded its data: a locked default user is refused with NOAUTH even while the server
    is still replaying its AOF, so only a logged-in PING can tell (it answers LOADING until then)."""
    user, password = login or (None, None)
    client = Redis.from_url(url, socket_connect_timeout=0.5, username=user, password=password)
    try:
        return bool(await client.ping())
    except BusyLoadingError:
        return False
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
    url: str,
    data_dir: Path,
    *,
    aclfile: Path | None = None,
    login: tuple[str, str] | None = None,
    appendfsync: str = "everysec",
    fresh: bool = False,
    timeout_s: float = 120.0,
) -> asyncio.subprocess.Process | None:
    """Use the Redis at `url`; if none answers, start a private one with AOF in `data_dir` (listening on
    the URL's TCP port, or only on its socket for a `unix://` URL), its users from `aclfile` (the
    default user locked; `login`: a user of that file, to tell when it has loaded its data),
    `appendfsync` its durability profile (docs/operations.md). `fresh`: empty `data_dir` first (for
    data nobody keeps, like the load test's). A server replaying a large AOF answers only once it is
    loaded: wait for it up to `timeout_s`."""
    if await redis_answers(url):
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
        "--appendfsync",
        appendfsync,
        "--logfile",
        str(data_dir / _SERVER_LOG),  # why it stopped, if it does: the error below quotes it
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal is the supervisor's to handle, in order
    )
    deadline = asyncio.get_running_loop().time() + timeout_s
    while proc.returncode is None and asyncio.get_running_loop().time() < deadline:
        if await redis_answers(url, login):
            log.info("redis_started", url=url, dir=str(data_dir), appendonly=True)
            return proc
        await asyncio.sleep(0.05)
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()
    why = _last_line(data_dir / _SERVER_LOG)
    raise SystemExit(
        f"redis-server did not start at {url} (exit code {proc.returncode})"
        + (f": {why} (its log: {data_dir / _SERVER_LOG})" if why else "")
    )


_SERVER_LOG = "redis-server.log"


def _last_line(path: Path) -> str:
    """The last line a server logged, without its pid and time stamp ("123:M 01 Dec ... # <text>")."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].split(" # ", 1)[-1].split(" * ", 1)[-1].strip() if lines else ""


@dataclass(frozen=True)
class RestartPolicy:
    """How a supervisor answers a service that exits: at once the first time, then twice as slow each
    time it exits again soon after starting, and not at all once it crash-loops (something an operator
    must look at: a restart would only repeat it, and fill the logs while Redis is down, say)."""

    first_delay_s: float = 0.2
    max_delay_s: float = 30.0
    stable_after_s: float = 30.0  # a run this long was not a crash loop: the backoff starts over
    crash_loop: int = 10  # this many exits within `window_s`: give up on the service
    window_s: float = 120.0

    def delay(self, quick_exits: int) -> float:
        """The wait before the restart that follows `quick_exits` exits in a row, each soon after start."""
        return min(self.first_delay_s * 2.0 ** max(0, quick_exits - 1), self.max_delay_s)


@dataclass
class Supervisor:
    """Keeps one OS process per process of the system map alive; a crash (fail fast) is answered by a
    restart, with backoff, until the service crash-loops (`given_up` is set then). `notify` gets one
    line per event, for a console."""

    env: dict[str, str]
    services: tuple[str, ...] = PROCESSES
    log_dir: Path | None = None
    policy: RestartPolicy = RestartPolicy()
    notify: Callable[[str], None] | None = None
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    redis_pid: int | None = None  # the private Redis started beside the services, if any
    given_up: asyncio.Event = field(default_factory=asyncio.Event)
    gave_up_on: str | None = None
    _stopping: bool = False
    _started_at: dict[str, float] = field(default_factory=dict)
    _quick_exits: dict[str, int] = field(default_factory=dict)
    _exits: dict[str, list[float]] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)  # service -> when to restart it

    async def start(self) -> None:
        for name in self.services:
            await self._spawn(name)

    async def _spawn(self, name: str) -> None:
        process, partition_env = _process_and_env(name)
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services",
            process,
            cwd=ROOT,
            # A supervisor killed with -9 must not leave its services running as orphans beside the
            # next `greenex up` (services/runtime/main.py watches for it).
            env={**os.environ, **self.env, **partition_env, "GREENEX_EXIT_WITH_PARENT": "1"},
            stdout=out,
            stderr=out if out is not None else None,
            start_new_session=True,  # Ctrl-C is the supervisor's: it stops the services, then Redis
        )
        if out is not None:
            out.close()  # the child holds its own descriptor; ours would leak one per restart
        self._started_at[name] = time.monotonic()
        log.info("service_spawned", service=name, pid=self.procs[name].pid)

    def _say(self, line: str) -> None:
        if self.notify is not None:
            self.notify(line)

    async def watch(self) -> None:
        """Restart any service that exits (with backoff) until stop() is called or one crash-loops."""
        while not self._stopping:
            now = time.monotonic()
            for name, proc in list(self.procs.items()):
                if proc.returncode is not None and name not in self._due and not self._stopping:
                    self._exited(name, proc.returncode, now)
                    if self.gave_up_on is not None:
                        return
            for name, when in list(self._due.items()):
                if now >= when and not self._stopping:
                    del self._due[name]
                    await self._spawn(name)
            await asyncio.sleep(0.1)

    def _exited(self, name: str, code: int, now: float) -> None:
        policy = self.policy
        self.restarts[name] = self.restarts.get(name, 0) + 1
        quick = now - self._started_at.get(name, now) < policy.stable_after_s
        self._quick_exits[name] = self._quick_exits.get(name, 0) + 1 if quick else 1
        recent = [t for t in self._exits.get(name, []) if now - t < policy.window_s] + [now]
        self._exits[name] = recent
        where = f"; see {self.log_dir / (name + '.log')}" if self.log_dir is not None else ""
        if len(recent) >= policy.crash_loop:
            self.gave_up_on = name
            log.critical("service_crash_loop", service=name, code=code, exits=len(recent))
            self._say(
                f"{name} exited {len(recent)} times in {policy.window_s:.0f} s (last code {code}): "
                f"not restarting it{where}"
            )
            self.given_up.set()
            return
        delay = policy.delay(self._quick_exits[name])
        log.warning("service_exited", service=name, code=code, restarts=self.restarts[name], delay_s=delay)
        self._say(f"{name} exited with code {code}; restarting in {delay:.1f} s{where}")
        self._due[name] = now + delay

    async def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):  # it exited just now
                    proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                proc.kill()
                await proc.wait()
