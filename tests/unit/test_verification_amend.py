"""Verification core: amendments, withdrawals, snapshots and the invariant check."""

from __future__ import annotations

import pytest

from services.runtime.processor import restored
from services.verification.core import Verification
from services.verification.state import InvariantError
from shared.domain.codec import Event
from shared.domain.events import OrderRejected
from shared.domain.ledger import (
    CashDeposited,
    CashWithdrawn,
    OrderSubmitted,
    ReplaceSubmitted,
    ReplaceVerified,
    WithdrawalRejected,
    WithdrawalRequested,
)
from shared.domain.reasons import Reason
from shared.domain.values import OrderType, Side, TimeInForce
from tests.unit.verification_support import SZEA, desk, rejected, settle

# ---------------------------------------------------------------- amendments


def test_replace_freezes_the_extra_and_a_matching_rejection_releases_it() -> None:
    """10 t at 58.00 -> 12 t at 59.00 freezes 12 806 more; a later amendment outside the band is rejected by
    matching and the 13 212 it froze come back."""
    d = desk()
    d.feed(CashDeposited(participant="alice", amount=100_000))
    d.submit("alice", "buy", 10, 5800)
    up = d.replace("alice", "alice-1", 5900, 12, clid="alice-a")
    assert up == ReplaceVerified(
        participant="alice", client_order_id="alice-a", instrument=SZEA, orig_client_order_id="alice-1",
        order_id=1, price=5900, quantity=12, extra_cash=12_806, extra_qty=0,
    )  # fmt: skip
    assert d.cash("alice") == (200_000, 70_836)
    bad = d.replace("alice", "alice-a", 7000, 12, clid="alice-b", hold=True)
    assert isinstance(bad, ReplaceVerified)
    assert bad.extra_cash == 13_212
    assert d.cash("alice") == (200_000, 84_048)
    (answer,) = d.match(bad)
    assert rejected(answer)[1::2] == (Reason.OUTSIDE_PRICE_BAND, 1)
    assert d.cash("alice") == (200_000, 70_836)
    d.v.check_invariants()


def test_replace_never_shrinks_the_reserve_the_order_end_frees_it() -> None:
    """Amending 10 t down to 5 t freezes nothing more and frees nothing; the fill of the 5 t frees it all."""
    d = desk()
    d.submit("alice", "buy", 10, 5800)
    down = d.replace("alice", "alice-1", 5800, 5)
    assert isinstance(down, ReplaceVerified)
    assert down.extra_cash == 0
    assert d.cash("alice") == (100_000, 58_030)
    d.submit("bob", "sell", 5, 5800)
    d.settle_all()
    assert d.cash("alice") == (100_000 - 29_000 - 6, 0)
    d.v.check_invariants()


def test_replace_of_an_unknown_order_or_beyond_means_is_rejected() -> None:
    """Unknown (or renamed) orders get UNKNOWN_ORDER; an amendment needing more than is free is refused."""
    d = desk()
    assert d.replace("alice", "alice-9", 5800, 5, clid="x1") == OrderRejected(
        participant="alice", client_order_id="x1", instrument=SZEA, command="replace_order",
        reason=Reason.UNKNOWN_ORDER, text="no open order 'alice-9' on SZEA-2025", order_id=0,
    )  # fmt: skip
    d.submit("alice", "buy", 10, 5800)
    assert rejected(d.replace("alice", "alice-1", 5800, 18)) == (
        "replace_order", Reason.INSUFFICIENT_FUNDS, "needs 46424 fen, 41970 fen available", 1,
    )  # fmt: skip
    d.replace("alice", "alice-1", 5800, 10, clid="alice-new")
    assert rejected(d.replace("alice", "alice-1", 5800, 10))[1] is Reason.UNKNOWN_ORDER
    assert isinstance(d.replace("alice", "alice-new", 5800, 11), ReplaceVerified)
    d.submit("bob", "sell", 10, 6000, clid="bob-s")
    assert rejected(d.replace("bob", "bob-s", 6000, 61))[1:] == (
        Reason.INSUFFICIENT_CREDITS, "needs 51 t, 40 t available", 2,
    )  # fmt: skip
    sell_up = d.replace("bob", "bob-s", 6000, 30)
    assert isinstance(sell_up, ReplaceVerified)
    assert (sell_up.extra_cash, sell_up.extra_qty) == (0, 20)
    assert d.credits("bob") == (50, 30)
    d.v.check_invariants()


def test_fill_at_the_old_price_while_an_amendment_is_in_flight_stays_covered() -> None:
    """3 t at 60.00 amended to 6 t at 53.00 while a 2 t sell is verified but not yet matched: it fills at
    60.00 before matching applies the amendment, so the extra covers the new leaves at the dearer unit."""
    d = desk()
    d.submit("alice", "buy", 3, 6000)
    sell = d.submit("bob", "sell", 2, 6000, hold=True)  # ahead of the amendment in the log
    amend = d.replace("alice", "alice-1", 5300, 6, hold=True)
    assert isinstance(amend, ReplaceVerified)
    assert amend.extra_cash == 6 * 6_003 - 3 * 6_003
    d.match(sell)
    assert [type(e).__name__ for e in d.match(amend)] == ["OrderReplaced"]
    d.v.check_invariants()  # includes: what the order holds covers 4 t x 5303
    assert d.cash("alice") == (100_000, 6 * 6_003)
    d.settle_all()
    assert d.cash("alice") == (100_000 - 12_003, 4 * 6_003)
    d.submit("sam", "sell", 4, 5300)
    d.settle_all()
    assert d.cash("alice") == (100_000 - 12_003 - 21_205, 0)
    d.v.check_invariants()


