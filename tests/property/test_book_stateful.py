"""Stateful property test: the matching engine driven side by side with a naive list-based reference book."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from services.matching.engine import MatchingEngine
from shared.domain.commands import CancelOrder, HaltInstrument, PlaceOrder, ReplaceOrder, ResumeInstrument
from shared.domain.events import (
    EngineEvent,
    InstrumentHalted,
    InstrumentResumed,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.reasons import Reason
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = ["BookMachine", "ReferenceBook"]

SYMBOL = "VCS-TEST"
TICK = 10
REFERENCE = 1000
# Band +-50 %: 500 .. 1500. The grid sits well inside it; the bad prices probe every price rule.
INSTRUMENT = Instrument(
    symbol=SYMBOL,
    kind=InstrumentKind.OFFSET,
    standard="VCS",
    registry="VERRA",
    vintage=2024,
    tick_size=TICK,
    lot_size=1,
    reference_price=REFERENCE,
    band_bps=5000,
)
GRID = [REFERENCE + TICK * k for k in range(-3, 4)]
BAD_PRICES = [0, -TICK, REFERENCE + 5, 490, 1510]
MAX_QTY = 1_000_000_000  # mirrors the engine's typo guard
PARTICIPANTS = ("alice", "bob", "carol")

Outcome = tuple[object, ...]

prices = st.sampled_from(GRID * 3 + BAD_PRICES)  # about one in eight is invalid
quantities = st.integers(-1, 12)  # 0 and -1 are invalid
participants = st.sampled_from(PARTICIPANTS)
sides = st.sampled_from([Side.BUY, Side.SELL])
# Mostly GTC so the book fills up; IOC and FOK still come often enough to sweep it.
limit_tifs = st.sampled_from([TimeInForce.GTC] * 3 + [TimeInForce.IOC, TimeInForce.FOK])


@dataclass
class RefOrder:
    order_id: int
    participant: str
    clid: str
    side: Side
    price: int  # 0 for a market order
    leaves: int
    cum: int
    seq: int = -1


def _priority(order: RefOrder) -> tuple[int, int]:
    return (-order.price if order.side is Side.BUY else order.price, order.seq)


class ReferenceBook:
    """The spec, written to be obvious: two lists sorted by (price priority, arrival), scanned linearly.

    Default self-trade prevention (cancel the resting order). Returns normalised outcome tuples that
    `normalise` also derives from the engine's events.
    """

    def __init__(self) -> None:
        self.bids: list[RefOrder] = []
        self.asks: list[RefOrder] = []
        self.used: set[tuple[str, str]] = set()
        self.halted = False
        self._seq = itertools.count()

    def resting(self) -> list[RefOrder]:
        return self.bids + self.asks

    def find(self, participant: str, clid: str) -> RefOrder | None:
        for order in self.resting():
            if order.participant == participant and order.clid == clid:
                return order
        return None

    def depth(self, side: Side) -> list[tuple[int, int]]:
        levels: dict[int, int] = {}
        for order in self.bids if side is Side.BUY else self.asks:
            levels[order.price] = levels.get(order.price, 0) + order.leaves
        return list(levels.items())  # dicts keep insertion order, and the list is sorted best first

    def queue(self, side: Side, price: int) -> list[int]:
        return [o.order_id for o in (self.bids if side is Side.BUY else self.asks) if o.price == price]

    # ------------------------------------------------------------ commands

    def place(self, cmd: PlaceOrder) -> list[Outcome]:
        if (reject := self._claim(cmd.participant, cmd.client_order_id, "new_order")) is not None:
            return reject
        if self.halted:
            return [("rejected", "new_order", Reason.INSTRUMENT_HALTED, 0)]
        market = cmd.order_type is OrderType.MARKET
        reason = _quantity_problem(cmd.quantity)
        if reason is None and not market:
            reason = _price_problem(cmd.price)
        if reason is not None:
            return [("rejected", "new_order", reason, cmd.order_id)]
        price = 0 if market else cmd.price
        out: list[Outcome] = [("accepted", cmd.order_id, cmd.side, price, cmd.quantity)]
        taker = RefOrder(cmd.order_id, cmd.participant, cmd.client_order_id, cmd.side, price, cmd.quantity, 0)
        tif = cmd.time_in_force
        if tif is TimeInForce.FOK:
            fillable = sum(
                o.leaves
                for o in self._opposite(taker)
                if o.participant != taker.participant and self._crosses(taker, o, market)
            )
            if fillable < taker.leaves:
                out.append(("expired", taker.order_id, taker.leaves, Reason.FOK_NOT_FILLABLE))
                return out
        self._match(taker, market, out)
        if taker.leaves:
            if market:
                out.append(("expired", taker.order_id, taker.leaves, Reason.MARKET_REMAINDER))
            elif tif in (TimeInForce.IOC, TimeInForce.FOK):
                out.append(("expired", taker.order_id, taker.leaves, Reason.IOC_REMAINDER))
            else:
                self._rest(taker)
        return out

    def cancel(self, cmd: CancelOrder) -> list[Outcome]:
        if (reject := self._claim(cmd.participant, cmd.client_order_id, "cancel_order")) is not None:
            return reject
        order = self.find(cmd.participant, cmd.orig_client_order_id)
        if order is None:
            return [("rejected", "cancel_order", Reason.UNKNOWN_ORDER, 0)]
        self._side(order.side).remove(order)
        return [("cancelled", order.order_id, order.leaves, Reason.USER_CANCEL)]

    def replace(self, cmd: ReplaceOrder) -> list[Outcome]:
        if (reject := self._claim(cmd.participant, cmd.client_order_id, "replace_order")) is not None:
            return reject
        if self.halted:
            return [("rejected", "replace_order", Reason.INSTRUMENT_HALTED, 0)]
        order = self.find(cmd.participant, cmd.orig_client_order_id)
        if order is None:
            return [("rejected", "replace_order", Reason.UNKNOWN_ORDER, 0)]
        reason = _price_problem(cmd.price) or _quantity_problem(cmd.quantity)
        if reason is None and cmd.quantity <= order.cum:
            reason = Reason.INVALID_QUANTITY
        if reason is not None:
            return [("rejected", "replace_order", reason, order.order_id)]
        new_leaves = cmd.quantity - order.cum
        keep = cmd.price == order.price and new_leaves <= order.leaves
        out: list[Outcome] = [
            ("replaced", order.order_id, order.price, order.leaves, cmd.price, cmd.quantity, new_leaves, keep)
        ]
        if keep:
            order.leaves = new_leaves
            order.clid = cmd.client_order_id
            return out
        self._side(order.side).remove(order)
        moved = RefOrder(
            order.order_id,
            order.participant,
            cmd.client_order_id,
            order.side,
            cmd.price,
            new_leaves,
            order.cum,
        )
        self._match(moved, False, out)
        if moved.leaves:
            self._rest(moved)
        return out

    def set_halted(self, halted: bool) -> list[Outcome]:
        if self.halted == halted:
            return []
        self.halted = halted
        return [("halted",) if halted else ("resumed",)]

    # ------------------------------------------------------------ internals

    def _claim(self, participant: str, clid: str, command: str) -> list[Outcome] | None:
        if (participant, clid) in self.used:
            return [("rejected", command, Reason.DUPLICATE_CLIENT_ORDER_ID, 0)]
        self.used.add((participant, clid))
        return None

    def _side(self, side: Side) -> list[RefOrder]:
        return self.bids if side is Side.BUY else self.asks

    def _opposite(self, taker: RefOrder) -> list[RefOrder]:
        return self.asks if taker.side is Side.BUY else self.bids

    @staticmethod
    def _crosses(taker: RefOrder, maker: RefOrder, market: bool) -> bool:
        if market:
            return True
        return maker.price <= taker.price if taker.side is Side.BUY else maker.price >= taker.price

    def _match(self, taker: RefOrder, market: bool, out: list[Outcome]) -> None:
        book = self._opposite(taker)
        while taker.leaves and book and self._crosses(taker, book[0], market):
            maker = book[0]
            if maker.participant == taker.participant:
                book.pop(0)
                out.append(("cancelled", maker.order_id, maker.leaves, Reason.SELF_TRADE))
                continue
            qty = min(maker.leaves, taker.leaves)
            maker.leaves -= qty
            maker.cum += qty
            taker.leaves -= qty
            taker.cum += qty
            out.append(
                (
                    "trade",
                    maker.price,
                    qty,
                    maker.order_id,
                    taker.order_id,
                    maker.leaves,
                    maker.cum,
                    taker.leaves,
                    taker.cum,
                )
            )
            if not maker.leaves:
                book.pop(0)

    def _rest(self, order: RefOrder) -> None:
        order.seq = next(self._seq)
        book = self._side(order.side)
        book.append(order)
        book.sort(key=_priority)


def _quantity_problem(quantity: int) -> Reason | None:
    return Reason.INVALID_QUANTITY if quantity <= 0 or quantity > MAX_QTY else None


def _price_problem(price: int) -> Reason | None:
    if price <= 0:
        return Reason.INVALID_PRICE
    if price % TICK:
        return Reason.INVALID_TICK
    if not INSTRUMENT.band_low <= price <= INSTRUMENT.band_high:
        return Reason.OUTSIDE_PRICE_BAND
    return None


def normalise(events: list[EngineEvent]) -> list[Outcome]:
    """The engine's events in the reference book's outcome vocabulary."""
    out: list[Outcome] = []
    for e in events:
        if isinstance(e, OrderAccepted):
            out.append(("accepted", e.order_id, e.side, e.price, e.quantity))
        elif isinstance(e, OrderRejected):
            out.append(("rejected", e.command, e.reason, e.order_id))
        elif isinstance(e, TradeExecuted):
            out.append(
                (
                    "trade",
                    e.price,
                    e.quantity,
                    e.maker_order_id,
                    e.taker_order_id,
                    e.maker_leaves,
                    e.maker_cum,
                    e.taker_leaves,
                    e.taker_cum,
                )
            )
        elif isinstance(e, OrderCancelled):
            out.append(("cancelled", e.order_id, e.cancelled_qty, e.reason))
        elif isinstance(e, OrderExpired):
            out.append(("expired", e.order_id, e.expired_qty, e.reason))
        elif isinstance(e, OrderReplaced):
            out.append(
                (
                    "replaced",
                    e.order_id,
                    e.old_price,
                    e.old_leaves,
                    e.price,
                    e.quantity,
                    e.leaves,
                    e.priority_kept,
                )
            )
        elif isinstance(e, InstrumentHalted):
            out.append(("halted",))
        elif isinstance(e, InstrumentResumed):
            out.append(("resumed",))
        else:  # pragma: no cover - the engine lists no instruments in this test
            raise AssertionError(f"unexpected event {e!r}")
    return out


@dataclass
class Ledger:
    """One order's quantities as told by the events alone."""

    total: int = 0  # accepted quantity, or the latest replaced total (which includes what traded)
    filled: int = 0
    cancelled: int = 0
    expired: int = 0


