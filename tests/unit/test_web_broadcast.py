"""The web app's fan-out (services/web/reader.Broadcast): batched per page, filtered by instrument, a page
that stops reading is told to reload, not waited for."""

from __future__ import annotations

import asyncio
import time

import msgspec

from services.web.reader import KEEPALIVE, RELOAD, Broadcast
from shared.keys import Keys

_encode = msgspec.json.Encoder().encode


def _broadcast() -> Broadcast:
    return Broadcast(None, Keys("t"))  # type: ignore[arg-type]  # take/flush read no Redis


def _page(b: Broadcast, instrument: str = "") -> asyncio.Queue[bytes]:
    queue = b.subscribe(instrument)
    assert queue is not None
    return queue


def _market(symbol: str, seq: int) -> bytes:
    return _encode({"type": "market", "seq": seq, "symbol": symbol})


def _frames(chunk: bytes) -> list[bytes]:
    return [f.removeprefix(b"data: ") for f in chunk.split(b"\n\n") if f]


async def test_each_page_gets_one_chunk_per_flush_with_what_it_wants_in_order() -> None:
    b = _broadcast()
    one, every = _page(b, "X"), _page(b, "")
    registry = _encode({"type": "registry", "seq": 3, "certificates": ["RC-3"]})
    for data in (_market("X", 1), _market("Y", 2), registry, _market("X", 4)):
        b.take(data)
    assert b.flush() == 2
    assert _frames(one.get_nowait()) == [_market("X", 1), registry, _market("X", 4)]
    assert _frames(every.get_nowait()) == [_market("X", 1), _market("Y", 2), registry, _market("X", 4)]
    assert one.empty()
    assert every.empty()
    assert b.flush() == 0  # nothing new: nothing sent


async def test_a_page_with_nothing_of_its_own_gets_a_keepalive_while_others_are_busy() -> None:
    b = _broadcast()
    quiet, busy = _page(b, "Z"), _page(b, "X")
    b.take(_market("X", 1))
    assert b.flush() == 1
    assert quiet.empty()
    assert b.keepalive() == 0  # nobody quiet for KEEPALIVE_S yet
    later = time.monotonic() + Broadcast.KEEPALIVE_S
    b.take(_market("X", 2))
    b.flush()
    b._sent[busy] = later  # busy was just sent its chunk, as seen KEEPALIVE_S from now
    assert b.keepalive(later) == 1  # the quiet page, though another page kept the broadcast busy
    assert quiet.get_nowait() == KEEPALIVE
    assert busy.qsize() == 2


async def test_pages_beyond_the_limit_are_refused() -> None:
    b = _broadcast()
    pages = [b.subscribe("") for _ in range(Broadcast.MAX_PAGES)]
    assert None not in pages
    assert b.subscribe("") is None
    b.unsubscribe(pages[0])  # type: ignore[arg-type]
    assert b.subscribe("X") is not None


async def test_a_page_that_stops_reading_is_dropped_with_a_reload() -> None:
    b = _broadcast()
    stuck, reading = _page(b, "X"), _page(b, "X")
    for seq in range(Broadcast.QUEUE + 1):
        b.take(_market("X", seq))
        b.flush()
        reading.get_nowait()
    assert stuck not in b.pages
    assert reading in b.pages
    chunks = [stuck.get_nowait() for _ in range(stuck.qsize())]
    assert chunks[-1] == RELOAD
    assert len(chunks) == Broadcast.QUEUE


async def test_an_unreadable_event_is_skipped() -> None:
    b = _broadcast()
    page = _page(b, "")
    b.take(b"{not json")
    b.take(_market("X", 1))
    b.flush()
    assert _frames(page.get_nowait()) == [_market("X", 1)]


async def test_stop_ends_every_page_with_a_reload() -> None:
    b = _broadcast()
    page = _page(b, "")
    await b.stop()
    assert page.get_nowait() == RELOAD
    assert not b.pages
