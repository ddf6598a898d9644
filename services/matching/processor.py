"""The matching service's core: turns verified requests from the log into matching-core commands."""

from __future__ import annotations

import hashlib

from services.matching.engine import MatchingEngine, SelfTradePrevention
from services.matching.snapshot import decode_engine, encode_engine
from shared.domain.codec import Event, tags
from shared.domain.commands import (
    CancelOrder,
    EngineCommand,
    ExpireDayOrders,
    HaltInstrument,
    ListInstrument,
    MassCancel,
    PlaceOrder,
    ReplaceOrder,
    ResumeInstrument,
)
from shared.domain.differences import first_key_difference
from shared.domain.events import InstrumentListed, OrderCancelled
from shared.domain.ledger import (
    CancelSubmitted,
    HaltRequested,
    MassCancelSubmitted,
    OrderVerified,
    ReplaceVerified,
    ResumeRequested,
    TradingDayClosed,
)

__all__ = ["MatchingProcessor"]


def to_command(event: Event) -> EngineCommand | None:
    """The core command a log event asks for, or None."""
    if isinstance(event, OrderVerified):
        return PlaceOrder(
            order_id=event.order_id,
            participant=event.participant,
            client_order_id=event.client_order_id,
            instrument=event.instrument,
            side=event.side,
            order_type=event.order_type,
            price=event.price,
            quantity=event.quantity,
            time_in_force=event.time_in_force,
        )
    if isinstance(event, CancelSubmitted):
        return CancelOrder(
            participant=event.participant,
            client_order_id=event.client_order_id,
            instrument=event.instrument,
            orig_client_order_id=event.orig_client_order_id,
        )
    if isinstance(event, MassCancelSubmitted):
        return MassCancel(participant=event.participant, client_order_id=event.client_order_id,
                          instrument=event.instrument, side=event.side)  # fmt: skip
    if isinstance(event, ReplaceVerified):
        return ReplaceOrder(
            participant=event.participant,
            client_order_id=event.client_order_id,
            instrument=event.instrument,
            orig_client_order_id=event.orig_client_order_id,
            price=event.price,
            quantity=event.quantity,
        )
    if isinstance(event, InstrumentListed):
        return ListInstrument(instrument=event.instrument)
    if isinstance(event, HaltRequested):
        return HaltInstrument(instrument=event.instrument)
    if isinstance(event, ResumeRequested):
        return ResumeInstrument(instrument=event.instrument)
    if isinstance(event, TradingDayClosed):
        return ExpireDayOrders(instrument=event.instrument)
    return None


class MatchingProcessor:
    """One consumer, strict log order: the engine sees requests exactly as the log orders them."""

    name = "matching"
    inputs = tags(
        OrderVerified,
        CancelSubmitted,
        MassCancelSubmitted,
        ReplaceVerified,
        InstrumentListed,
        HaltRequested,
        ResumeRequested,
        TradingDayClosed,
    )
    answers_to = inputs  # every request it reads is answered; the rest are rare

    def __init__(self, stp: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING) -> None:
        self.engine = MatchingEngine(stp=stp)
        self.touched: set[str] = set()  # instruments whose depth changed since the shell last looked

    def decide(self, seq: int, event_ns: int, event: Event) -> list[Event]:
        command = to_command(event)
        if command is None:
            return []
        events = self.engine.decide(command)
        if isinstance(command, ListInstrument):
            # The listing is already a fact in the log (written by intake); the core's echo is not news.
            self.touched.add(command.instrument.symbol)
            return [e for e in events if not isinstance(e, InstrumentListed)]
        if isinstance(command, MassCancel):
            self.touched.update({e.instrument for e in events if isinstance(e, OrderCancelled)})
        else:
            self.touched.add(command.instrument)
        return list(events)  # widened to the log's Event union

    def snapshot(self) -> bytes:
        """The engine's whole state, canonically encoded (see services/matching/snapshot.py)."""
        return encode_engine(self.engine)

    def restore(self, data: bytes) -> None:
        self.engine = decode_engine(data)
        self.touched = set(self.engine.books)  # depth views are republished after a restore

    def first_difference(self, other: MatchingProcessor) -> str | None:
        """The first order, halt or trade id where two matching states differ, for an operator."""

        def orders(proc: MatchingProcessor, symbol: str) -> dict[int, tuple[object, ...]]:
            book = proc.engine.books.get(symbol)
            if book is None:
                return {}
            return {
                o.order_id: (o.side, o.price, o.leaves, o.cum, o.client_order_id)
                for o in book.orders.values()
            }

        for symbol in sorted(set(self.engine.books) | set(other.engine.books)):
            a, b = orders(self, symbol), orders(other, symbol)
            if diff := first_key_difference(a, b, f"{symbol} order"):
                return diff
            halted = [
                p.engine.books[symbol].halted if symbol in p.engine.books else None for p in (self, other)
            ]
            if halted[0] != halted[1]:
                return f"{symbol} halted: live {halted[0]} != replayed {halted[1]}"
        if self.engine.next_trade_id != other.engine.next_trade_id:
            return f"next trade id: live {self.engine.next_trade_id} != replayed {other.engine.next_trade_id}"
        return None

    def digest(self) -> str:
        """A hash over every book's orders in priority order, for replay comparisons."""
        h = hashlib.sha256()
        for symbol in sorted(self.engine.books):
            book = self.engine.books[symbol]
            h.update(f"{symbol}|{int(book.halted)}|".encode())
            for levels in (book.bids, book.asks):
                for level in levels.values():
                    for o in level.live_orders():
                        h.update(f"{o.order_id},{o.participant},{o.price},{o.leaves},{o.cum};".encode())
        h.update(str(self.engine.next_trade_id).encode())
        return h.hexdigest()
