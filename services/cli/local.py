"""An exchange on this machine: its key ring, a private Redis with ACLs on (default user off), and the
supervised processes of the system map. What `greenex up`, the demo, the load test and the end-to-end
tests run; it never touches a Redis it did not start unless told its URL."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.cli.provision import ACL_FILE, apply_acl, init_keys
from services.cli.supervisor import Supervisor, ensure_redis, partitioned
from services.system import SYSTEM
from shared.config import ADMIN, OPERATOR_USER, Settings, connect, greenex_home
from shared.eventlog.lease import holder_of, lease_lapsed
from shared.keys import Keys

__all__ = ["AlreadyRunning", "live_copies", "local_exchange", "private_settings", "service_env"]


def private_settings(home: Path, **overrides: object) -> Settings:
    """Settings for an exchange kept under `home`, laid out as every home is (shared/config.greenex_home):
    Redis on `home/redis/redis.sock`, keys in `home/keys`, archived log segments in `home/archive`."""
    home = home.resolve()
    values: dict[str, object] = {
        "redis_url": f"unix://{home / 'redis' / 'redis.sock'}", "keys_dir": str(home / "keys"),
        "archive_dir": str(home / "archive"),
    }  # fmt: skip
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]  # keyword values of Settings' own fields


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a service process reads its settings from (shared/config.load_settings)."""
    return {
        "REDIS_URL": settings.redis_url,
        "GREENEX_PREFIX": settings.prefix,
        "GREENEX_KEYS_DIR": str(Path(settings.keys_dir).resolve()),
        "GREENEX_ARCHIVE_DIR": str(Path(settings.archive_dir).resolve()),
        "GREENEX_VENUE": settings.venue,
        "GREENEX_COMMAND_WINDOW_MS": str(settings.command_window_ms),
        "GREENEX_CHECKPOINT_EVERY": str(settings.checkpoint_every),
        "GREENEX_SNAPSHOT_EVERY": str(settings.snapshot_every),
        "GREENEX_PARTITIONS": str(settings.partitions),
        **extra,
    }


@contextlib.asynccontextmanager
async def local_exchange(
    settings: Settings,
    data_dir: Path,
    *,
    log_dir: Path | None = None,
    fresh: bool = False,
    start: bool = True,
    env: dict[str, str] | None = None,
    provision: bool = False,
    notify: Callable[[str], None] | None = None,
) -> AsyncIterator[Supervisor]:
    """The key ring (made if missing), the Redis at `settings.redis_url` (a private one with the ring's
    ACL file if none answers, restarted if it exits; with `provision`, a running one that still lets
    its default user in gets the ring's users), and the supervised services (unless `start` is False:
    then `supervisor.start()` is the caller's). `notify` gets a line per event (a service exited, Redis
    restarted). Everything started here is stopped on the way out."""
    ring = init_keys(settings, SYSTEM)
    acl = ring.path / ACL_FILE
    start_redis = functools.partial(
        ensure_redis, settings.redis_url, data_dir, aclfile=acl, login=(ADMIN, ring.redis_password(ADMIN)),
        appendfsync=settings.appendfsync,
    )  # fmt: skip
    redis_proc = await start_redis(fresh=fresh)
    try:
        if redis_proc is None and provision:
            await _provision(settings)
        elif redis_proc is not None and settings.partitions > 1:
            # The ring's ACL file was written for the partitions of its first start: every partition's
            # service users now (participants onboarded before keep theirs: docs/operations.md).
            await _provision(settings)
    except BaseException:
        if redis_proc is not None:  # ours: not left running behind a failed start
            redis_proc.terminate()
            await redis_proc.wait()
        raise
    # A Redis that was running already may have the exchange's services on it (one we just started
    # cannot): two copies of a process must never run side by side.
    if start and redis_proc is None and (running := await live_copies(settings)):
        where = f"the exchange {settings.prefix!r} on {settings.redis_url}"
        raise AlreadyRunning(
            f"{where} is running already: {', '.join(running)}; stop it first (or use another GREENEX_PREFIX)"
        )
    supervisor = Supervisor(
        env=service_env(settings, **(env or {})), services=partitioned(settings.partitions),
        log_dir=log_dir or greenex_home() / "log", notify=notify,
    )  # fmt: skip
    supervisor.redis_pid = None if redis_proc is None else redis_proc.pid
    watchers: list[asyncio.Task[None]] = []
    stopping = False

    async def keep_redis() -> None:
        """The Redis we started comes back from its AOF if it exits (the services reconnect or restart)."""
        nonlocal redis_proc
        while redis_proc is not None:
            code = await redis_proc.wait()
            if stopping:
                return
            if notify is not None:
                notify(f"Redis (pid {redis_proc.pid}) exited with code {code}; restarting it")
            redis_proc = await start_redis()
            supervisor.redis_pid = None if redis_proc is None else redis_proc.pid

    try:
        if start:
            await supervisor.start()
        watchers += [asyncio.create_task(supervisor.watch()), asyncio.create_task(keep_redis())]
        yield supervisor
    finally:
        stopping = True
        await supervisor.stop()
        for watcher in watchers:
            watcher.cancel()
        if redis_proc is not None and redis_proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it exited just now
                redis_proc.terminate()
            await redis_proc.wait()


