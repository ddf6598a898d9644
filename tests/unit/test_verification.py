"""Verification core: reservations on entry, and their release as orders end and trades settle."""

from __future__ import annotations

import pytest

from services.runtime.processor import Processor
from services.verification.core import Verification
from shared.domain.commands import ExpireDayOrders
from shared.domain.events import OrderRejected
from shared.domain.ledger import (
    EXCHANGE_ACCOUNT,
    CashDeposited,
    OrderSubmitted,
    OrderVerified,
    ReplaceVerified,
)
from shared.domain.reasons import Reason
from shared.domain.values import OrderType, Side, TimeInForce
from tests.unit.verification_support import CCER, SZEA, desk, rejected

# ---------------------------------------------------------------- reservations on entry


def test_verification_is_a_processor_reading_requests_and_their_outcomes() -> None:
    """It names itself and reads requests, operator facts, matching outcomes and settlements, not its own."""
    processor: Processor = Verification()
    assert processor.name == "verification"
    assert {"OrderSubmitted", "ReplaceSubmitted", "WithdrawalRequested", "TradeSettled"} <= processor.inputs
    assert {
        "OrderAccepted",
        "OrderRejected",
        "TradeExecuted",
        "OrderCancelled",
        "OrderExpired",
    } <= processor.inputs
    assert not {"OrderVerified", "ReplaceVerified", "CashWithdrawn", "CancelSubmitted"} & processor.inputs


def test_buy_freezes_limit_plus_highest_fee_for_every_tonne() -> None:
    """10 t at 58.00 freezes 10 x (5800 + fee(5800) = 3) = 58 030 fen and answers OrderVerified."""
    d = desk()
    verdict = d.submit("alice", "buy", 10, 5800)
    assert verdict == OrderVerified(
        order_id=1, participant="alice", client_order_id="alice-1", instrument=SZEA, side=Side.BUY,
        order_type=OrderType.LIMIT, price=5800, quantity=10, time_in_force=TimeInForce.GTC,
        reserved_cash=58_030, reserved_qty=0,
    )  # fmt: skip
    assert d.cash("alice") == (100_000, 58_030)
    d.v.check_invariants()


def test_fee_reserve_rounded_per_tonne_covers_ten_one_tonne_fills() -> None:
    """Ten 1 t taker fills pay 10 x 3 fen of fee where fee(58 000) is 29: the per-tonne reserve pays it."""
    d = desk()
    for _ in range(10):
        d.submit("bob", "sell", 1, 5800)
    d.feed(CashDeposited(participant="erin", amount=58_029))
    assert rejected(d.submit("erin", "buy", 10, 5800)) == (
        "new_order", Reason.INSUFFICIENT_FUNDS, "needs 58030 fen, 58029 fen available", 11,
    )  # fmt: skip
    d.feed(CashDeposited(participant="erin", amount=1))
    assert isinstance(d.submit("erin", "buy", 10, 5800), OrderVerified)
    assert len(d.trades) == 10
    d.settle_all()
    assert d.cash("erin") == (0, 0)
    assert d.credits("erin") == (10, 0)
    assert d.cash("bob") == (10 * (5800 - 2), 0)
    assert d.cash(EXCHANGE_ACCOUNT) == (10 * 3 + 10 * 2, 0)
    d.v.check_invariants()


def test_market_buy_freezes_at_the_band_high_and_its_expiry_releases_it() -> None:
    """A market buy of 5 t freezes 5 x (6380 + 4); with no sellers it expires and frees everything."""
    d = desk()
    verdict = d.feed(OrderSubmitted(
        order_id=1, participant="alice", client_order_id="m1", instrument=SZEA, side=Side.BUY,
        order_type=OrderType.MARKET, price=0, quantity=5, time_in_force=TimeInForce.IOC,
    ))  # fmt: skip
    assert isinstance(verdict[0], OrderVerified)
    assert verdict[0].reserved_cash == 31_920
    assert d.cash("alice") == (100_000, 31_920)
    assert [type(e).__name__ for e in d.match(verdict[0])] == ["OrderAccepted", "OrderExpired"]
    assert d.cash("alice") == (100_000, 0)
    d.v.check_invariants()


def test_sell_freezes_its_tonnes() -> None:
    """A sell of 20 t freezes 20 of the 50 t held and no cash."""
    d = desk()
    verdict = d.submit("bob", "sell", 20, 5800)
    assert isinstance(verdict, OrderVerified)
    assert (verdict.reserved_cash, verdict.reserved_qty) == (0, 20)
    assert d.credits("bob") == (50, 20)
    assert d.cash("bob") == (0, 0)


