"""A small client for the exchange's streams: sign and send commands, read reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import msgspec
from redis.asyncio import Redis

from shared.keys import Keys
from shared.protocol import signed

__all__ = ["ExchangeClient"]

_json = msgspec.json.Decoder()


class ExchangeClient:
    """One participant's connection: commands to the command stream, reports from its own report stream."""

    def __init__(self, redis: Redis, participant: str, secret: str, keys: Keys | None = None) -> None:
        self.redis, self.participant, self.secret = redis, participant, secret
        self.keys = keys = Keys() if keys is None else keys
        self.in_key = keys.commands
        self.out_key = keys.reports(participant)
        self.last_report_id = b"0"

    def command(self, kind: str, **fields: Any) -> dict[str, Any]:
        return signed({"type": kind, "participant": self.participant, **fields}, self.secret)

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

    async def reports(self, count: int = 1000, block_ms: int | None = None) -> list[dict[str, Any]]:
        """New reports since the last call (blocking up to block_ms when there are none)."""
        reply: Any = await self.redis.xread({self.out_key: self.last_report_id}, count=count, block=block_ms)
        if not reply:
            return []
        rows: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1]
        self.last_report_id = rows[-1][0]
        return [_json.decode(fields[b"data"]) for _, fields in rows]