class AlreadyRunning(Exception):  # noqa: N818  -- named as the fact
    """Live copies of the map's processes hold their leases on this exchange."""


async def live_copies(settings: Settings, redis: Redis | None = None) -> list[str]:
    """`<process> (pid P on H)` for each process of the map whose lease a live process holds (read as
    the operator, or through `redis`)."""
    client = redis or connect(settings, OPERATOR_USER)
    try:
        held = await _live_leases(client, settings.partition_keys)
    finally:
        if redis is None:
            await client.aclose()
    running = []
    for keys, name, holder in held:
        host, pid = holder_of(holder)
        where = "" if keys.prefix == settings.prefix else f" in {keys.prefix}"
        running.append(f"{name}{where} (pid {pid} on {host})")
    return running


async def running_here(settings: Settings, redis: Redis) -> set[str]:
    """The processes of this partition (settings.partition) whose lease a live process holds."""
    return {name for _, name, _ in await _live_leases(redis, [settings.keys])}


async def _live_leases(redis: Redis, partitions: Iterable[Keys]) -> list[tuple[Keys, str, str]]:
    """(partition's keys, process, holder) of each process of the map whose lease a live process holds
    in these partitions; GETs in one pipeline (the operator's user runs no MGET)."""
    leases = [(keys, process.name) for keys in partitions for process in SYSTEM.processes]
    pipe = redis.pipeline(transaction=False)
    for keys, name in leases:
        pipe.get(keys.lease(name))
    held = cast(list[bytes | None], await pipe.execute())
    return [
        (keys, name, value.decode()) for (keys, name), value in zip(leases, held, strict=True)
        if value is not None and not lease_lapsed(value.decode())
    ]  # fmt: skip


async def _provision(settings: Settings) -> None:
    """The ring's users on a running Redis: through a default user that still gets in (a test's own
    server), which then stays on, since whoever runs that server uses it; else through the ring's admin
    (a Redis started with the ring's ACL file, default user locked), keeping the default user locked.
    The default user is asked first: a server it gets in to may also hold the ring's admin, made by an
    earlier provisioning through it, and locking it then would lock out that server's owner."""
    default = connect(settings, None)
    try:
        await default.ping()
    except RedisError:  # NOAUTH (redis-py reports it as an AuthenticationError or a ConnectionError)
        pass  # the default user is locked (or off): the ring's admin provisions
    else:
        await apply_acl(default, settings, SYSTEM, lock_default=False)
        return
    finally:
        await default.aclose()
    admin = connect(settings, ADMIN)
    try:
        await apply_acl(admin, settings, SYSTEM, lock_default=True)
    finally:
        await admin.aclose()


def default_home() -> Path:
    return greenex_home()
