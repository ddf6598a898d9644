"""The web app's only view of the exchange: the public read model (`pub:*`), and its change stream fanned
out to every live page."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from shared.keys import Keys

__all__ = ["Broadcast", "PublicReader"]

log = structlog.get_logger("greenex.web")
_json = msgspec.json.Decoder()


class PublicReader:
    """Reads the projection's documents (shared/keys.py `pub:*`); None where there is none yet."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis, self.keys = redis, keys

    async def _doc(self, key: str) -> Any:
        raw = await self.redis.get(key)
        return None if raw is None else _json.decode(raw)

    async def market(self) -> dict[str, Any]:
        return await self._doc(self.keys.pub_market) or {"seq": 0, "instruments": []}

    async def instrument(self, symbol: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self._doc(self.keys.pub_instrument(symbol))
        return doc

    async def registry(self) -> dict[str, Any]:
        empty = {"seq": 0, "projects": [], "reports": [], "issuances": [], "buffer_total": 0, "reversals": [],
                 "surrendered": [], "retirements": [], "labels": [], "claims": []}  # fmt: skip
        return await self._doc(self.keys.pub_registry) or empty

    async def checkpoints(self) -> dict[str, Any]:
        doc = await self._doc(self.keys.pub_checkpoints)
        return doc or {"seq": 0, "public_key": "", "venue": "", "checkpoints": []}

    async def certificate(self, cert_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.pub_certificates, cert_id)
        return None if raw is None else _json.decode(raw)

    async def certificates(self) -> list[dict[str, Any]]:
        rows: dict[Any, Any] = await self.redis.hgetall(self.keys.pub_certificates)
        return [_json.decode(raw) for raw in rows.values()]


class Broadcast:
    """One reader of `pub:events` for the whole process, fanned out to a queue per live page: 200 pages
    cost one blocking read, not 200. A page that falls behind by QUEUE events is told to reload."""

    QUEUE = 256

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis, self.keys = redis, keys
        self.queues: set[asyncio.Queue[bytes | None]] = set()
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> asyncio.Queue[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self.QUEUE)
        self.queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        self.queues.discard(queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for queue in list(self.queues):
            self._offer(queue, None)

    def _offer(self, queue: asyncio.Queue[bytes | None], data: bytes | None) -> None:
        try:
            queue.put_nowait(data)
        except asyncio.QueueFull:
            self.queues.discard(queue)  # the page is told to reload (its stream ends)
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            queue.put_nowait(None)

    async def _run(self) -> None:
        last = "$"
        while True:
            try:
                got: Any = await self.redis.xread({self.keys.pub_events: last}, count=100, block=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: pages keep what they show; retry
                log.warning("public_events_read_failed", error=repr(exc))
                await asyncio.sleep(1.0)
                continue
            for _stream, rows in got or []:
                for row_id, fields in rows:
                    last = row_id
                    for queue in list(self.queues):
                        self._offer(queue, fields[b"data"])
