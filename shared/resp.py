"""A lean asyncio Redis client for the hot paths: hiredis packs and parses, one socket write per batch.

redis-py's asyncio client spends ~100 us of CPU per round trip on this machine (connection pool, retry
wrapper, timeouts, command packing in Python); the same round trip here costs ~45 us, most of it the
system calls (measured side by side, loadtests/RESULTS.md "Fewer round trips per order"). Everything
that is not on the order path keeps using redis-py.

A connection carries requests in order and answers them in order, so a batch of commands is one write
and its replies one read. Each call takes an idle connection from the client's free list (or opens
one), so a blocking read on one connection never delays a write on another.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

__all__ = ["Command", "RespClient"]

Command = Sequence[str | bytes | int]


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport: we asked for TCP/unix

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a cancelled caller: its reply is read and dropped, order is kept
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisConnectionError(f"connection to Redis lost: {exc!r}")
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)

    def send(self, packed: bytes, replies: int) -> list[asyncio.Future[Any]]:
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            raise self.lost or RedisConnectionError("connection to Redis is closed")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(replies)]
        self.waiters.extend(futures)
        self.transport.write(packed)
        return futures

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RespClient:
    """Connections to one Redis server; `execute` sends commands as one write and returns the replies.

    An error reply raises redis-py's ResponseError, or its NoScriptError for NOSCRIPT (errors nested
    one level down, as in EXEC's reply, too); a broken connection raises redis-py's ConnectionError and
    is dropped, so the callers' existing handling of redis-py errors applies unchanged.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        path: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.db, self.path = host, port, db, path
        self.username, self.password = username, password
        self._idle: list[_Connection] = []

    @classmethod
    def like(cls, redis: Redis) -> RespClient:
        """A client for the server (and database and credentials) a redis-py client talks to."""
        kw = redis.connection_pool.connection_kwargs
        return cls(
            host=kw.get("host", "127.0.0.1"),
            port=int(kw.get("port", 6379)),
            db=int(kw.get("db") or 0),
            path=kw.get("path"),
            username=kw.get("username"),
            password=kw.get("password"),
        )

    async def call(self, *args: str | bytes | int) -> Any:
        return (await self.execute([args]))[0]

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        conn = self._idle.pop() if self._idle else await self._connect()
        replies = await _replies(conn, commands)
        self._idle.append(conn)
        for reply in replies:
            _raise_error(reply)
        return replies

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            if self.path:
                _, conn = await loop.create_unix_connection(_Connection, self.path)
            else:
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc!r}") from exc
        setup: list[Command] = []
        if self.password:
            setup.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        try:
            for reply in await _replies(conn, setup) if setup else []:
                _raise_error(reply)
        except ResponseError:
            conn.close()  # e.g. a wrong password: the connection is of no use
            raise
        return conn

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


async def _replies(conn: _Connection, commands: Sequence[Command]) -> list[Any]:
    futures = conn.send(_pack(commands), len(commands))
    try:
        return [await f for f in futures]
    except BaseException:
        conn.close()  # cancelled or broken mid-batch: replies may still be owed, never reuse it
        for f in futures:  # nobody will await the rest: retrieve their errors, or cancel the pending ones
            if not f.done():
                f.cancel()  # else the lost connection fails it later: "exception never retrieved"
            elif not f.cancelled():
                f.exception()
        raise


def _pack(commands: Sequence[Command]) -> bytes:
    # hiredis's stub types the argument as a 1-tuple; any tuple of str/bytes/int packs.
    return b"".join(hiredis.pack_command(tuple(c)) for c in commands)  # type: ignore[arg-type]


def _raise_error(reply: Any) -> None:
    for item in reply if isinstance(reply, list) else [reply]:
        if isinstance(item, hiredis.ReplyError):
            # As redis-py maps it, so one `except NoScriptError` serves both clients.
            raise (NoScriptError if str(item).startswith("NOSCRIPT") else ResponseError)(str(item))
