"""The web app's only view of the exchange: the public read model (`pub:*`), and its change stream fanned
out to every live page."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from services.web.search import SEARCH_LIMIT, CertificateIndex
from shared.keys import Keys

__all__ = ["KEEPALIVE", "RELOAD", "Broadcast", "PublicReader", "SearchBusyError"]

log = structlog.get_logger("greenex.web")
_json = msgspec.json.Decoder()
_PAGE = 1000  # certificates per read while indexing
SEARCH_CPU_S = 0.25  # of each second, at most this long spent searching
_ANSWERS = 1000  # answers remembered (until the index grows)


class SearchBusyError(Exception):
    """The search's share of this second is spent."""


class PublicReader:
    """Reads the projection's documents (shared/keys.py `pub:*`); None where there is none yet."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis, self.keys = redis, keys
        self._index = CertificateIndex()
        self._refreshing = asyncio.Lock()
        self._answers: dict[tuple[str, int, int], list[str]] = {}  # (query, limit, index size) -> ids
        self._window = [0.0, 0.0]  # (start of the current second, search time spent in it)

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
        """Certificates matching `query` (services/web/search.py), newest first. SearchBusyError when the
        searches of the last second took SEARCH_CPU_S of this process's time already: a crafted query
        can cost far more than an ordinary one, and every page shares this event loop."""
        await self.refresh()
        key = (query.strip().lower(), limit, len(self._index))
        ids = self._answers.get(key)
        if ids is None:
            now = time.monotonic()
            if now - self._window[0] >= 1.0:
                self._window = [now, 0.0]
            if self._window[1] >= SEARCH_CPU_S:
                raise SearchBusyError("the registry search is busy: try again in a second")
            ids = self._index.search(query, limit)
            self._window[1] += time.monotonic() - now
            if len(self._answers) >= _ANSWERS:
                self._answers.clear()
            self._answers[key] = ids
        rows: list[Any] = await self.redis.hmget(self.keys.pub_certificates, ids) if ids else []
        return [_json.decode(raw) for raw in rows if raw is not None]

    async def refresh(self) -> None:
        async with self._refreshing:
            await self._refresh()

    async def _refresh(self) -> None:
        """Add to the index the certificates published since the last look: `pub:certificate-order`
        scores each id by its seq, and the projection adds them in seq order after their documents, so
        one range by score from the newest seq indexed finds exactly the new ones. An id whose document
        is not there yet (a read model being rebuilt) stops the round before it, so that it is not
        skipped for good. A read model that shrank was rebuilt: index it again."""
        order = self.keys.pub_certificate_order
        if await self.redis.zcard(order) < len(self._index):
            self._index, self._answers = CertificateIndex(), {}
        since = self._index.newest_seq
        while True:
            fresh: list[Any] = await self.redis.zrangebyscore(order, since, "+inf", start=0, num=_PAGE)
            fresh = [i for i in fresh if i.decode() not in self._index]
            if not fresh:
                return
            docs: list[Any] = await self.redis.hmget(self.keys.pub_certificates, fresh)
            for raw in docs:
                if raw is None:
                    return  # the next search looks again from here
                self._index.add(_json.decode(raw))
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
    MAX_PAGES = 1000  # live pages per web process; more are refused (503) rather than slowing all

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis, self.keys = redis, keys
        self.pages: dict[asyncio.Queue[bytes], str] = {}  # page -> its instrument ("" for all)
        self._sent: dict[asyncio.Queue[bytes], float] = {}  # page -> when it was last sent anything
        self._pending: list[tuple[str, bytes]] = []  # (instrument or "" for everyone's, frame)
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(self, instrument: str = "") -> asyncio.Queue[bytes] | None:
        """A queue of chunks for a new page; None when MAX_PAGES are open already."""
        if len(self.pages) >= self.MAX_PAGES:
            return None
        queue: asyncio.Queue[bytes] = asyncio.Queue(self.QUEUE)
        self.pages[queue] = instrument
        self._sent[queue] = time.monotonic()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self.pages.pop(queue, None)
        self._sent.pop(queue, None)

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

    def keepalive(self, now: float | None = None) -> int:
        """A comment line to every page sent nothing for KEEPALIVE_S (a quiet instrument's page, while
        other pages are busy, too); return how many got one."""
        now = time.monotonic() if now is None else now
        quiet = [queue for queue in self.pages if now - self._sent.get(queue, now) >= self.KEEPALIVE_S]
        return sum(self._offer(queue, KEEPALIVE) for queue in quiet)

    def _offer(self, queue: asyncio.Queue[bytes], chunk: bytes) -> bool:
        try:
            queue.put_nowait(chunk)
        except asyncio.QueueFull:
            self._drop(queue)
            return False
        self._sent[queue] = time.monotonic()
        return True

    def _drop(self, queue: asyncio.Queue[bytes]) -> None:
        """No more events for this page: its stream ends with a reload (its own JSON then is current)."""
        self.unsubscribe(queue)
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()  # room for the last word
        queue.put_nowait(RELOAD)

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(self.FLUSH_S)
            self.flush()
            self.keepalive()

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
