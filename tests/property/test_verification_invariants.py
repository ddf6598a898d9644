"""Verification under random traffic through a real matching engine: the books add up after every step."""

from __future__ import annotations

import itertools
from collections import deque

import hypothesis.strategies as st
from hypothesis import event as label
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from services.matching.engine import MatchingEngine, SelfTradePrevention
from services.runtime.processor import restored
from services.verification.core import Verification
from shared.domain.codec import Event, event_type
from shared.domain.commands import (
    CancelOrder,
    EngineCommand,
    ExpireDayOrders,
    ListInstrument,
    PlaceOrder,
    ReplaceOrder,
)
from shared.domain.events import InstrumentListed, TradeExecuted
from shared.domain.ledger import (
    EXCHANGE_ACCOUNT,
    CashDeposited,
    CashWithdrawn,
    CreditsIssued,
    OrderSubmitted,
    OrderVerified,
    ParticipantRegistered,
    ReplaceSubmitted,
    ReplaceVerified,
    SerialRange,
    WithdrawalRequested,
)
from shared.domain.values import OrderType, Side, TimeInForce
from tests.support import SEALED_KEY
from tests.unit.verification_support import CCER, SZEA, instrument, settle

PARTICIPANTS = ("p0", "p1", "p2", "p3")  # p3 may trade CCER only
REFERENCE = {SZEA: 5_800, CCER: 1_000}

participants = st.sampled_from(PARTICIPANTS)
symbols = st.sampled_from(sorted(REFERENCE))
# Percent of the reference price: mostly inside the +-10 % band, some outside, some nonsense (0, negative).
percents = st.sampled_from([90, 95, 99, 100, 100, 100, 101, 105, 110, 111, 0, -5])
quantities = st.sampled_from([1, 1, 2, 3, 4, 5, 6, 8, 10, 12, 0, -1])