class BookMachine(RuleBasedStateMachine):
    """Every rule sends one command to both books and checks they answer with the same outcomes."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = MatchingEngine([INSTRUMENT])
        self.ref = ReferenceBook()
        self.order_ids = itertools.count(1)
        self.clids = itertools.count(1)
        self.orders: list[tuple[str, str]] = []  # (participant, clid) of every order and every replacement
        self.used: list[tuple[str, str]] = []  # every client order id ever sent, for duplicate probes
        self.ledgers: dict[int, Ledger] = {}

    # ------------------------------------------------------------ plumbing

    def _clid(self, participant: str, reuse: int) -> str:
        """A fresh client order id or, for `reuse` 0 or 1 (if any), the participant's latest or first one."""
        mine = [clid for p, clid in self.used if p == participant]
        if reuse < 2 and mine:
            return mine[-1] if reuse == 0 else mine[0]
        clid = f"{participant}-{next(self.clids)}"
        self.used.append((participant, clid))
        return clid

    def _target(self, data: st.DataObject) -> tuple[str, str]:
        """(owner, client order id) of a resting order four times in five, else of any order ever named."""
        live = [(o.participant, o.clid) for o in self.ref.resting()]
        if live and data.draw(st.integers(0, 4), label="pick live") > 0:
            return data.draw(st.sampled_from(live), label="live order")
        return data.draw(st.sampled_from(self.orders), label="any order")

    def _send(
        self,
        command: PlaceOrder | CancelOrder | ReplaceOrder | HaltInstrument | ResumeInstrument,
        expected: list[Outcome],
    ) -> None:
        events = self.engine.decide(command)
        got = normalise(events)
        trades = [o[1:5] for o in got if o[0] == "trade"]
        want_trades = [o[1:5] for o in expected if o[0] == "trade"]
        assert trades == want_trades, f"{command!r}\ntrades {trades}\nreference {want_trades}"
        assert got == expected, f"{command!r}\nengine    {got}\nreference {expected}"
        self._account(events)

    def _account(self, events: list[EngineEvent]) -> None:
        for e in events:
            if isinstance(e, OrderAccepted):
                self.ledgers[e.order_id] = Ledger(total=e.quantity)
            elif isinstance(e, OrderReplaced):
                assert e.quantity == e.cum_qty + e.leaves
                self.ledgers[e.order_id].total = e.quantity
            elif isinstance(e, TradeExecuted):
                maker, taker = self.ledgers[e.maker_order_id], self.ledgers[e.taker_order_id]
                maker.filled += e.quantity
                taker.filled += e.quantity
                assert (maker.filled, taker.filled) == (e.maker_cum, e.taker_cum), e
            elif isinstance(e, OrderCancelled):
                self.ledgers[e.order_id].cancelled += e.cancelled_qty
            elif isinstance(e, OrderExpired):
                self.ledgers[e.order_id].expired += e.expired_qty

    # ------------------------------------------------------------ rules

    @initialize(
        orders=st.lists(
            st.tuples(participants, sides, st.sampled_from(GRID), st.integers(1, 10)), max_size=15
        )
    )
    def seed_book(self, orders: list[tuple[str, Side, int, int]]) -> None:
        """Start from a populated book (orders may cross and trade), checking after every order."""
        for participant, side, price, qty in orders:
            self.place_limit(participant, side, price, qty, TimeInForce.GTC, reuse=19)
            self.check_book()

    @rule(
        participant=participants,
        side=sides,
        price=prices,
        qty=quantities,
        tif=limit_tifs,
        reuse=st.integers(0, 19),
    )
    def place_limit(
        self, participant: str, side: Side, price: int, qty: int, tif: TimeInForce, reuse: int
    ) -> None:
        cmd = PlaceOrder(
            order_id=next(self.order_ids),
            participant=participant,
            client_order_id=self._clid(participant, reuse),
            instrument=SYMBOL,
            side=side,
            order_type=OrderType.LIMIT,
            price=price,
            quantity=qty,
            time_in_force=tif,
        )
        self.orders.append((participant, cmd.client_order_id))
        self._send(cmd, self.ref.place(cmd))

    @rule(
        participant=participants,
        side=sides,
        qty=quantities,
        tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
    )
    def place_market(self, participant: str, side: Side, qty: int, tif: TimeInForce) -> None:
        cmd = PlaceOrder(
            order_id=next(self.order_ids),
            participant=participant,
            client_order_id=self._clid(participant, 19),
            instrument=SYMBOL,
            side=side,
            order_type=OrderType.MARKET,
            price=0,
            quantity=qty,
            time_in_force=tif,
        )
        self._send(cmd, self.ref.place(cmd))

    @rule(
        participant=participants,
        side=sides,
        reach=st.integers(0, 3),
        extra=st.integers(-1, 1),
        tif=st.sampled_from([TimeInForce.FOK, TimeInForce.IOC, TimeInForce.GTC]),
    )
    def sweep(self, participant: str, side: Side, reach: int, extra: int, tif: TimeInForce) -> None:
        """A limit order reaching `reach` levels into the other side, sized one below, at or one above
        what it could trade there: the FOK edge, and sweeps over levels holding cancelled orders."""
        levels = self.ref.depth(Side.SELL if side is Side.BUY else Side.BUY)
        price = levels[min(reach, len(levels) - 1)][0] if levels else REFERENCE
        probe = RefOrder(0, participant, "", side, price, 0, 0)
        fillable = sum(
            o.leaves
            for o in self.ref._opposite(probe)
            if o.participant != participant and self.ref._crosses(probe, o, False)
        )
        self.place_limit(participant, side, price, max(1, fillable + extra), tif, reuse=19)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), other_owner=st.integers(0, 9), reuse=st.integers(0, 19))
    def cancel(self, data: st.DataObject, other_owner: int, reuse: int) -> None:
        owner, orig = self._target(data)
        # One time in ten a different participant asks: the order must not be found.
        participant = PARTICIPANTS[(PARTICIPANTS.index(owner) + 1) % 3] if other_owner == 0 else owner
        cmd = CancelOrder(
            participant=participant,
            client_order_id=self._clid(participant, reuse),
            instrument=SYMBOL,
            orig_client_order_id=orig,
        )
        self._send(cmd, self.ref.cancel(cmd))

    @precondition(lambda self: self.orders)
    @rule(
        data=st.data(),
        kind=st.sampled_from(["price", "up", "down", "same", "wild"]),
        step=st.integers(1, 6),
        reuse=st.integers(0, 19),
    )
    def replace(self, data: st.DataObject, kind: str, step: int, reuse: int) -> None:
        owner, orig = self._target(data)
        live = self.ref.find(owner, orig)
        price, total = (live.price, live.cum + live.leaves) if live is not None else (REFERENCE, 5)
        if kind == "price":
            price = data.draw(prices, label="new price")
        elif kind == "up":
            total += step
        elif kind == "down":
            total -= step  # may drop to or below what already traded: rejected
        elif kind == "wild":
            price, total = data.draw(prices, label="new price"), data.draw(quantities, label="new total")
        cmd = ReplaceOrder(
            participant=owner,
            client_order_id=self._clid(owner, reuse),
            instrument=SYMBOL,
            orig_client_order_id=orig,
            price=price,
            quantity=total,
        )
        self.orders.append((owner, cmd.client_order_id))
        self._send(cmd, self.ref.replace(cmd))

    @rule(roll=st.integers(0, 3))
    def halt_or_resume(self, roll: int) -> None:
        """Resume if halted; else halt one time in four (a no-op resume otherwise), so most steps trade."""
        if roll == 0 and not self.ref.halted:
            self._send(HaltInstrument(instrument=SYMBOL), self.ref.set_halted(True))
        else:
            self._send(ResumeInstrument(instrument=SYMBOL), self.ref.set_halted(False))

    # ------------------------------------------------------------ invariants

    @invariant()
    def check_book(self) -> None:
        self.never_crossed()
        self.depth_matches_reference()
        self.queues_match_reference()
        self.quantities_are_conserved()

    def never_crossed(self) -> None:
        assert not self.engine.book(SYMBOL).is_crossed(), self.engine.book(SYMBOL).depth(100)

    def depth_matches_reference(self) -> None:
        bids, asks = self.engine.book(SYMBOL).depth(10_000)
        assert bids == self.ref.depth(Side.BUY)
        assert asks == self.ref.depth(Side.SELL)

    def queues_match_reference(self) -> None:
        book = self.engine.book(SYMBOL)
        for side, levels in ((Side.BUY, book.bids), (Side.SELL, book.asks)):
            for level in levels.values():
                live = level.live_orders()
                assert [o.order_id for o in live] == self.ref.queue(side, level.price), level.price
                assert level.count == len(live)
                assert level.qty == sum(o.leaves for o in live)
        assert sorted(book.orders) == sorted(o.order_id for o in self.ref.resting())

    def quantities_are_conserved(self) -> None:
        orders = self.engine.book(SYMBOL).orders
        for order_id, ledger in self.ledgers.items():
            resting = orders.get(order_id)
            leaves = resting.leaves if resting is not None else 0
            assert ledger.total == leaves + ledger.filled + ledger.cancelled + ledger.expired, (
                order_id,
                ledger,
            )


def test_engine_agrees_with_the_naive_reference_book() -> None:
    """Random command sequences give the same events, depth, FIFO queues and trades as the reference."""
    run_state_machine_as_test(
        BookMachine,
        settings=settings(max_examples=200, stateful_step_count=50, deadline=None),
    )
