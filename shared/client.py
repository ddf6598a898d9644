"""A participant's client: sign and send commands on its own stream, read its reports.

The Redis client it is given must be logged in as the participant's own Redis user: that is what lets
it write its command stream and read its report stream, and nothing else.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import msgspec
from redis.asyncio import Redis

from shared.crypto import seal_to_exchange
from shared.keys import Keys
from shared.protocol import rotate_key_context, signed

__all__ = ["ExchangeClient"]

_json = msgspec.json.Decoder()


class ExchangeClient:
    """One participant's connection: commands to its command stream, reports from its report stream."""

    def __init__(
        self,
        redis: Redis,
        participant: str,
        secret: str,
        keys: Keys | None = None,
        *,
        venue: str = "greenex-dev",
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.redis, self.participant, self.secret, self.venue, self.clock = (
            redis,
            participant,
            secret,
            venue,
            clock,
        )
        self.keys = keys = Keys() if keys is None else keys
        self.in_key = keys.commands(participant)
        self.out_key = keys.reports(participant)
        self.last_report_id = b"0"

    def command(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A signed command for this venue, stamped with the time it is signed."""
        stamp = {"venue": self.venue, "sent_ms": self.clock() // 1_000_000}
        return signed({"type": kind, "participant": self.participant, **stamp, **fields}, self.secret)

    async def send(self, kind: str, **fields: Any) -> bytes:
        payload = msgspec.json.encode(self.command(kind, **fields))
        return cast(bytes, await self.redis.xadd(self.in_key, {"data": payload}))

    async def send_many(self, commands: Iterable[dict[str, Any]]) -> list[bytes]:
        """Pipeline already-signed commands in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for command in commands:
            pipe.xadd(self.in_key, {"data": msgspec.json.encode(command)})
        ids: list[bytes] = await pipe.execute()
        return ids

    async def operator(self, action: str, client_order_id: str, **args: Any) -> bytes:
        return await self.send("operator", client_order_id=client_order_id, action=action, args=args)

    async def rotate_key(self, client_order_id: str, exchange_box_key: bytes, overlap_s: int = 300) -> str:
        """Ask for a new signing key, signed with the current one; returns the new key, which this
        client should use once the `key_rotated` report arrives (the current one stays valid
        `overlap_s` seconds after that). The new key travels sealed to the exchange's box key."""
        new_secret = secrets.token_hex(32)
        context = rotate_key_context(self.venue, self.participant, client_order_id)
        boxed = seal_to_exchange(exchange_box_key, new_secret.encode(), context)
        await self.send(
            "rotate_key",
            client_order_id=client_order_id,
            new_key=msgspec.to_builtins(boxed),
            overlap_s=overlap_s,
        )
        return new_secret

    async def from_now(self) -> ExchangeClient:
        """Read only the reports that come after this moment (the stream's newest entry is skipped)."""
        newest = cast(list[tuple[bytes, Any]], await self.redis.xrevrange(self.out_key, count=1))
        self.last_report_id = newest[0][0] if newest else b"0"
        return self

    async def reports(self, count: int = 1000, block_ms: int | None = None) -> list[dict[str, Any]]:
        """New reports since the last call (blocking up to block_ms when there are none)."""
        return [_json.decode(data) for data in await self.report_data(count, block_ms)]

    async def report_data(self, count: int = 1000, block_ms: int | None = None) -> list[bytes]:
        """The JSON of every new report since the last call, in order (shared/trading.py types it)."""
        reply: Any = await self.redis.xread({self.out_key: self.last_report_id}, count=count, block=block_ms)
        if not reply:
            return []
        rows: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1]
        self.last_report_id = rows[-1][0]
        return [fields[b"data"] for _, fields in rows]