class Exchange(RuleBasedStateMachine):
    """Verification answers requests at once; matching and settlement lag behind in FIFO queues, so fills,
    cancels and settlements interleave with new requests the way they do in the log."""

    def __init__(self) -> None:
        super().__init__()
        self.v = Verification()
        self.engine = MatchingEngine()
        self.seq = itertools.count(1)
        self.order_ids = itertools.count(1)
        self.serials = itertools.count(1)
        self.to_matching: deque[EngineCommand] = deque()
        self.to_settlement: deque[TradeExecuted] = deque()
        self.placed: dict[str, list[tuple[str, str]]] = {p: [] for p in PARTICIPANTS}  # (clid, symbol)
        self.cash_in = 0  # deposits minus withdrawals
        self.tonnes = dict.fromkeys(REFERENCE, 0)

    def feed(self, event: Event) -> list[Event]:
        seq = next(self.seq)
        answers = self.v.decide(seq, seq, event)
        # A type it answers must wake it (Processor.answers_to), else the answer waits for block_ms.
        assert not answers or event_type(event) in self.v.answers_to, event_type(event)
        for answer in answers:
            label(f"{type(answer).__name__} {getattr(answer, 'reason', '')}".strip())
        return answers

    @initialize(stp=st.sampled_from(SelfTradePrevention))
    def open_exchange(self, stp: SelfTradePrevention) -> None:
        self.engine.stp = stp
        for symbol, reference in REFERENCE.items():
            self.engine.decide(ListInstrument(instrument=instrument(symbol, reference)))
            self.feed(InstrumentListed(instrument=instrument(symbol, reference)))
        for p in PARTICIPANTS:
            allowed = (CCER,) if p == "p3" else ()
            self.feed(ParticipantRegistered(participant=p, name=p, key=SEALED_KEY, instruments=allowed))
            self.deposit(p, 200_000)
            for symbol in REFERENCE:
                self.issue(p, symbol, 30)

    # ---------------------------------------------------------------- requests

    @rule(p=participants, amount=st.integers(1, 150_000))
    def deposit(self, p: str, amount: int) -> None:
        self.feed(CashDeposited(participant=p, amount=amount))
        self.cash_in += amount

    @rule(p=participants, symbol=symbols, tonnes=st.integers(1, 30))
    def issue(self, p: str, symbol: str, tonnes: int) -> None:
        start = next(self.serials)
        for _ in range(tonnes - 1):
            next(self.serials)
        self.feed(
            CreditsIssued(participant=p, instrument=symbol, serials=SerialRange(start, start + tonnes - 1))
        )
        self.tonnes[symbol] += tonnes

    @rule(
        p=participants, symbol=symbols, side=st.sampled_from(Side), market=st.booleans(), pct=percents,
        qty=quantities, tif=st.sampled_from(TimeInForce), reuse=st.integers(0, 9),
    )  # fmt: skip
    def submit(self, p: str, symbol: str, side: Side, market: bool, pct: int, qty: int, tif: TimeInForce,
               reuse: int) -> None:  # fmt: skip
        placed = self.placed[p]
        # One in ten reuses an old client id, which matching rejects as a duplicate.
        clid = placed[-1][0] if placed and reuse == 0 else f"{p}-{next(self.seq)}"
        placed.append((clid, symbol))
        order_type = OrderType.MARKET if market else OrderType.LIMIT
        (verdict,) = self.feed(OrderSubmitted(
            order_id=next(self.order_ids), participant=p, client_order_id=clid, instrument=symbol, side=side,
            order_type=order_type, price=REFERENCE[symbol] * pct // 100, quantity=qty, time_in_force=tif,
        ))  # fmt: skip
        if isinstance(verdict, OrderVerified):
            self.to_matching.append(PlaceOrder(
                order_id=verdict.order_id, participant=p, client_order_id=clid, instrument=symbol, side=side,
                order_type=order_type, price=verdict.price, quantity=qty, time_in_force=tif,
            ))  # fmt: skip

    @rule(
        buyer=participants, seller=participants, symbol=symbols, pct=percents, buy_qty=quantities,
        sell_qty=quantities,
    )  # fmt: skip
    def cross(self, buyer: str, seller: str, symbol: str, pct: int, buy_qty: int, sell_qty: int) -> None:
        """A resting sell and a buy at one price: traffic that trades, so fills and settlements happen."""
        self.submit(seller, symbol, Side.SELL, False, pct, sell_qty, TimeInForce.GTC, 1)
        self.submit(buyer, symbol, Side.BUY, False, pct, buy_qty, TimeInForce.GTC, 1)

    @rule(data=st.data(), symbol=symbols, side=st.sampled_from(Side), new_pct=percents, new_qty=quantities)
    def amend_while_filling(
        self, data: st.DataObject, symbol: str, side: Side, new_pct: int, new_qty: int
    ) -> None:
        """Amend a resting order while a fill at its old price is already queued ahead of the amendment."""
        maker, taker = data.draw(st.permutations(PARTICIPANTS[:3]))[:2]
        pct = data.draw(st.sampled_from([95, 100, 105]))
        qty = data.draw(st.integers(2, 8))
        self.run_matching(len(self.to_matching))
        self.submit(maker, symbol, side, False, pct, qty, TimeInForce.GTC, 1)
        self.run_matching(1)
        orig = self.placed[maker][-1][0]
        other = Side.SELL if side is Side.BUY else Side.BUY
        self.submit(taker, symbol, other, False, pct, data.draw(st.integers(1, qty - 1)), TimeInForce.IOC, 1)
        self.amend(maker, orig, symbol, new_pct, new_qty)
        self.run_matching(len(self.to_matching))

    @precondition(lambda self: any(self.placed.values()))
    @rule(data=st.data(), pct=percents, qty=quantities)
    def replace(self, data: st.DataObject, pct: int, qty: int) -> None:
        p, orig, symbol = self.draw_order(data)
        self.amend(p, orig, symbol, pct, qty)

    def amend(self, p: str, orig: str, symbol: str, pct: int, qty: int) -> None:
        clid = f"{p}-{next(self.seq)}"
        self.placed[p].append((clid, symbol))
        (verdict,) = self.feed(ReplaceSubmitted(
            participant=p, client_order_id=clid, instrument=symbol, orig_client_order_id=orig,
            price=REFERENCE[symbol] * pct // 100, quantity=qty,
        ))  # fmt: skip
        if isinstance(verdict, ReplaceVerified):
            self.to_matching.append(ReplaceOrder(
                participant=p, client_order_id=clid, instrument=symbol, orig_client_order_id=orig,
                price=verdict.price, quantity=verdict.quantity,
            ))  # fmt: skip

    @precondition(lambda self: any(self.placed.values()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        p, orig, symbol = self.draw_order(data)
        clid = f"{p}-c{next(self.seq)}"
        self.to_matching.append(
            CancelOrder(participant=p, client_order_id=clid, instrument=symbol, orig_client_order_id=orig)
        )

    def draw_order(self, data: st.DataObject) -> tuple[str, str, str]:
        """A participant and one of its recent client ids (mostly still live), with the order's instrument."""
        p = data.draw(st.sampled_from([p for p in PARTICIPANTS if self.placed[p]]))
        clid, symbol = data.draw(st.sampled_from(self.placed[p][-4:]))
        return p, clid, symbol

    @rule(symbol=symbols)
    def close_day(self, symbol: str) -> None:
        self.to_matching.append(ExpireDayOrders(instrument=symbol))

    @rule(p=participants, amount=st.integers(-1, 60_000))
    def withdraw(self, p: str, amount: int) -> None:
        (verdict,) = self.feed(WithdrawalRequested(participant=p, amount=amount))
        if isinstance(verdict, CashWithdrawn):
            self.cash_in -= amount

    # ---------------------------------------------------------------- the services downstream

    @rule(n=st.integers(1, 4))
    def run_matching(self, n: int) -> None:
        for _ in range(min(n, len(self.to_matching))):
            for event in self.engine.decide(self.to_matching.popleft()):
                label(f"matching: {type(event).__name__}")
                assert self.feed(event) == []
                if isinstance(event, TradeExecuted):
                    self.to_settlement.append(event)

    @rule(n=st.integers(1, 4))
    def run_settlement(self, n: int) -> None:
        for _ in range(min(n, len(self.to_settlement))):
            assert self.feed(settle(self.to_settlement.popleft())) == []

    @rule()
    def wind_down(self) -> None:
        """Every order ends and every trade settles: nothing may stay frozen."""
        while self.to_matching:
            self.run_matching(len(self.to_matching))
        for symbol, book in sorted(self.engine.books.items()):
            for order in sorted(book.orders.values(), key=lambda o: o.order_id):
                self.to_matching.append(CancelOrder(
                    participant=order.participant, client_order_id=f"end-{next(self.seq)}", instrument=symbol,
                    orig_client_order_id=order.client_order_id,
                ))  # fmt: skip
        self.run_matching(len(self.to_matching))
        self.run_settlement(len(self.to_settlement))
        state = self.v.state
        assert (state.orders, state.unsettled, state.awaiting, state.replaces) == ({}, {}, {}, {})
        for p in (*PARTICIPANTS, EXCHANGE_ACCOUNT):
            _, frozen, credits = self.v.account(p)
            assert frozen == 0, p
            assert all(f == 0 for _, f in credits.values()), (p, credits)

    # ---------------------------------------------------------------- after every step

    @invariant()
    def books_add_up(self) -> None:
        self.v.check_invariants()
        accounts = [self.v.account(p) for p in (*PARTICIPANTS, EXCHANGE_ACCOUNT)]
        assert sum(cash for cash, _, _ in accounts) == self.cash_in  # fees move cash, never make it
        for symbol, issued in self.tonnes.items():
            assert sum(credits.get(symbol, (0, 0))[0] for _, _, credits in accounts) == issued

    @invariant()
    def snapshot_round_trips(self) -> None:
        assert restored(Verification(), self.v.snapshot()).digest() == self.v.digest()


Exchange.TestCase.settings = settings(max_examples=200, stateful_step_count=80, deadline=None)
test_verification_under_random_traffic = Exchange.TestCase
