"""The web app's only view of the exchange: the public read model (`pub:*`), and its change stream fanned
out to every live page."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from services.web.search import SEARCH_LIMIT, CertificateIndex
from shared.keys import Keys

__all__ = ["Broadcast", "PublicReader"]

log = structlog.get_logger("greenex.web")
_json = msgspec.json.Decoder()
_PAGE = 1000  # certificates per read while indexing


class PublicReader:
    """Reads the projection's documents (shared/keys.py `pub:*`); None where there is none yet."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis, self.keys = redis, keys
        self._index = CertificateIndex()
        self._refreshing = asyncio.Lock()

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
                 "surrendered": [], "retirements": [], "certificates_total": 0, "labels": [],
                 "claims": []}  # fmt: skip
        return await self._doc(self.keys.pub_registry) or empty

    async def checkpoints(self) -> dict[str, Any]:
        doc = await self._doc(self.keys.pub_checkpoints)
        return doc or {"seq": 0, "public_key": "", "venue": "", "checkpoints": []}

    async def certificate(self, cert_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.pub_certificates, cert_id)
        return None if raw is None else _json.decode(raw)

    async def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
        """Certificates matching `query` (services/web/search.py), newest first."""
        async with self._refreshing:
            await self._refresh()
        ids = self._index.search(query, limit)
        rows: list[Any] = await self.redis.hmget(self.keys.pub_certificates, ids) if ids else []
        return [_json.decode(raw) for raw in rows if raw is not None]

    async def _refresh(self) -> None:
        """Add to the index the certificates published since the last look: `pub:certificate-order`
        scores each id by its seq, and the projection adds them in seq order after their documents, so
        one range by score from the newest seq indexed finds exactly the new ones. A read model that
        shrank was rebuilt: index it again."""
        order = self.keys.pub_certificate_order
        if await self.redis.zcard(order) < len(self._index):
            self._index = CertificateIndex()
        since = self._index.newest_seq
        while True:
            fresh: list[Any] = await self.redis.zrangebyscore(order, since, "+inf", start=0, num=_PAGE)
            fresh = [i for i in fresh if i.decode() not in self._index]
            if not fresh:
                return
            docs: list[Any] = await self.redis.hmget(self.keys.pub_certificates, fresh)
            before = len(self._index)
            for raw in docs:
                if raw is not None:
                    self._index.add(_json.decode(raw))
            if len(self._index) == before:
                return  # named but not written (a read model being rebuilt): the next search looks again
            since = self._index.newest_seq


class _Event(msgspec.Struct):
    type: str = ""
    symbol: str = ""


_event = msgspec.json.Decoder(_Event)
KEEPALIVE = b": keepalive\n\n"
RELOAD = b"event: reload\ndata: {}\n\n"


class Broadcast:
    """One reader of `pub:events` for the whole process, fanned out to every live page in batches: every
    FLUSH_S each page gets one chunk with the events of that interval it wants (its instrument's market
    updates, or every instrument's, and every registry and checkpoint change), as Server-Sent Events
    frames. 200 pages under 20 events/s cost 200 writes per FLUSH_S, not 4,000 a second; a page sees a
    change at most FLUSH_S after the projection published it (which it does every 100 ms).

    A page whose queue holds QUEUE unsent chunks (a client that stopped reading) is dropped and told to
    reload. Every KEEPALIVE_S each page gets a comment line, so idle connections stay open through proxies
    and a vanished client is noticed."""

    FLUSH_S = 0.25
    QUEUE = 64
    KEEPALIVE_S = 15.0

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis, self.keys = redis, keys
        self.pages: dict[asyncio.Queue[bytes], str] = {}  # page -> its instrument ("" for all)
        self._pending: list[tuple[str, bytes]] = []  # (instrument or "" for everyone's, frame)
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(self, instrument: str = "") -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(self.QUEUE)
        self.pages[queue] = instrument
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self.pages.pop(queue, None)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._flush())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for queue in list(self.pages):
            self._drop(queue)

    def take(self, data: bytes) -> None:
        """One published change, for the next flush."""
        try:
            event = _event.decode(data)
        except msgspec.DecodeError:
            log.warning("public_event_unreadable", size=len(data))
            return
        self._pending.append((event.symbol if event.type == "market" else "", b"data: " + data + b"\n\n"))

    def flush(self) -> int:
        """Send each page what it wants of the pending events; return the number of chunks sent."""
        pending, self._pending = self._pending, []
        if not pending:
            return 0
        chunks: dict[str, bytes] = {}
        for wanted in set(self.pages.values()):
            # A page of one instrument: its market updates and every change that is not a market's.
            chunks[wanted] = b"".join(f for symbol, f in pending if symbol in (wanted, "") or not wanted)
        sent = 0
        for queue, wanted in list(self.pages.items()):
            if chunks[wanted]:
                sent += self._offer(queue, chunks[wanted])
        return sent

    def keepalive(self) -> None:
        for queue in list(self.pages):
            self._offer(queue, KEEPALIVE)

    def _offer(self, queue: asyncio.Queue[bytes], chunk: bytes) -> bool:
        try:
            queue.put_nowait(chunk)
        except asyncio.QueueFull:
            self._drop(queue)
            return False
        return True

    def _drop(self, queue: asyncio.Queue[bytes]) -> None:
        """No more events for this page: its stream ends with a reload (its own JSON then is current)."""
        self.pages.pop(queue, None)
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()  # room for the last word
        queue.put_nowait(RELOAD)

    async def _flush(self) -> None:
        quiet = 0.0
        while True:
            await asyncio.sleep(self.FLUSH_S)
            quiet = 0.0 if self.flush() else quiet + self.FLUSH_S
            if quiet >= self.KEEPALIVE_S:
                self.keepalive()
                quiet = 0.0

    async def _read(self) -> None:
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
                    self.take(fields[b"data"])
