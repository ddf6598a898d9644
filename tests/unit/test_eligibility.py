"""Eligibility windows on the market: sells of excluded credits are refused, settlement delivers only
eligible blocks, and sells resting when a window tightens still settle."""

from __future__ import annotations

from services.cli.registry_view import serial_states
from services.runtime.processor import restored
from services.settlement.core import Settlement
from services.verification.core import Verification
from shared.domain.codec import Event
from shared.domain.events import InstrumentListed, OrderRejected, TradeExecuted
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.ledger import (
    CashDeposited,
    CreditsIssued,
    OrderSubmitted,
    OrderVerified,
    ParticipantRegistered,
    ReplaceSubmitted,
    SerialRange,
    TradeSettled,
)
from shared.domain.reasons import Reason
from shared.domain.registry import (
    CreditsRetired,
    EligibilityChanged,
    RetirementApproved,
    RetirementKind,
    RetirementRequested,
    UnitState,
)
from shared.domain.values import OrderType, Side, TimeInForce
from tests.property.test_registry_invariants import Log
from tests.support import SEALED_KEY

CCER = "CCER-2024"
INST = Instrument(
    symbol=CCER,
    kind=InstrumentKind.OFFSET,
    standard="CCER",
    registry="CCER",
    vintage=2024,
    reference_price=7_800,
)
TIGHTEN = EligibilityChanged(instrument=CCER, min_vintage=2020)


def issued(who: str, start: int, end: int, vintage: int) -> CreditsIssued:
    return CreditsIssued(
        participant=who, instrument=CCER, serials=SerialRange(start, end), project="SF1",
        vintage=vintage, report_id="VR-1", standard="CCER",
    )  # fmt: skip


def holdings_of_mixed_vintages() -> list[Event]:
    """Seller `s` holds 1-100 (2016), 101-150 (2024) and 151-200 (2016): one merged block 1-200."""
    return [
        InstrumentListed(instrument=INST),
        *(ParticipantRegistered(participant=p, name=p, key=SEALED_KEY) for p in ("s", "b")),
        CashDeposited(participant="b", amount=100_000_000),
        issued("s", 1, 100, 2016),
        issued("s", 101, 150, 2024),
        issued("s", 151, 200, 2016),
    ]


def sell(order_id: int, qty: int, who: str = "s", side: Side = Side.SELL) -> OrderSubmitted:
    return OrderSubmitted(
        order_id=order_id, participant=who, client_order_id=f"c{order_id}", instrument=CCER, side=side,
        order_type=OrderType.LIMIT, price=7_800, quantity=qty, time_in_force=TimeInForce.GTC,
    )  # fmt: skip


def trade(trade_id: int, qty: int) -> TradeExecuted:
    return TradeExecuted(
        trade_id=trade_id, instrument=CCER, price=7_800, quantity=qty, maker_order_id=1,
        maker_participant="s", maker_client_order_id="c1", maker_side=Side.SELL, maker_leaves=0,
        maker_cum=qty, taker_order_id=2, taker_participant="b", taker_client_order_id="c2",
        taker_leaves=0, taker_cum=qty,
    )  # fmt: skip


def verification() -> Verification:
    v = Verification()
    for seq, event in enumerate([*holdings_of_mixed_vintages(), TIGHTEN], start=1):
        v.decide(seq, 0, event)
    return v


def test_a_sell_of_credits_the_window_excludes_is_refused_as_ineligible() -> None:
    """50 of 200 t are eligible: 51 t is ineligible_credits, 201 t insufficient_credits, 50 t passes."""
    v = verification()
    (no,) = v.decide(10, 0, sell(1, 51))
    assert isinstance(no, OrderRejected)
    assert (no.reason, no.text) == (
        Reason.INELIGIBLE_CREDITS,
        f"needs 51 t eligible in {CCER}, 50 t available (150 t held are outside its eligibility window)",
    )
    (short,) = v.decide(11, 0, sell(2, 201))
    assert isinstance(short, OrderRejected)
    assert short.reason is Reason.INSUFFICIENT_CREDITS
    (ok,) = v.decide(12, 0, sell(3, 50))
    assert isinstance(ok, OrderVerified)
    (more,) = v.decide(13, 0, sell(4, 1))
    assert isinstance(more, OrderRejected)
    assert more.reason is Reason.INELIGIBLE_CREDITS  # the eligible 50 t are all claimed by order 3
    v.check_invariants()


