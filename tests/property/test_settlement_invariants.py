"""Random settlement sessions against a naive serial-by-serial model, invariants checked every step."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import event as label
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from services.runtime.processor import restored
from services.settlement.core import Settlement, SettlementInvariantError
from shared.domain.codec import Event, event_type
from shared.domain.events import TradeExecuted
from shared.domain.ledger import (
    EXCHANGE_ACCOUNT,
    CashDeposited,
    CashWithdrawn,
    CreditsIssued,
    ParticipantRegistered,
    SerialRange,
    TradeSettled,
)
from shared.domain.values import Side
from tests.support import SEALED_KEY

PARTICIPANTS = ("p0", "p1", "p2", "p3")
INSTRUMENTS = ("SZEA-2025", "CCER-2024")
MAX_SERIAL = 2_000

participants = st.sampled_from(PARTICIPANTS)
instruments = st.sampled_from(INSTRUMENTS)


def fee_up(notional: int, bps: int) -> int:
    """The fee schedule written out independently of shared.domain.fees: ceil(notional * bps / 10^4)."""
    return (notional * bps + 9_999) // 10_000


def expand(blocks: list[SerialRange]) -> list[int]:
    return [serial for block in blocks for serial in range(block.start, block.end + 1)]


class SettlementSession(RuleBasedStateMachine):
    """The model keeps each holding as a plain list of serials, oldest first, and cash per account."""

    def __init__(self) -> None:
        super().__init__()
        self.core = Settlement()
        self.seq = 0
        self.trade_id = 0
        self.cash = dict.fromkeys((*PARTICIPANTS, EXCHANGE_ACCOUNT), 0)
        self.held: dict[tuple[str, str], list[int]] = {}
        self.issued: dict[str, set[int]] = {i: set() for i in INSTRUMENTS}
        for p in PARTICIPANTS:
            self.feed(ParticipantRegistered(participant=p, name=p, key=SEALED_KEY))

    def feed(self, event: Event) -> list[Event]:
        self.seq += 1
        answers = self.core.decide(self.seq, self.seq, event)
        assert not answers or event_type(event) in self.core.answers_to  # it must be woken for it
        return answers

    @initialize(amounts=st.lists(st.integers(0, 5_000_000), min_size=4, max_size=4))
    def opening_deposits(self, amounts: list[int]) -> None:
        for who, amount in zip(PARTICIPANTS, amounts, strict=True):
            self.deposit(who=who, amount=amount)

    @rule(who=participants, amount=st.integers(0, 2_000_000))
    def deposit(self, who: str, amount: int) -> None:
        self.feed(CashDeposited(participant=who, amount=amount))
        self.cash[who] += amount

    @rule(who=participants, percent=st.integers(0, 100))
    def withdraw(self, who: str, percent: int) -> None:
        amount = self.cash[who] * percent // 100
        self.feed(CashWithdrawn(participant=who, amount=amount))
        self.cash[who] -= amount

    @rule(who=participants, instrument=instruments, start=st.integers(0, MAX_SERIAL), size=st.integers(1, 40))
    def issue(self, who: str, instrument: str, start: int, size: int) -> None:
        serials = set(range(start, start + size))
        event = CreditsIssued(
            participant=who, instrument=instrument, serials=SerialRange(start, start + size - 1)
        )
        if serials & self.issued[instrument]:
            label("issuance refused")
            before = self.core.digest()
            with pytest.raises(SettlementInvariantError, match="overlap"):
                self.feed(event)
            assert self.core.digest() == before
            return
        self.feed(event)
        self.issued[instrument] |= serials
        self.held.setdefault((who, instrument), []).extend(range(start, start + size))

    @precondition(lambda self: any(self.held.values()))
    @rule(
        pick=st.integers(0, 10**6), buyer=participants, maker_side=st.sampled_from(Side),
        fill=st.integers(1, 110), spend=st.integers(1, 101),
    )  # fmt: skip
    def trade(self, *, pick: int, buyer: str, maker_side: Side, fill: int, spend: int) -> None:
        """A holder sells `fill` % of its stock (at least 1 t) at a price spending about `spend` % of
        the buyer's cash; overselling, or a buyer left short by the fee or the price, is refused."""
        holdings = sorted(key for key, serials in self.held.items() if serials)
        seller, instrument = holdings[pick % len(holdings)]
        # Fees follow the role, not the name: in a self-trade the participant pays both.
        maker_buys = maker_side is Side.BUY
        maker, taker = (buyer, seller) if maker_buys else (seller, buyer)
        stock = self.held[(seller, instrument)]
        qty = max(1, -(-len(stock) * fill // 100))
        price = max(1, self.cash[buyer] // qty * spend // 100)
        notional = price * qty
        buyer_fee = fee_up(notional, 2 if maker_buys else 5)
        seller_fee = fee_up(notional, 5 if maker_buys else 2)
        self.trade_id += 1
        event = TradeExecuted(
            trade_id=self.trade_id, instrument=instrument, price=price, quantity=qty,
            maker_order_id=1, maker_participant=maker, maker_client_order_id="m", maker_side=maker_side,
            maker_leaves=0, maker_cum=qty, taker_order_id=2, taker_participant=taker,
            taker_client_order_id="t", taker_leaves=0, taker_cum=qty,
        )  # fmt: skip
        if len(stock) < qty or self.cash[buyer] < notional + buyer_fee:
            label("trade refused: oversold" if len(stock) < qty else "trade refused: short cash")
            before = self.core.digest()
            with pytest.raises(SettlementInvariantError, match="lacks"):
                self.feed(event)
            assert self.core.digest() == before
            return
        label("trade settled, split" if len(stock) > qty else "trade settled, whole")
        (settled,) = self.feed(event)
        assert isinstance(settled, TradeSettled)
        delivered, self.held[(seller, instrument)] = stock[:qty], stock[qty:]
        assert expand(list(settled.serials)) == delivered
        self.held.setdefault((buyer, instrument), []).extend(delivered)
        self.cash[buyer] -= notional + buyer_fee
        self.cash[seller] += notional - seller_fee
        self.cash[EXCHANGE_ACCOUNT] += buyer_fee + seller_fee

    @rule()
    def restart_from_snapshot(self) -> None:
        copy = restored(Settlement(), self.core.snapshot())
        assert copy.digest() == self.core.digest()
        self.core = copy

    @invariant()
    def invariants_hold(self) -> None:
        self.core.check_invariants()

    @invariant()
    def matches_the_model(self) -> None:
        assert self.core.balances() == self.cash
        for p in PARTICIPANTS:
            held = self.core.holdings(p)
            for instrument in INSTRUMENTS:
                assert expand(held.get(instrument, [])) == self.held.get((p, instrument), [])

    @invariant()
    def every_issued_serial_has_exactly_one_holder(self) -> None:
        for instrument in INSTRUMENTS:
            owners: dict[int, list[str]] = {}
            for p in (*PARTICIPANTS, EXCHANGE_ACCOUNT):
                for serial in expand(self.core.holdings(p).get(instrument, [])):
                    owners.setdefault(serial, []).append(p)
            assert owners.keys() == self.issued[instrument]
            assert all(len(holders) == 1 for holders in owners.values())


SettlementSession.TestCase.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)
test_settlement_session = SettlementSession.TestCase
