"""What the CLI says when something expected goes wrong: one line with a hint, never a traceback.

Exit codes, the same for every command (README, "Exit codes"): 0 done, 1 an operational failure (Redis
away, a file missing, a damaged log, a check that found something), 2 a usage error (a bad option or
value: click's own code), 3 the exchange refused the request.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
import typer
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, MovedError, NoPermissionError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.config import Settings, cli_user, connect, private_redis_url
from shared.eventlog.port import LogCorrupt
from shared.keyring import KeyMissing

__all__ = ["EXIT_FAILED", "EXIT_REJECTED", "EXIT_USAGE", "explain", "read_exchange", "run_cli"]

T = TypeVar("T")

EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 1, 2, 3


def _where() -> str:
    return os.environ.get("REDIS_URL") or f"the exchange's Redis ({private_redis_url()})"


def read_exchange(settings: Settings, read: Callable[[Redis], Awaitable[T]]) -> T:
    """`read` through a connection as the CLI's user, closed after it; Redis away or refusing: one line
    naming the exchange, exit 1."""

    async def run() -> T:
        redis = connect(settings, cli_user())
        try:
            return await read(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except (RedisError, OSError) as failed:
        typer.echo(f"error: cannot read the exchange at {settings.redis_url}: {failed}", err=True)
        raise typer.Exit(1) from None


def explain(exc: BaseException) -> str | None:
    """The one line for an expected failure; None for a bug (which keeps its traceback)."""
    if isinstance(exc, AuthenticationError):  # a ConnectionError to redis-py: first
        return f"Redis refused the login ({exc}): is this the key ring of that Redis? (`greenex acl apply`)"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        hint = "start the exchange with `greenex up`, or set REDIS_URL"
        return f"no Redis answers at {_where()} ({exc}); {hint}"
    if isinstance(exc, MovedError):  # a ResponseError: first
        host, port = exc.node_addr
        return (f"this Redis is a cluster node that does not serve the exchange's keys; they are on "
                f"{host}:{port}: point REDIS_URL there")  # fmt: skip
    if isinstance(exc, NoPermissionError) or (isinstance(exc, ResponseError) and "NOPERM" in str(exc)):
        return f"Redis refused ({exc}): this user may not do that (GREENEX_CLI_USER picks another)"
    if isinstance(exc, KeyMissing):
        return f"{exc} (make the key ring with `greenex keys init`, or set GREENEX_KEYS_DIR)"
    if isinstance(exc, LogCorrupt):
        return f"BAD seq={exc.seq}: {exc.reason}"
    if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError | PermissionError):
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, msgspec.ValidationError):  # a GREENEX_* setting out of its range
        return f"a setting is wrong: {exc} (see the GREENEX_* environment variables)"
    return None


def run_cli(app: Callable[[], object]) -> None:
    """Run the typer app; an expected failure ends in one line on stderr and exit 1."""
    try:
        app()
    except Exception as exc:
        message = explain(exc)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        sys.exit(EXIT_FAILED)