def test_retirements_freeze_any_tonnes_and_leave_the_eligible_ones_to_sells() -> None:
    """Retiring 150 t (the ineligible share) leaves the 50 eligible t sellable; one more is not."""
    v = verification()
    req = RetirementRequested(
        participant="s", client_order_id="r", instrument=CCER, quantity=150, beneficiary="b", reason="r"
    )
    (ok,) = v.decide(10, 0, req)
    assert isinstance(ok, RetirementApproved)
    assert isinstance(v.decide(11, 0, sell(1, 50))[0], OrderVerified)
    (no,) = v.decide(12, 0, sell(2, 1))
    assert isinstance(no, OrderRejected)
    assert no.reason is Reason.INSUFFICIENT_CREDITS
    v.check_invariants()


def test_a_replace_adding_quantity_needs_eligible_tonnes_too() -> None:
    """Raising a 40 t sell to 60 t asks for 20 t more, of which only 10 t are eligible."""
    v = verification()
    assert isinstance(v.decide(10, 0, sell(1, 40))[0], OrderVerified)
    amend = ReplaceSubmitted(
        participant="s", client_order_id="c9", instrument=CCER, orig_client_order_id="c1", price=7_800,
        quantity=60,
    )  # fmt: skip
    (no,) = v.decide(11, 0, amend)
    assert isinstance(no, OrderRejected)
    assert (no.command, no.reason) == ("replace_order", Reason.INELIGIBLE_CREDITS)


def settlement() -> Settlement:
    s = Settlement()
    for seq, event in enumerate([*holdings_of_mixed_vintages(), TIGHTEN], start=1):
        s.decide(seq, 0, event)
    return s


def test_settlement_delivers_eligible_blocks_and_leaves_the_others_in_order() -> None:
    """30 t come from 101-130 (2024); 1-100 and 151-200 stay where they were in the queue."""
    s = settlement()
    (done,) = s.decide(10, 0, trade(1, 30))
    assert isinstance(done, TradeSettled)
    assert done.serials == (SerialRange(101, 130),)
    assert s.holdings("s") == {CCER: [SerialRange(1, 100), SerialRange(131, 200)]}
    assert s.holdings("b") == {CCER: [SerialRange(101, 130)]}
    s.check_invariants()
    assert restored(Settlement(), s.snapshot()) == s


def test_retirement_takes_ineligible_blocks_first() -> None:
    """Retiring 120 t takes 1-100 and 151-170 (2016) and keeps 101-150 (2024) for the market."""
    s = settlement()
    ok = RetirementApproved(
        participant="s", client_order_id="r", instrument=CCER, quantity=120, beneficiary="b", reason="r",
        kind=RetirementKind.RETIRE, request_seq=9,
    )  # fmt: skip
    (done,) = s.decide(10, 0, ok)
    assert isinstance(done, CreditsRetired)
    assert done.serials == (SerialRange(1, 100), SerialRange(151, 170))
    assert s.holdings("s") == {CCER: [SerialRange(101, 150), SerialRange(171, 200)]}
    s.check_invariants()


def test_a_sell_resting_when_the_window_tightens_still_settles() -> None:
    """A 120 t sell verified under the open window rests; the window then excludes 2016. Its fill takes
    the 50 eligible t first and the oldest ineligible ones for the rest (grandfathered), new sells are
    refused, and every serial stays in exactly one state throughout."""
    log = Log()
    for event in holdings_of_mixed_vintages():
        log.append("intake", event)
    log.append("intake", sell(1, 120))
    assert serial_states(log.state)  # the frozen 120 t are the oldest eligible: 1-120 before the change
    log.append("intake", TIGHTEN)
    frozen = [(p.start, p.end) for p in serial_states(log.state) if p.state is UnitState.FROZEN]
    assert frozen == [(101, 150), (1, 70)]  # now the eligible 50 t first, then the oldest ineligible
    log.append("intake", sell(2, 1))
    assert any(isinstance(e, OrderRejected) and e.reason is Reason.INELIGIBLE_CREDITS for _, e in log.entries)
    log.append("intake", sell(3, 120, who="b", side=Side.BUY))
    (settled,) = [e for _, e in log.entries if isinstance(e, TradeSettled)]
    assert settled.serials == (SerialRange(101, 150), SerialRange(1, 70))
    assert log.state.settlement.holdings("s") == {CCER: [SerialRange(71, 100), SerialRange(151, 200)]}
    assert log.state.verification.account("s")[2][CCER] == (80, 0)
    serial_states(log.state)
    log.state.settlement.check_invariants()
    log.state.verification.check_invariants()
