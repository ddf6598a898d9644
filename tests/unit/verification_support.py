"""Builders for verification scenarios: a core wired to a real matching engine, settlement by hand."""

from __future__ import annotations

import itertools

from services.matching.engine import MatchingEngine
from services.verification.core import Verification
from shared.domain.codec import Event
from shared.domain.commands import CancelOrder, ListInstrument, PlaceOrder, ReplaceOrder
from shared.domain.events import InstrumentListed, OrderRejected, TradeExecuted
from shared.domain.fees import MAKER_FEE_BPS, TAKER_FEE_BPS, fee
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.ledger import (
    CashDeposited,
    CreditsIssued,
    OrderSubmitted,
    OrderVerified,
    ParticipantRegistered,
    ReplaceSubmitted,
    ReplaceVerified,
    SerialRange,
    TradeSettled,
    WithdrawalRejected,
)
from shared.domain.reasons import Reason
from shared.domain.values import OrderType, Side, TimeInForce
from tests.support import SEALED_KEY

__all__ = ["CCER", "SZEA", "Desk", "desk", "instrument", "rejected", "settle"]

SZEA = "SZEA-2025"
CCER = "CCER-2024"


def instrument(symbol: str = SZEA, reference: int = 5800) -> Instrument:
    """Reference 58.00 CNY, tick 1 fen, lot 1 t, band +-10 %: 52.20 .. 63.80."""
    return Instrument(
        symbol=symbol, kind=InstrumentKind.ALLOWANCE, standard="SZEA", registry="SZ", vintage=2025,
        reference_price=reference,
    )  # fmt: skip


def settle(trade: TradeExecuted) -> TradeSettled:
    """What settlement answers: the maker pays the maker fee, the taker the taker fee."""
    maker_buys = trade.maker_side is Side.BUY
    buyer, seller = trade.maker_participant, trade.taker_participant
    buy_id, sell_id = trade.maker_order_id, trade.taker_order_id
    if not maker_buys:
        buyer, seller, buy_id, sell_id = seller, buyer, sell_id, buy_id
    cash = trade.price * trade.quantity
    return TradeSettled(
        trade_id=trade.trade_id, instrument=trade.instrument, price=trade.price, quantity=trade.quantity,
        buyer=buyer, seller=seller, buy_order_id=buy_id, sell_order_id=sell_id, cash=cash,
        buyer_fee=fee(cash, MAKER_FEE_BPS if maker_buys else TAKER_FEE_BPS),
        seller_fee=fee(cash, TAKER_FEE_BPS if maker_buys else MAKER_FEE_BPS), serials=(),
    )  # fmt: skip


