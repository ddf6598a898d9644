"""Matching-engine snapshots: live orders in priority order, client-id registry, counters; canonical bytes.

It reads and writes the engine's private id registry on purpose: the registry is state, and keeping its
codec here leaves the hot matching module untouched.
"""

from __future__ import annotations

import msgspec

from services.matching.book import OrderBook, RestingOrder
from services.matching.engine import MatchingEngine, SelfTradePrevention
from services.matching.live_ids import LiveIds
from shared.domain.instruments import Instrument
from shared.domain.values import Side, TimeInForce

__all__ = ["MatchingSnapshotError", "decode_engine", "encode_engine"]

_VERSION = 1


class MatchingSnapshotError(ValueError):
    """The bytes are not a matching snapshot this code can restore."""


class _Order(msgspec.Struct, frozen=True, array_like=True):
    order_id: int
    participant: str
    client_order_id: str
    side: Side
    price: int
    leaves: int
    cum: int
    tif: TimeInForce


class _Book(msgspec.Struct, frozen=True, array_like=True):
    symbol: str
    halted: bool
    # Best level first and, within a level, oldest first: re-resting them in this order rebuilds
    # the exact time priority.
    bids: list[_Order]
    asks: list[_Order]


class _Snapshot(msgspec.Struct, frozen=True, array_like=True):
    version: int
    stp: SelfTradePrevention
    instruments: list[Instrument]
    books: list[_Book]
    live_ids: list[tuple[str, str, int]]
    used_ids: list[tuple[str, str]]
    next_trade_id: int


_encoder = msgspec.msgpack.Encoder(order="deterministic")
_decoder = msgspec.msgpack.Decoder(_Snapshot)


def _orders(levels: object) -> list[_Order]:
    # Cancelled orders stay in a level's deque, marked dead, until matching pops them; they never
    # trade, count or show, so dropping them here changes no later decision.
    return [
        _Order(o.order_id, o.participant, o.client_order_id, o.side, o.price, o.leaves, o.cum, o.tif)
        for level in levels.values()  # type: ignore[attr-defined]  # a SortedDict of Level
        for o in level.orders
        if o.live
    ]


def encode_engine(engine: MatchingEngine) -> bytes:
    """The engine's whole state; equal states give equal bytes."""
    books = [
        _Book(symbol, book.halted, _orders(book.bids), _orders(book.asks))
        for symbol, book in sorted(engine.books.items())
    ]
    return _encoder.encode(
        _Snapshot(
            version=_VERSION,
            stp=engine.stp,
            instruments=[engine.instruments[s] for s in sorted(engine.instruments)],
            books=books,
            live_ids=sorted((p, c, oid) for (p, c), oid in engine._live_ids.items()),
            used_ids=sorted(engine._used_ids),
            next_trade_id=engine.next_trade_id,
        )
    )


def decode_engine(data: bytes) -> MatchingEngine:
    """Rebuild an engine that makes exactly the decisions the snapshotted one would have made."""
    try:
        snap = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise MatchingSnapshotError(f"undecodable matching snapshot: {exc}") from exc
    if snap.version != _VERSION:
        raise MatchingSnapshotError(f"unknown matching snapshot version {snap.version}")
    engine = MatchingEngine(snap.instruments, stp=snap.stp)
    for saved in snap.books:
        book = engine.books.get(saved.symbol)
        if book is None:  # a book without an instrument cannot be created by the engine itself
            raise MatchingSnapshotError(f"book {saved.symbol} has no instrument")
        book.halted = saved.halted
        _rest_all(book, saved.bids)
        _rest_all(book, saved.asks)
    engine._live_ids = LiveIds(((p, c), oid) for p, c, oid in snap.live_ids)
    engine._used_ids = {(p, c) for p, c in snap.used_ids}
    engine.next_trade_id = snap.next_trade_id
    _check(engine)
    return engine


def _rest_all(book: OrderBook, orders: list[_Order]) -> None:
    for o in orders:
        book.rest(
            RestingOrder(
                o.order_id, o.participant, o.client_order_id, o.side, o.price, o.leaves, o.cum, o.tif
            )
        )


def _check(engine: MatchingEngine) -> None:
    """The id registry must name exactly the resting orders, or later cancels would go astray."""
    resting = {
        (o.participant, o.client_order_id): o.order_id
        for b in engine.books.values()
        for o in b.orders.values()
    }
    if resting != engine._live_ids:
        raise MatchingSnapshotError("live client order ids disagree with the resting orders")
    if not resting.keys() <= engine._used_ids:
        raise MatchingSnapshotError("a resting order's client order id is not marked used")
