"""Waiting, bounded, for what a process needs before it starts: its key files and a Redis that answers.

A Procfile runner (honcho, foreman, overmind) starts every line at once and stops them all as soon as
one exits, so a service that refused to start because Redis was still making the key ring would take
the whole exchange down with it. `python -m services <process> --wait N` waits instead, saying once
what it waits for; without `--wait` (the supervisor, which starts Redis and the ring first) a missing
key or an absent Redis still stops the process at once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.config import Settings
from shared.keyring import files_of

__all__ = ["NotReady", "wait_until_ready"]

log = structlog.get_logger("greenex.runtime")
_POLL_S = 0.2


class NotReady(Exception):  # noqa: N818  -- named as the fact
    """What the process needs did not appear within its wait, or Redis refused its login."""


async def wait_until_ready(settings: Settings, process: str, timeout_s: float) -> None:
    """Return once every key file of `process` exists and Redis answers a PING logged in as `process`;
    NotReady after `timeout_s` in all."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    user = settings.user(process)
    await _wait_for_keys(Path(settings.keys_dir), files_of(process, user), deadline, timeout_s)
    await _wait_for_redis(settings, user, deadline, timeout_s)


async def _wait_for_keys(folder: Path, names: tuple[str, ...], deadline: float, timeout_s: float) -> None:
    # Presence is enough: the ring publishes each file whole (shared/keyring.py), and whether a value
    # is usable (mode, owner, not a well-known one) is checked when it is read, as without a wait.
    told = False
    while missing := [name for name in names if not os.path.lexists(folder / name)]:
        if asyncio.get_running_loop().time() >= deadline:
            where = f"{', '.join(missing)} in {folder}"
            raise NotReady(f"no {where} after {timeout_s:g} s (run `greenex keys init`)")
        if not told:
            log.info("waiting_for_keys", keys_dir=str(folder), missing=missing, timeout_s=timeout_s)
            told = True
        await asyncio.sleep(_POLL_S)


async def _wait_for_redis(settings: Settings, user: str, deadline: float, timeout_s: float) -> None:
    told = False
    while (why := await _not_answering(settings, user)) is not None:
        if asyncio.get_running_loop().time() >= deadline:
            raise NotReady(f"Redis at {settings.redis_url} did not answer within {timeout_s:g} s: {why}")
        if not told:
            log.info("waiting_for_redis", url=settings.redis_url, timeout_s=timeout_s, error=why)
            told = True
        await asyncio.sleep(_POLL_S)


async def _not_answering(settings: Settings, user: str) -> str | None:
    """Why a PING logged in as `user` failed, or None if it answered. Logged in, so that a server still
    loading its AOF (it answers LOADING, even to a locked default user's NOAUTH) is not taken as ready."""
    password = settings.keyring.redis_password(user)
    client = Redis.from_url(settings.redis_url, username=user, password=password, socket_connect_timeout=1)
    try:
        await client.ping()
        return None
    except AuthenticationError as refused:  # the ring and Redis's users differ: waiting will not help
        raise NotReady(f"Redis at {settings.redis_url} refuses the login of {user!r}: {refused}") from None
    except (RedisConnectionError, BusyLoadingError, OSError) as exc:
        return str(exc)
    finally:
        await client.aclose()