def test_buy_beyond_available_cash_is_rejected_and_freezes_nothing() -> None:
    """20 t at 58.00 needs 116 060 fen; alice has 100 000, so INSUFFICIENT_FUNDS and nothing frozen."""
    d = desk()
    assert d.submit("alice", "buy", 20, 5800) == OrderRejected(
        participant="alice", client_order_id="alice-1", instrument=SZEA, command="new_order",
        reason=Reason.INSUFFICIENT_FUNDS, text="needs 116060 fen, 100000 fen available", order_id=1,
    )  # fmt: skip
    assert d.cash("alice") == (100_000, 0)
    d.submit("alice", "buy", 10, 5800)
    assert rejected(d.submit("alice", "buy", 8, 5800)) == (
        "new_order", Reason.INSUFFICIENT_FUNDS, "needs 46424 fen, 41970 fen available", 3,
    )  # fmt: skip


def test_sell_beyond_available_credits_is_rejected() -> None:
    """Frozen tonnes are not available: after freezing 20 of 50, a sell of 31 fails and one of 30 passes."""
    d = desk()
    assert rejected(d.submit("bob", "sell", 51, 5800)) == (
        "new_order", Reason.INSUFFICIENT_CREDITS, "needs 51 t, 50 t available", 1,
    )  # fmt: skip
    d.submit("bob", "sell", 20, 5800)
    assert rejected(d.submit("bob", "sell", 31, 5800))[1:3] == (
        Reason.INSUFFICIENT_CREDITS, "needs 31 t, 30 t available",
    )  # fmt: skip
    assert isinstance(d.submit("bob", "sell", 30, 5800), OrderVerified)
    assert d.credits("bob") == (50, 50)
    assert rejected(d.submit("carol", "sell", 1, 5800))[1] is Reason.INSUFFICIENT_CREDITS


@pytest.mark.parametrize(
    ("participant", "symbol", "reason", "text"),
    [
        ("zoe", SZEA, Reason.UNKNOWN_PARTICIPANT, "participant 'zoe' is not registered"),
        ("alice", "VCS-9", Reason.UNKNOWN_INSTRUMENT, "no instrument 'VCS-9'"),
        ("dave", SZEA, Reason.NOT_PERMITTED, "dave may not trade SZEA-2025"),
        ("dave", CCER, Reason.INSUFFICIENT_FUNDS, "needs 1001 fen, 0 fen available"),
    ],
)
def test_who_may_trade_what(participant: str, symbol: str, reason: Reason, text: str) -> None:
    """Unregistered participants, unlisted instruments and instruments outside the participant's list fail."""
    d = desk()
    assert rejected(d.submit(participant, "buy", 1, 1_000, symbol=symbol)) == ("new_order", reason, text, 1)
    d.v.check_invariants()


def test_nonsense_quantity_or_price_passes_unreserved_for_matching_to_reject() -> None:
    """Zero quantity or a negative price reserve nothing (never a negative amount); matching rejects them."""
    d = desk()
    for qty, price, reason in (
        (0, 5800, Reason.INVALID_QUANTITY),
        (-5, 5800, Reason.INVALID_QUANTITY),
        (10, -5, Reason.INVALID_PRICE),
        (10, 0, Reason.INVALID_PRICE),
    ):
        verdict = d.submit("alice", "buy", qty, price, hold=True)
        assert isinstance(verdict, OrderVerified)
        assert verdict.reserved_cash == 0
        (answer,) = d.match(verdict)
        assert rejected(answer)[1] is reason
        assert d.cash("alice") == (100_000, 0)
    verdict = d.submit("bob", "sell", -3, 5800)
    assert isinstance(verdict, OrderVerified)
    assert verdict.reserved_qty == 0
    assert d.credits("bob") == (50, 0)
    d.v.check_invariants()


# ---------------------------------------------------------------- releases when orders end


def test_matching_rejection_of_a_new_order_releases_its_reservation() -> None:
    """A buy at 70.00 freezes 70 040 fen; matching rejects it outside the band and the cash comes back."""
    d = desk()
    verdict = d.submit("alice", "buy", 10, 7000, hold=True)
    assert d.cash("alice") == (100_000, 70_040)
    (answer,) = d.match(verdict)
    assert rejected(answer)[1] is Reason.OUTSIDE_PRICE_BAND
    assert d.cash("alice") == (100_000, 0)
    d.v.check_invariants()


