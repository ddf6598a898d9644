"""The matching core: validates commands and matches orders by price-time priority, emitting events.

Pure and deterministic: no I/O, clock or randomness; order ids come in with the command and trade ids
from a counter that is part of the state, so replaying the same commands rebuilds the same books and
emits the same events. For speed the core mutates its books in place while it emits the events.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from services.matching.book import Level, OrderBook, RestingOrder
from services.matching.live_ids import LiveIds
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
from shared.domain.events import (
    EngineEvent,
    InstrumentHalted,
    InstrumentListed,
    InstrumentResumed,
    MassCancelled,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from shared.domain.instruments import Instrument
from shared.domain.reasons import Reason
from shared.domain.rules import price_problem, quantity_problem
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = ["MatchingEngine", "SelfTradePrevention"]

_BUY = Side.BUY
_SELL = Side.SELL


class SelfTradePrevention(enum.StrEnum):
    CANCEL_RESTING = "cancel_resting"
    CANCEL_INCOMING = "cancel_incoming"
    CANCEL_BOTH = "cancel_both"
    ALLOW = "allow"


class MatchingEngine:
    """Every book of the exchange plus the client-order-id registry; `handle` is the only entry point."""

    def __init__(
        self,
        instruments: Iterable[Instrument] = (),
        stp: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING,
    ) -> None:
        self.stp = stp
        self.instruments: dict[str, Instrument] = {}
        self.books: dict[str, OrderBook] = {}
        # (participant, client order id) -> live order id; every id ever used stays in `_used_ids`.
        self._live_ids = LiveIds()
        self._used_ids: set[tuple[str, str]] = set()
        self.next_trade_id = 1
        for instrument in instruments:
            self._list(instrument)

    # ---------------------------------------------------------------- dispatch

    def decide(self, command: EngineCommand) -> list[EngineEvent]:
        """Apply one command; return the events it caused, in order."""
        events: list[EngineEvent] = []
        if type(command) is PlaceOrder:
            self._place(command, events)
        elif type(command) is CancelOrder:
            self._cancel(command, events)
        elif type(command) is ReplaceOrder:
            self._replace(command, events)
        elif type(command) is MassCancel:
            self._mass_cancel(command, events)
        elif type(command) is ListInstrument:
            events.append(InstrumentListed(instrument=command.instrument))
            self._list(command.instrument)
        elif type(command) is HaltInstrument or type(command) is ResumeInstrument:
            self._set_halted(command, events)
        elif type(command) is ExpireDayOrders:
            self._expire_day(command, events)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"not an engine command: {command!r}")
        return events

    def book(self, symbol: str) -> OrderBook:
        return self.books[symbol]

    # ---------------------------------------------------------------- validation

    def _reject(
        self,
        events: list[EngineEvent],
        cmd: PlaceOrder | CancelOrder | ReplaceOrder,
        command: str,
        reason: Reason,
        text: str,
        order_id: int = 0,
    ) -> None:
        events.append(
            OrderRejected(
                participant=cmd.participant,
                client_order_id=cmd.client_order_id,
                instrument=cmd.instrument,
                command=command,
                reason=reason,
                text=text,
                order_id=order_id,
            )
        )

    def _claim_id(
        self, cmd: PlaceOrder | CancelOrder | ReplaceOrder, command: str, events: list[EngineEvent]
    ) -> bool:
        """Consume the client order id; a reused id is rejected whatever the command."""
        key = (cmd.participant, cmd.client_order_id)
        if key in self._used_ids:
            self._reject(
                events,
                cmd,
                command,
                Reason.DUPLICATE_CLIENT_ORDER_ID,
                f"client_order_id {cmd.client_order_id!r} was already used",
            )
            return False
        self._used_ids.add(key)
        return True

    def _open_book(
        self,
        cmd: PlaceOrder | CancelOrder | ReplaceOrder,
        command: str,
        events: list[EngineEvent],
        *,
        halt_blocks: bool,
    ) -> OrderBook | None:
        """Claim the command's client order id, then the book it may act on; None (rejected) if not."""
        if not self._claim_id(cmd, command, events):
            return None
        book = self.books.get(cmd.instrument)
        if book is None:
            self._reject(events, cmd, command, Reason.UNKNOWN_INSTRUMENT, f"no instrument {cmd.instrument!r}")
            return None
        if halt_blocks and book.halted:
            self._reject(events, cmd, command, Reason.INSTRUMENT_HALTED, f"{cmd.instrument} is halted")
            return None
        return book

    # ---------------------------------------------------------------- new orders

    def _place(self, cmd: PlaceOrder, events: list[EngineEvent]) -> None:
        book = self._open_book(cmd, "new_order", events, halt_blocks=True)
        if book is None:
            return
        inst = self.instruments[cmd.instrument]
        problem = quantity_problem(inst, cmd.quantity)
        is_market = cmd.order_type is OrderType.MARKET
        if problem is None and not is_market:
            problem = price_problem(inst, cmd.price)
        if problem is not None:
            self._reject(events, cmd, "new_order", problem[0], problem[1], cmd.order_id)
            return
        price = 0 if is_market else cmd.price
        events.append(
            OrderAccepted(
                order_id=cmd.order_id,
                participant=cmd.participant,
                client_order_id=cmd.client_order_id,
                instrument=cmd.instrument,
                side=cmd.side,
                order_type=cmd.order_type,
                price=price,
                quantity=cmd.quantity,
                time_in_force=cmd.time_in_force,
            )
        )
        taker = RestingOrder(
            cmd.order_id,
            cmd.participant,
            cmd.client_order_id,
            cmd.side,
            price,
            cmd.quantity,
            0,
            cmd.time_in_force,
        )
        self._execute(book, taker, is_market, events)

    def _execute(
        self, book: OrderBook, taker: RestingOrder, is_market: bool, events: list[EngineEvent]
    ) -> None:
        """Match an incoming order, then rest, expire or kill what is left of it."""
        tif = taker.tif
        if tif is TimeInForce.FOK and self._fillable(book, taker, is_market) < taker.leaves:
            self._expire(taker, book.symbol, Reason.FOK_NOT_FILLABLE, events)
            return
        if self._match(book, taker, is_market, events) and taker.leaves:
            if is_market:
                self._expire(taker, book.symbol, Reason.MARKET_REMAINDER, events)
            elif tif is TimeInForce.IOC or tif is TimeInForce.FOK:
                self._expire(taker, book.symbol, Reason.IOC_REMAINDER, events)
            else:
                book.rest(taker)
                self._live_ids[(taker.participant, taker.client_order_id)] = taker.order_id

    def _fillable(self, book: OrderBook, taker: RestingOrder, is_market: bool) -> int:
        """Quantity the taker could trade now against other participants' orders (for FOK)."""
        available = 0
        limit = taker.price
        buy = taker.side is _BUY
        levels = book.asks if buy else book.bids
        for level in levels.values():
            if not is_market and (level.price > limit if buy else level.price < limit):
                break
            for order in level.orders:
                if order.live and (
                    order.participant != taker.participant or self.stp is SelfTradePrevention.ALLOW
                ):
                    available += order.leaves
            if available >= taker.leaves:
                break
        return available

    def _match(
        self, book: OrderBook, taker: RestingOrder, is_market: bool, events: list[EngineEvent]
    ) -> bool:
        """Trade the taker against the opposite side; False if self-trade prevention killed the taker."""
        buy = taker.side is _BUY
        levels = book.asks if buy else book.bids
        limit = taker.price
        symbol = book.symbol
        maker_side = _SELL if buy else _BUY
        stp = self.stp
        while taker.leaves and levels:
            key, level = levels.peekitem(0)
            price = level.price
            if not is_market and (price > limit if buy else price < limit):
                break
            orders = level.orders
            while taker.leaves and orders:
                maker: RestingOrder = orders[0]
                if not maker.live:
                    orders.popleft()
                    continue
                if maker.participant == taker.participant and stp is not SelfTradePrevention.ALLOW:
                    if not self._prevent_self_trade(book, level, maker, taker, events):
                        return False
                    continue
                qty = maker.leaves if maker.leaves < taker.leaves else taker.leaves
                maker.leaves -= qty
                maker.cum += qty
                taker.leaves -= qty
                taker.cum += qty
                level.qty -= qty
                events.append(
                    TradeExecuted(
                        trade_id=self.next_trade_id,
                        instrument=symbol,
                        price=price,
                        quantity=qty,
                        maker_order_id=maker.order_id,
                        maker_participant=maker.participant,
                        maker_client_order_id=maker.client_order_id,
                        maker_side=maker_side,
                        maker_leaves=maker.leaves,
                        maker_cum=maker.cum,
                        taker_order_id=taker.order_id,
                        taker_participant=taker.participant,
                        taker_client_order_id=taker.client_order_id,
                        taker_leaves=taker.leaves,
                        taker_cum=taker.cum,
                    )
                )
                self.next_trade_id += 1
                if not maker.leaves:
                    orders.popleft()
                    maker.live = False
                    level.count -= 1
                    del book.orders[maker.order_id]
                    del self._live_ids[(maker.participant, maker.client_order_id)]
            if not level.count:
                # STP may already have dropped the level when it cancelled the last resting order.
                levels.pop(key, None)
        return True

    def _prevent_self_trade(
        self,
        book: OrderBook,
        level: Level,
        maker: RestingOrder,
        taker: RestingOrder,
        events: list[EngineEvent],
    ) -> bool:
        """Apply the STP mode to a would-be self trade; False if the taker must stop."""
        stp = self.stp
        if stp is SelfTradePrevention.CANCEL_RESTING or stp is SelfTradePrevention.CANCEL_BOTH:
            self._cancel_resting(book, maker, Reason.SELF_TRADE, events)
        if stp is SelfTradePrevention.CANCEL_INCOMING or stp is SelfTradePrevention.CANCEL_BOTH:
            events.append(_cancelled(taker, book.symbol, Reason.SELF_TRADE))
            taker.leaves = 0
            return False
        # The resting order was cancelled: drop it from the queue front so matching moves on.
        if level.orders and level.orders[0] is maker:
            level.orders.popleft()
        return True

    def _expire(self, order: RestingOrder, symbol: str, reason: Reason, events: list[EngineEvent]) -> None:
        events.append(
            OrderExpired(
                order_id=order.order_id,
                participant=order.participant,
                client_order_id=order.client_order_id,
                instrument=symbol,
                side=order.side,
                price=order.price,
                expired_qty=order.leaves,
                cum_qty=order.cum,
                reason=reason,
            )
        )
        order.leaves = 0

    def _cancel_resting(
        self,
        book: OrderBook,
        order: RestingOrder,
        reason: Reason,
        events: list[EngineEvent],
        request: str = "",
    ) -> None:
        events.append(_cancelled(order, book.symbol, reason, request))
        book.remove(order)
        del self._live_ids[(order.participant, order.client_order_id)]

    # ---------------------------------------------------------------- cancel and replace

    def _find(
        self, book: OrderBook, cmd: CancelOrder | ReplaceOrder, command: str, events: list[EngineEvent]
    ) -> RestingOrder | None:
        order_id = self._live_ids.get((cmd.participant, cmd.orig_client_order_id))
        order = book.orders.get(order_id) if order_id is not None else None
        if order is None:
            self._reject(
                events,
                cmd,
                command,
                Reason.UNKNOWN_ORDER,
                f"no open order {cmd.orig_client_order_id!r} on {cmd.instrument}",
            )
        return order

    def _cancel(self, cmd: CancelOrder, events: list[EngineEvent]) -> None:
        book = self._open_book(cmd, "cancel_order", events, halt_blocks=False)
        if book is None:
            return
        order = self._find(book, cmd, "cancel_order", events)
        if order is not None:
            self._cancel_resting(book, order, Reason.USER_CANCEL, events, cmd.client_order_id)

    def _mass_cancel(self, cmd: MassCancel, events: list[EngineEvent]) -> None:
        """Every resting order of the participant that the filters select, in order id order (also on a
        halted book: cancels always work), then one MassCancelled that counts them."""
        owned = self._live_ids.of(cmd.participant)
        cancelled = 0
        for symbol in sorted(self.books) if not cmd.instrument else [cmd.instrument]:
            book = self.books.get(symbol)
            if book is None:
                continue
            for order_id in owned:
                order = book.orders.get(order_id)
                if order is not None and (cmd.side is None or order.side is cmd.side):
                    self._cancel_resting(book, order, Reason.USER_CANCEL, events, cmd.client_order_id)
                    cancelled += 1
        events.append(MassCancelled(
            participant=cmd.participant, client_order_id=cmd.client_order_id, instrument=cmd.instrument,
            side=cmd.side, cancelled=cancelled,
        ))  # fmt: skip

    def _replace(self, cmd: ReplaceOrder, events: list[EngineEvent]) -> None:
        book = self._open_book(cmd, "replace_order", events, halt_blocks=True)
        if book is None:
            return
        order = self._find(book, cmd, "replace_order", events)
        if order is None:
            return
        inst = self.instruments[cmd.instrument]
        problem = price_problem(inst, cmd.price) or quantity_problem(inst, cmd.quantity)
        if problem is None and cmd.quantity <= order.cum:
            problem = (
                Reason.INVALID_QUANTITY,
                f"new quantity {cmd.quantity} must exceed the {order.cum} t already traded",
            )
        if problem is not None:
            self._reject(events, cmd, "replace_order", problem[0], problem[1], order.order_id)
            return
        new_leaves = cmd.quantity - order.cum
        keep = cmd.price == order.price and new_leaves <= order.leaves
        events.append(
            OrderReplaced(
                order_id=order.order_id,
                participant=order.participant,
                client_order_id=cmd.client_order_id,
                orig_client_order_id=order.client_order_id,
                instrument=cmd.instrument,
                side=order.side,
                old_price=order.price,
                old_leaves=order.leaves,
                price=cmd.price,
                quantity=cmd.quantity,
                leaves=new_leaves,
                cum_qty=order.cum,
                priority_kept=keep,
            )
        )
        del self._live_ids[(order.participant, order.client_order_id)]
        if keep:
            book.reduce(order, new_leaves)
            order.client_order_id = cmd.client_order_id
            self._live_ids[(order.participant, order.client_order_id)] = order.order_id
            return
        book.remove(order)
        # A fresh object: the old one may still sit, dead, in its level's queue.
        moved = RestingOrder(
            order.order_id,
            order.participant,
            cmd.client_order_id,
            order.side,
            cmd.price,
            new_leaves,
            order.cum,
            order.tif,
        )
        self._execute(book, moved, False, events)

    # ---------------------------------------------------------------- instrument control

    def _list(self, instrument: Instrument) -> None:
        self.instruments[instrument.symbol] = instrument
        self.books.setdefault(instrument.symbol, OrderBook(instrument.symbol))

    def _set_halted(self, cmd: HaltInstrument | ResumeInstrument, events: list[EngineEvent]) -> None:
        book = self.books.get(cmd.instrument)
        if book is None:
            return
        halt = type(cmd) is HaltInstrument
        if book.halted != halt:
            book.halted = halt
            events.append(
                InstrumentHalted(instrument=cmd.instrument)
                if halt
                else InstrumentResumed(instrument=cmd.instrument)
            )

    def _expire_day(self, cmd: ExpireDayOrders, events: list[EngineEvent]) -> None:
        book = self.books.get(cmd.instrument)
        if book is None:
            return
        for order_id in sorted(book.orders):
            order = book.orders[order_id]
            if order.tif is TimeInForce.DAY:
                # Off the book first: remove() takes the order's open quantity off its level.
                book.remove(order)
                del self._live_ids[(order.participant, order.client_order_id)]
                self._expire(order, book.symbol, Reason.DAY_END, events)


def _cancelled(order: RestingOrder, symbol: str, reason: Reason, request: str = "") -> OrderCancelled:
    return OrderCancelled(
        order_id=order.order_id,
        participant=order.participant,
        client_order_id=order.client_order_id,
        instrument=symbol,
        side=order.side,
        price=order.price,
        cancelled_qty=order.leaves,
        cum_qty=order.cum,
        reason=reason,
        request_client_order_id=request,
    )