# ---------------------------------------------------------------- cash movements


def test_withdrawal_is_paid_from_available_cash_only() -> None:
    """Frozen cash cannot leave: 41 970 of 100 000 is free while 58 030 backs an order."""
    d = desk()
    d.submit("alice", "buy", 10, 5800)
    (no,) = d.feed(WithdrawalRequested(participant="alice", amount=50_000))
    assert no == WithdrawalRejected(
        participant="alice", amount=50_000, reason=Reason.INSUFFICIENT_FUNDS,
        text="needs 50000 fen, 41970 fen available",
    )  # fmt: skip
    assert d.feed(WithdrawalRequested(participant="alice", amount=41_970)) == [
        CashWithdrawn(participant="alice", amount=41_970)
    ]
    assert d.cash("alice") == (58_030, 58_030)
    assert rejected(d.feed(WithdrawalRequested(participant="alice", amount=0))[0])[1:3] == (
        Reason.MALFORMED, "withdrawal of 0 fen must be positive",
    )  # fmt: skip
    assert rejected(d.feed(WithdrawalRequested(participant="zoe", amount=1))[0])[2] == (
        "needs 1 fen, 0 fen available"
    )
    d.v.check_invariants()


# ---------------------------------------------------------------- snapshots and invariants


def test_snapshot_restore_round_trip_keeps_the_state_and_its_future() -> None:
    """A restored core has the same digest, and the same continuation gives it the same answers."""
    d = desk()
    d.submit("alice", "buy", 10, 5800)
    d.submit("bob", "sell", 4, 5800)  # executed, not yet settled
    d.replace("alice", "alice-1", 5900, 12, hold=True)  # amendment in flight
    copy = restored(Verification(), d.v.snapshot())
    assert copy.digest() == d.v.digest()
    assert copy.snapshot() == d.v.snapshot()
    later: list[Event] = [settle(t) for t in d.trades]
    later += [
        ReplaceSubmitted(
            participant="alice",
            client_order_id="z",
            instrument=SZEA,
            orig_client_order_id="alice-1",
            price=6000,
            quantity=15,
        ),
        WithdrawalRequested(participant="alice", amount=20_000),
        OrderSubmitted(
            order_id=9,
            participant="bob",
            client_order_id="b9",
            instrument=SZEA,
            side=Side.SELL,
            order_type=OrderType.LIMIT,
            price=5900,
            quantity=46,
            time_in_force=TimeInForce.GTC,
        ),
    ]
    for seq, event in enumerate(later, start=100):
        assert copy.decide(seq, seq, event) == d.v.decide(seq, seq, event)
    assert copy.digest() == d.v.digest()
    copy.check_invariants()


def test_digest_depends_on_the_state_not_on_the_order_maps_were_filled() -> None:
    """Deposits in either order give equal digests; a different balance gives a different one."""
    a, b, c = Verification(), Verification(), Verification()
    deposits = [CashDeposited(participant="alice", amount=5), CashDeposited(participant="bob", amount=7)]
    for seq, event in enumerate(deposits):
        a.decide(seq, seq, event)
        b.decide(seq, seq, deposits[1 - seq])
        c.decide(seq, seq, CashDeposited(participant=event.participant, amount=event.amount + 1))
    assert a.digest() == b.digest() != c.digest()
    assert len(a.digest()) == 64


def test_check_invariants_catches_frozen_cash_no_order_accounts_for() -> None:
    """Frozen cash must equal what open orders and unsettled fills hold; one stray fen fails the check."""
    d = desk()
    d.submit("alice", "buy", 10, 5800)
    d.v.check_invariants()
    d.v.state.accounts["alice"].frozen_cash += 1
    with pytest.raises(InvariantError, match="alice: frozen cash 58031"):
        d.v.check_invariants()


def test_two_amendments_in_flight_each_freeze_against_the_settled_terms() -> None:
    """Amendment a (to 70.00, outside the band) and b (to 60.00) are both in flight: b's extra ignores a's,
    so when matching rejects a and applies b the order still covers 10 t at 60.03."""
    d = desk()
    d.submit("alice", "buy", 10, 5800)
    a = d.replace("alice", "alice-1", 7000, 10, clid="a", hold=True)
    b = d.replace("alice", "alice-1", 6000, 10, clid="b", hold=True)
    assert isinstance(a, ReplaceVerified)
    assert isinstance(b, ReplaceVerified)
    assert (a.extra_cash, b.extra_cash) == (70_040 - 58_030, 60_030 - 58_030)
    assert d.cash("alice") == (100_000, 72_040)
    assert rejected(d.match(a)[0])[1] is Reason.OUTSIDE_PRICE_BAND
    assert d.cash("alice") == (100_000, 60_030)
    assert [type(e).__name__ for e in d.match(b)] == ["OrderReplaced"]
    d.v.check_invariants()