def test_duplicate_client_id_rejected_by_matching_releases_the_newcomer_only() -> None:
    """Matching rejects a reused client id with order id 0: the newcomer's freeze goes, the original stays."""
    d = desk()
    d.submit("alice", "buy", 2, 5800, clid="dup")
    verdict = d.submit("alice", "buy", 3, 5800, clid="dup", hold=True)
    assert d.cash("alice") == (100_000, 11_606 + 17_409)
    (answer,) = d.match(verdict)
    assert rejected(answer) == (
        "new_order", Reason.DUPLICATE_CLIENT_ORDER_ID, "client_order_id 'dup' was already used", 0,
    )  # fmt: skip
    assert d.cash("alice") == (100_000, 11_606)
    replace = d.replace("alice", "dup", 5800, 4)
    assert isinstance(replace, ReplaceVerified)
    assert (replace.order_id, replace.extra_cash) == (1, 11_606)
    d.v.check_invariants()


def test_cancel_releases_what_the_order_still_holds() -> None:
    """After 3 of 10 t fill and settle, a cancel frees the other 7 t worth; a cancelled sell frees tonnes."""
    d = desk()
    d.submit("alice", "buy", 10, 5800)
    d.submit("bob", "sell", 3, 5800)
    d.settle_all()
    assert d.cash("alice") == (100_000 - 17_400 - 4, 58_030 - 3 * 5_803)
    d.cancel("alice", "alice-1")
    assert d.cash("alice") == (82_596, 0)
    d.submit("sam", "sell", 10, 6000, clid="sam-s")
    assert d.credits("sam") == (50, 10)
    d.cancel("sam", "sam-s")
    assert d.credits("sam") == (50, 0)
    d.v.check_invariants()


def test_expiry_releases_the_rest_but_executed_fills_wait_for_settlement() -> None:
    """An IOC buy of 10 t fills 4 and expires 6: the 6 t are freed at once, the 4 t when the trade settles."""
    d = desk()
    d.submit("bob", "sell", 4, 5800)
    answers = d.match(d.submit("alice", "buy", 10, 5800, tif="IOC", hold=True))
    assert [type(e).__name__ for e in answers] == ["OrderAccepted", "TradeExecuted", "OrderExpired"]
    assert d.cash("alice") == (100_000, 4 * 5_803)
    d.settle_all()
    assert d.cash("alice") == (100_000 - 23_200 - 12, 0)
    d.submit("carol", "buy", 5, 5800, tif="DAY")
    assert d.cash("carol") == (100_000, 29_015)
    assert d.feed(*d.engine.decide(ExpireDayOrders(instrument=SZEA))) == []
    assert d.cash("carol") == (100_000, 0)
    d.v.check_invariants()


def test_partial_fills_release_at_settlement_and_the_last_fill_releases_the_rest() -> None:
    """A resting 10 t buy fills 4 then 6: each settlement frees its share and moves cash and credits."""
    d = desk()
    d.submit("alice", "buy", 10, 5800)
    d.submit("bob", "sell", 4, 5800)
    assert d.cash("alice") == (100_000, 58_030)  # executed, not settled: nothing released yet
    assert d.credits("bob") == (50, 4)
    d.settle_all()
    assert d.cash("alice") == (100_000 - 23_200 - 5, 58_030 - 23_212)
    assert d.cash("bob") == (23_200 - 12, 0)
    assert d.credits("bob") == (46, 0)
    assert d.credits("alice") == (4, 0)
    d.submit("bob", "sell", 6, 5800)
    d.settle_all()
    assert d.cash("alice") == (76_795 - 34_800 - 7, 0)
    assert d.credits("alice") == (10, 0)
    assert d.cash(EXCHANGE_ACCOUNT) == (5 + 12 + 7 + 18, 0)
    d.v.check_invariants()


def test_a_fill_better_than_the_limit_releases_the_whole_reserve_when_done() -> None:
    """A 10 t buy at 60.00 freezes 60 030; it fills at 58.00 and settling frees all of it."""
    d = desk()
    d.submit("bob", "sell", 10, 5800)
    d.submit("alice", "buy", 10, 6000)
    assert d.cash("alice") == (100_000, 60_030)
    d.settle_all()
    assert d.cash("alice") == (100_000 - 58_000 - 29, 0)
    d.v.check_invariants()
