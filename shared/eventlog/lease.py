"""One live writer per producer process: a lease in Redis, taken at start, renewed while the process lives,
and checked by the append script on every append (a fencing token).

A second copy of a service (an orphan of a killed supervisor, a second `greenex up`) would decide and
append beside the first: order ids given twice, trades answered twice. With the lease it cannot start
while the first renews, and a first copy that stalls past its lease (a paused VM, a frozen event loop)
finds its next append refused once another copy took over, instead of writing beside it.

The lease's value is `<token> <host> <pid>`. A copy that finds a lease held by a process of its own host
that no longer exists (killed with -9, its lease not yet expired) takes it over at once; otherwise it
waits for the lease to lapse, and refuses to start if it is renewed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "LEASE_MS", "RENEW_EVERY_S", "LeaseHeld", "LeaseLost", "holder_of", "keep_lease", "lease_lapsed",
    "new_lease_value", "take_lease",
]  # fmt: skip

LEASE_MS = 5_000
RENEW_EVERY_S = 1.0

# KEYS: the lease. ARGV: our value, the value of a holder known dead ("" for none), the lease in ms.
_TAKE_LUA = """
local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[2] or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return {'OK'}
end
return {'HELD', held, redis.call('PTTL', KEYS[1])}
"""
# KEYS: the lease. ARGV: our value. Deletes it if it is still ours (a clean stop hands over at once).
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: the lease. ARGV: our value, the lease in ms. 1 if still ours (and renewed), 0 if not.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class LeaseHeld(Exception):  # noqa: N818  -- named as the fact
    """Another live copy of this process holds its lease."""


class LeaseLost(Exception):  # noqa: N818
    """This process's lease lapsed or was taken over: it must stop writing, now."""


def new_lease_value() -> str:
    return f"{secrets.token_hex(8)} {socket.gethostname()} {os.getpid()}"


def holder_of(value: str) -> tuple[str, str]:
    """(host, pid) of a lease's value."""
    _, host, pid = [*value.split(" "), "", ""][:3]
    return host, pid


def lease_lapsed(holder: str) -> bool:
    """Whether a lease's holder is a process of this host that no longer exists (killed, its lease not
    yet expired): nobody is running there."""
    return _gone(holder)


def _gone(holder: str) -> bool:
    """Whether the holder is a process of this host that no longer exists."""
    host, pid = holder_of(holder)
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


async def take_lease(
    redis: Redis,
    key: str,
    value: str,
    *,
    wait_s: float = LEASE_MS / 1000 + 1,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> None:
    """Hold the lease at `key` as `value`, waiting for a lapsed holder's lease to expire; LeaseHeld if a
    live holder keeps renewing it for `wait_s`."""
    loop = asyncio.get_running_loop()
    deadline, takeover = loop.time() + wait_s, ""
    while True:
        reply = cast(list[Any], await redis.eval(_TAKE_LUA, 1, key, value, takeover, LEASE_MS))
        if reply[0] == b"OK":
            return
        holder = reply[1].decode()
        if _gone(holder):
            takeover = holder
            continue
        if loop.time() >= deadline:
            host, pid = holder_of(holder)
            raise LeaseHeld(
                f"another copy is running (pid {pid} on {host}) and renews its lease {key}; stop it first"
            )
        await sleep(0.25)


async def keep_lease(redis: Redis, key: str, value: str, every_s: float = RENEW_EVERY_S) -> None:
    """Renew the lease until cancelled (then release it); LeaseLost as soon as it is not ours any more."""
    try:
        while True:
            await asyncio.sleep(every_s)
            try:
                renewed = await redis.eval(_RENEW_LUA, 1, key, value, LEASE_MS)
            except (RedisConnectionError, RedisTimeoutError):
                continue  # Redis away for a moment: if the lease lapses meanwhile, the next renewal says so
            if not renewed:
                raise LeaseLost(f"the lease {key} is no longer ours: another copy took over")
    except asyncio.CancelledError:
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
            await redis.eval(_RELEASE_LUA, 1, key, value)
        raise