class Desk:
    """Verification wired to a real matching engine; trades settle only when a test says so.

    Client order ids are `<participant>-<n>`; order ids count from 1 as intake assigns them.
    """

    def __init__(self, *instruments: Instrument) -> None:
        self.v = Verification()
        self.engine = MatchingEngine()
        self.seq = itertools.count(1)
        self.order_ids = itertools.count(1)
        self.clids = itertools.count(1)
        self.trades: list[TradeExecuted] = []
        for inst in instruments or (instrument(),):
            self.engine.decide(ListInstrument(instrument=inst))
            self.feed(InstrumentListed(instrument=inst))

    def feed(self, *events: Event) -> list[Event]:
        """Verification alone: what it answers to each event."""
        out: list[Event] = []
        for event in events:
            seq = next(self.seq)
            out.extend(self.v.decide(seq, seq * 1_000, event))
        return out

    def match(self, verdict: Event) -> list[Event]:
        """Hand a verdict to matching and feed matching's answers back to verification."""
        if isinstance(verdict, OrderVerified):
            answers = self.engine.decide(PlaceOrder(
                order_id=verdict.order_id, participant=verdict.participant,
                client_order_id=verdict.client_order_id, instrument=verdict.instrument, side=verdict.side,
                order_type=verdict.order_type, price=verdict.price, quantity=verdict.quantity,
                time_in_force=verdict.time_in_force,
            ))  # fmt: skip
        elif isinstance(verdict, ReplaceVerified):
            answers = self.engine.decide(ReplaceOrder(
                participant=verdict.participant, client_order_id=verdict.client_order_id,
                instrument=verdict.instrument, orig_client_order_id=verdict.orig_client_order_id,
                price=verdict.price, quantity=verdict.quantity,
            ))  # fmt: skip
        else:
            return []
        self.trades.extend(e for e in answers if isinstance(e, TradeExecuted))
        assert self.feed(*answers) == []
        return list(answers)

    def submit(
        self,
        participant: str,
        side: str,
        qty: int,
        price: int = 0,
        *,
        kind: str = "limit",
        tif: str = "GTC",
        clid: str | None = None,
        symbol: str = SZEA,
        hold: bool = False,
    ) -> Event:
        """A new order through verification (and on to matching unless `hold`); returns the verdict."""
        (verdict,) = self.feed(OrderSubmitted(
            order_id=next(self.order_ids), participant=participant,
            client_order_id=clid or f"{participant}-{next(self.clids)}", instrument=symbol, side=Side(side),
            order_type=OrderType(kind), price=price, quantity=qty, time_in_force=TimeInForce(tif),
        ))  # fmt: skip
        if not hold:
            self.match(verdict)
        return verdict

    def replace(
        self,
        participant: str,
        orig: str,
        price: int,
        qty: int,
        *,
        clid: str | None = None,
        hold: bool = False,
    ) -> Event:
        (verdict,) = self.feed(ReplaceSubmitted(
            participant=participant, client_order_id=clid or f"{participant}-r{next(self.clids)}",
            instrument=SZEA, orig_client_order_id=orig, price=price, quantity=qty,
        ))  # fmt: skip
        if not hold:
            self.match(verdict)
        return verdict

    def settle_all(self) -> None:
        self.feed(*(settle(t) for t in self.trades))
        self.trades.clear()

    def cash(self, participant: str) -> tuple[int, int]:
        cash, frozen, _ = self.v.account(participant)
        return cash, frozen

    def credits(self, participant: str, symbol: str = SZEA) -> tuple[int, int]:
        return self.v.account(participant)[2].get(symbol, (0, 0))

    def cancel(self, participant: str, orig: str) -> list[Event]:
        answers = self.engine.decide(CancelOrder(
            participant=participant, client_order_id=f"{participant}-c{next(self.clids)}", instrument=SZEA,
            orig_client_order_id=orig,
        ))  # fmt: skip
        assert self.feed(*answers) == []
        return list(answers)


def desk() -> Desk:
    """alice and carol hold 100 000 fen; bob holds 50 t of SZEA, sam 50 t; erin has nothing; dave may
    trade CCER only."""
    d = Desk(instrument(), instrument(CCER, 1_000))
    d.feed(
        *(
            ParticipantRegistered(participant=p, name=p, key=SEALED_KEY)
            for p in ("alice", "bob", "carol", "sam", "erin")
        ),
        ParticipantRegistered(participant="dave", name="dave", key=SEALED_KEY, instruments=(CCER,)),
        CashDeposited(participant="alice", amount=100_000),
        CashDeposited(participant="carol", amount=100_000),
        CreditsIssued(participant="bob", instrument=SZEA, serials=SerialRange(1, 50)),
        CreditsIssued(participant="sam", instrument=SZEA, serials=SerialRange(101, 150)),
    )
    return d


def rejected(event: Event) -> tuple[str, Reason, str, int]:
    assert isinstance(event, OrderRejected | WithdrawalRejected), event
    if isinstance(event, WithdrawalRejected):
        return "withdrawal", event.reason, event.text, 0
    return event.command, event.reason, event.text, event.order_id
