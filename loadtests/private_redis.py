"""The benchmarks' own Redis: a fresh private server under a scratch home, gone after the run, and the
line that names the run (interpreter, machine, parameters) on top of every result."""

from __future__ import annotations

import contextlib
import platform
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from redis.asyncio import Redis

from services.cli.supervisor import ensure_redis

__all__ = ["private_redis", "run_line"]


@contextlib.asynccontextmanager
async def private_redis(home: Path) -> AsyncIterator[tuple[Redis, str]]:
    """A private Redis listening on `home`/redis.sock with its data in `home`/redis, started empty (a
    benchmark's data is nobody's), and its URL; stopped and removed afterwards, however the run ends."""
    shutil.rmtree(home, ignore_errors=True)
    url = f"unix://{home / 'redis.sock'}"
    server = await ensure_redis(url, home / "redis", fresh=True)
    redis = Redis.from_url(url)
    try:
        yield redis, url
    finally:
        await redis.aclose()
        if server is not None:
            server.terminate()
            await server.wait()
        shutil.rmtree(home, ignore_errors=True)


def run_line(**parameters: object) -> str:
    """`python 3.11.7 on x86_64; orders=282000 seed=7`: what a result was measured with."""
    return f"python {platform.python_version()} on {platform.machine()}; " + " ".join(
        f"{name}={value}" for name, value in parameters.items()
    )
