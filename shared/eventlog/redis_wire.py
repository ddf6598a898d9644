"""The few Redis commands the event log sends, over redis-py or over the lean client (shared/resp.py)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from shared.resp import Command, RespClient

__all__ = ["RedisPyWire", "RespWire", "Row", "Wire", "fields_of", "rows_of", "script_command", "script_sha"]

# A stream entry: its id and its fields.
Row = tuple[bytes, Mapping[bytes, bytes]]
ScriptArgs = Sequence[str | bytes | int]


class Wire(Protocol):
    async def run_script(self, script: str, keys: Sequence[str], args: ScriptArgs) -> list[Any]:
        """EVALSHA, loading the script on NOSCRIPT (after a Redis restart or SCRIPT FLUSH)."""
        ...

    async def xrange(self, key: str, start: str, count: int, first: Sequence[Command] = ()) -> list[Row]:
        """`first`: commands to send ahead of it (in the same write where the client allows)."""
        ...

    async def last(self, key: str) -> list[Row]:
        """The newest entry (XREVRANGE COUNT 1), or none."""
        ...

    async def xread(
        self, key: str, after: str, count: int, block_ms: int, first: Sequence[Command] = ()
    ) -> list[Row]: ...

    async def ring_then_range(
        self, bell: str, bell_after: str, block_ms: int, key: str, start: str, count: int,
        first: Sequence[Command] = (),
    ) -> tuple[str | None, list[Row]]:  # fmt: skip
        """Block until `bell` has an entry after `bell_after` (or the time is up), then XRANGE `key`, in
        one round trip; returns the newest bell id seen (None on time-out) and the range."""
        ...

    async def append_then_ring(
        self,
        script: str,
        keys: Sequence[str],
        args: ScriptArgs,
        wait: tuple[str, str, int],
        read: tuple[str, str, int],
    ) -> tuple[list[Any], str | None, list[Row]]:
        """EVALSHA (no NOSCRIPT fallback: the error raises), then ring_then_range(*wait, *read), in one
        round trip where the client allows; returns the script's reply, the bell id and the range."""
        ...

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Plain commands, one round trip."""
        ...


class RedisPyWire:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def run_script(self, script: str, keys: Sequence[str], args: ScriptArgs) -> list[Any]:
        sha = script_sha(script)
        try:
            reply = await self.redis.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            reply = await self.redis.eval(script, len(keys), *keys, *args)
        return cast(list[Any], reply)

    async def xrange(self, key: str, start: str, count: int, first: Sequence[Command] = ()) -> list[Row]:
        if first:
            await self.execute(first)
        return cast(list[Row], await self.redis.xrange(key, start, "+", count=count))

    async def last(self, key: str) -> list[Row]:
        return cast(list[Row], await self.redis.xrevrange(key, "+", "-", count=1))

    async def xread(
        self, key: str, after: str, count: int, block_ms: int, first: Sequence[Command] = ()
    ) -> list[Row]:
        if first:
            await self.execute(first)
        reply = await self.redis.xread({key: after}, count=count, block=block_ms)
        return cast(list[tuple[bytes, list[Row]]], reply)[0][1] if reply else []

    async def ring_then_range(
        self, bell: str, bell_after: str, block_ms: int, key: str, start: str, count: int,
        first: Sequence[Command] = (),
    ) -> tuple[str | None, list[Row]]:  # fmt: skip
        if first:
            await self.execute(first)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xread({bell: bell_after}, count=1, block=block_ms)
            pipe.xrange(key, start, "+", count=count)
            rung, rows = await pipe.execute()
        return _bell_id(rung), cast(list[Row], rows)

    async def append_then_ring(
        self,
        script: str,
        keys: Sequence[str],
        args: ScriptArgs,
        wait: tuple[str, str, int],
        read: tuple[str, str, int],
    ) -> tuple[list[Any], str | None, list[Row]]:
        sha = script_sha(script)
        reply = cast(list[Any], await self.redis.evalsha(sha, len(keys), *keys, *args))
        return (reply, *await self.ring_then_range(*wait, *read))

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            replies = await pipe.execute()
        for reply in replies:  # as the lean client does: an error inside EXEC's reply raises too
            for item in reply if isinstance(reply, list) else ():
                if isinstance(item, ResponseError):
                    raise item
        return replies


class RespWire:
    def __init__(self, client: RespClient) -> None:
        self.client = client

    async def run_script(self, script: str, keys: Sequence[str], args: ScriptArgs) -> list[Any]:
        try:
            reply = await self.client.call(*script_command(script, keys, args))
        except NoScriptError:
            reply = await self.client.call("EVAL", script, len(keys), *keys, *args)
        return cast(list[Any], reply)

    async def xrange(self, key: str, start: str, count: int, first: Sequence[Command] = ()) -> list[Row]:
        replies = await self.client.execute([*first, ("XRANGE", key, start, "+", "COUNT", count)])
        return rows_of(replies[-1])

    async def last(self, key: str) -> list[Row]:
        return rows_of(await self.client.call("XREVRANGE", key, "+", "-", "COUNT", 1))

    async def xread(
        self, key: str, after: str, count: int, block_ms: int, first: Sequence[Command] = ()
    ) -> list[Row]:
        read = ("XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", key, after)
        reply = (await self.client.execute([*first, read]))[-1]
        return rows_of(reply[0][1]) if reply else []

    async def ring_then_range(
        self, bell: str, bell_after: str, block_ms: int, key: str, start: str, count: int,
        first: Sequence[Command] = (),
    ) -> tuple[str | None, list[Row]]:  # fmt: skip
        *_, rung, rows = await self.client.execute(
            [*first, *_ring_then_range(bell, bell_after, block_ms, key, start, count)]
        )
        return _bell_id(rung), rows_of(rows)

    async def append_then_ring(
        self,
        script: str,
        keys: Sequence[str],
        args: ScriptArgs,
        wait: tuple[str, str, int],
        read: tuple[str, str, int],
    ) -> tuple[list[Any], str | None, list[Row]]:
        reply, rung, rows = await self.client.execute(
            [script_command(script, keys, args), *_ring_then_range(*wait, *read)]
        )
        return reply, _bell_id(rung), rows_of(rows)

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        return await self.client.execute(commands)


def rows_of(raw: list[list[Any]]) -> list[Row]:
    """hiredis gives a stream entry as [id, [field, value, ...]]."""
    return [(stream_id, fields_of(flat)) for stream_id, flat in raw]


def fields_of(flat: list[bytes] | None) -> dict[bytes, bytes]:
    """A stream entry's [field, value, ...] as a dict; none for an entry trimmed after it was delivered
    (XREADGROUP of pending entries gives those as [id, nil]: a writer may trim its own stream)."""
    if flat is None:
        return {}
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _ring_then_range(
    bell: str, bell_after: str, block_ms: int, key: str, start: str, count: int
) -> list[Command]:
    return [
        ("XREAD", "COUNT", 1, "BLOCK", block_ms, "STREAMS", bell, bell_after),
        ("XRANGE", key, start, "+", "COUNT", count),
    ]


def _bell_id(rung: Any) -> str | None:
    """The newest id of an XREAD reply on one bell stream, or None when the wait timed out."""
    return cast(bytes, rung[0][1][-1][0]).decode() if rung else None


def script_command(script: str, keys: Sequence[str], args: ScriptArgs) -> Command:
    """EVALSHA of `script` as a command, for a write that carries other commands too."""
    return ("EVALSHA", script_sha(script), len(keys), *keys, *args)


@functools.cache
def script_sha(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
