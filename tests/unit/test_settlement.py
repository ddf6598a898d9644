"""Settlement core: DVP cash and fees, FIFO serial delivery, refusals, snapshots."""

from __future__ import annotations

import msgspec
import pytest

from services.runtime.processor import Processor, restored
from services.settlement.core import Settlement, SettlementInvariantError
from shared.domain.codec import Event
from shared.domain.events import OrderAccepted, TradeExecuted
from shared.domain.ledger import (
    EXCHANGE_ACCOUNT,
    CashDeposited,
    CashWithdrawn,
    CreditsIssued,
    ParticipantRegistered,
    SerialRange,
    TradeSettled,
)
from shared.domain.values import OrderType, Side, TimeInForce
from tests.support import SEALED_KEY

SZEA = "SZEA-2025"
CCER = "CCER-2024"


def feed(s: Settlement, *events: Event) -> list[Event]:
    out: list[Event] = []
    for seq, event in enumerate(events, start=1):
        out.extend(s.decide(seq, seq * 1_000, event))
    return out


def register(*participants: str) -> list[Event]:
    return [ParticipantRegistered(participant=p, name=p.title(), key=SEALED_KEY) for p in participants]


def issue(participant: str, start: int, end: int, instrument: str = SZEA) -> CreditsIssued:
    return CreditsIssued(participant=participant, instrument=instrument, serials=SerialRange(start, end))


def trade(
    trade_id: int, maker: str, taker: str, maker_side: Side, *, qty: int, price: int, instrument: str = SZEA
) -> TradeExecuted:
    """A fill; maker orders are numbered 100 + trade id and taker orders 200 + trade id."""
    return TradeExecuted(
        trade_id=trade_id, instrument=instrument, price=price, quantity=qty,
        maker_order_id=100 + trade_id, maker_participant=maker, maker_client_order_id=f"{maker}-m",
        maker_side=maker_side, maker_leaves=0, maker_cum=qty,
        taker_order_id=200 + trade_id, taker_participant=taker, taker_client_order_id=f"{taker}-t",
        taker_leaves=0, taker_cum=qty,
    )  # fmt: skip


def session() -> Settlement:
    """alice has 1 000 000 fen; bob holds SZEA 100..104, 200..209, 300..319 (received in that order)."""
    s = Settlement()
    feed(
        s,
        *register("alice", "bob"),
        CashDeposited(participant="alice", amount=1_000_000),
        issue("bob", 100, 104),
        issue("bob", 200, 209),
        issue("bob", 300, 319),
    )
    return s


def ranges(*pairs: tuple[int, int]) -> list[SerialRange]:
    return [SerialRange(a, b) for a, b in pairs]


def test_settlement_is_a_processor_that_reads_only_what_it_needs() -> None:
    """It names itself, subscribes to eleven tags and answers nothing to events outside them."""
    processor: Processor = Settlement()
    assert processor.name == "settlement"
    assert processor.inputs == {
        "ParticipantRegistered", "CashDeposited", "CashWithdrawn", "CashTransferredIn", "CashTransferredOut",
        "CreditsIssued", "TradeExecuted",
        "RetirementApproved", "InstrumentListed", "EligibilityChanged", "SurrenderApproved",
    }  # fmt: skip
    accepted = OrderAccepted(
        order_id=1, participant="alice", client_order_id="a-1", instrument=SZEA, side=Side.BUY,
        order_type=OrderType.LIMIT, price=5800, quantity=1, time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    assert processor.decide(1, 1, accepted) == []


@pytest.mark.parametrize(
    ("maker_side", "price", "qty", "buyer_fee", "seller_fee"),
    [
        # 17 403 fen notional: maker 2 bps = 3.48 -> 4, taker 5 bps = 8.70 -> 9 (rounded up).
        (Side.BUY, 5801, 3, 4, 9),
        (Side.SELL, 5801, 3, 9, 4),
        # 10 000 fen: the fees are whole already and must not be rounded further.
        (Side.BUY, 5000, 2, 2, 5),
        (Side.SELL, 5000, 2, 5, 2),
    ],
)
def test_dvp_moves_cash_and_charges_maker_and_taker_fees(
    maker_side: Side, price: int, qty: int, buyer_fee: int, seller_fee: int
) -> None:
    """The buyer pays notional plus its fee, the seller gets notional less its fee, the exchange both fees."""
    s = session()
    maker, taker = ("alice", "bob") if maker_side is Side.BUY else ("bob", "alice")
    out = feed(s, trade(1, maker, taker, maker_side, qty=qty, price=price))
    notional = price * qty
    buy_order, sell_order = (101, 201) if maker_side is Side.BUY else (201, 101)
    assert out == [
        TradeSettled(
            trade_id=1, instrument=SZEA, price=price, quantity=qty, buyer="alice", seller="bob",
            buy_order_id=buy_order, sell_order_id=sell_order, cash=notional, buyer_fee=buyer_fee,
            seller_fee=seller_fee, serials=(SerialRange(100, 100 + qty - 1),),
        )
    ]  # fmt: skip
    assert s.balances() == {
        "alice": 1_000_000 - notional - buyer_fee,
        "bob": notional - seller_fee,
        EXCHANGE_ACCOUNT: buyer_fee + seller_fee,
    }
    s.check_invariants()


def test_maker_buy_balances_in_exact_fen() -> None:
    """Alice (maker) buys 7 t at 58.01 from bob: 1 000 000 - 40 616, bob 40 586, exchange 30."""
    s = session()
    feed(s, trade(1, "alice", "bob", Side.BUY, qty=7, price=5801))
    assert s.balances() == {"alice": 959_384, "bob": 40_586, EXCHANGE_ACCOUNT: 30}


def test_fifo_delivery_splits_the_first_block_larger_than_needed() -> None:
    """18 t take all of 100..104 and 200..209 and the lowest 3 serials of 300..319, oldest first."""
    s = session()
    (settled,) = feed(s, trade(1, "bob", "alice", Side.SELL, qty=18, price=5800))
    assert isinstance(settled, TradeSettled)
    assert settled.serials == (SerialRange(100, 104), SerialRange(200, 209), SerialRange(300, 302))
    assert s.holdings("bob") == {SZEA: ranges((303, 319))}
    assert s.holdings("alice") == {SZEA: ranges((100, 104), (200, 209), (300, 302))}
    s.check_invariants()


def test_delivery_continuing_the_buyers_newest_block_merges_into_it() -> None:
    """303..306 arriving after 300..302 becomes 300..306; the older blocks stay first and apart."""
    s = session()
    feed(
        s,
        trade(1, "bob", "alice", Side.SELL, qty=18, price=5800),
        trade(2, "alice", "bob", Side.BUY, qty=4, price=5800),
    )
    assert s.holdings("alice") == {SZEA: ranges((100, 104), (200, 209), (300, 306))}
    assert s.holdings("bob") == {SZEA: ranges((307, 319))}


def test_a_block_just_below_the_newest_is_not_merged_ahead_of_it() -> None:
    """Carol holds 20..30 then receives 10..19: merging would deliver the newer serials first."""
    s = Settlement()
    feed(
        s, *register("carol", "dave"), CashDeposited(participant="carol", amount=10_000),
        CashDeposited(participant="dave", amount=10_000), issue("carol", 20, 30), issue("dave", 10, 19),
        trade(1, "dave", "carol", Side.SELL, qty=10, price=50),
    )  # fmt: skip
    assert s.holdings("carol") == {SZEA: ranges((20, 30), (10, 19))}
    assert s.holdings("dave") == {}
    (settled,) = feed(s, trade(2, "carol", "dave", Side.SELL, qty=12, price=50))
    assert isinstance(settled, TradeSettled)
    assert settled.serials == (SerialRange(20, 30), SerialRange(10, 10))


def test_contiguous_issuance_merges_into_the_newest_block() -> None:
    """Issuing 105..110 right after 100..104 gives one block; 0..99 below it stays separate and last."""
    s = Settlement()
    feed(s, *register("bob"), issue("bob", 100, 104), issue("bob", 105, 110), issue("bob", 0, 99))
    assert s.holdings("bob") == {SZEA: ranges((100, 110), (0, 99))}


@pytest.mark.parametrize(("start", "end"), [(150, 160), (199, 250), (50, 100), (100, 199), (0, 1000)])
def test_issuance_overlapping_any_issued_serial_is_refused(start: int, end: int) -> None:
    """Serials are unique per instrument whoever holds them now; a refusal changes nothing."""
    s = Settlement()
    feed(s, *register("alice", "bob"), CashDeposited(participant="bob", amount=10**7))
    feed(s, issue("alice", 100, 199), trade(1, "alice", "bob", Side.SELL, qty=60, price=100))
    before = s.digest()
    with pytest.raises(SettlementInvariantError, match=r"overlap 100\.\.199"):
        feed(s, issue("alice", start, end))
    assert s.digest() == before


def test_issuance_next_to_issued_serials_or_of_another_instrument_is_accepted() -> None:
    """Adjacent serials and the same serials of another instrument do not overlap."""
    s = Settlement()
    feed(s, *register("alice", "bob"), issue("alice", 100, 199), issue("bob", 200, 210))
    feed(s, issue("bob", 99, 99), issue("bob", 100, 199, instrument=CCER))
    assert s.holdings("bob") == {SZEA: ranges((200, 210), (99, 99)), CCER: ranges((100, 199))}
    s.check_invariants()


def test_settling_a_trade_twice_is_refused_and_changes_nothing() -> None:
    """A repeated trade id crashes the service rather than moving cash and credits again."""
    s = session()
    feed(s, trade(1, "alice", "bob", Side.BUY, qty=1, price=5800))
    before = s.digest()
    with pytest.raises(SettlementInvariantError, match="trade 1 settled twice"):
        feed(s, trade(1, "alice", "bob", Side.BUY, qty=1, price=5800))
    assert s.digest() == before


def test_seller_short_of_credits_is_refused_and_changes_nothing() -> None:
    """Bob holds 35 t; selling 36 breaks what verification guarantees."""
    s = session()
    before = s.digest()
    with pytest.raises(SettlementInvariantError, match="bob lacks 36 t of SZEA-2025"):
        feed(s, trade(1, "alice", "bob", Side.BUY, qty=36, price=5800))
    with pytest.raises(SettlementInvariantError, match="bob lacks 1 t of CCER-2024"):
        feed(s, trade(2, "alice", "bob", Side.BUY, qty=1, price=5800, instrument=CCER))
    assert s.digest() == before


def test_buyer_short_of_cash_is_refused() -> None:
    """35 t at 285.72 is 1 000 020 fen, more than alice has, before the fee is even counted."""
    s = session()
    with pytest.raises(SettlementInvariantError, match="alice lacks 1000521 fen"):
        feed(s, trade(1, "bob", "alice", Side.SELL, qty=35, price=28_572))
    assert s.holdings("bob") == {SZEA: ranges((100, 104), (200, 209), (300, 319))}


def test_unknown_participants_and_overdrawn_withdrawals_are_refused() -> None:
    """Upstream checks registration and available cash; settlement only notices when they fail."""
    s = session()
    with pytest.raises(SettlementInvariantError, match="unknown participant 'zed'"):
        feed(s, CashDeposited(participant="zed", amount=1))
    with pytest.raises(SettlementInvariantError, match="unknown participant 'zed'"):
        feed(s, trade(1, "alice", "zed", Side.BUY, qty=1, price=5800))
    with pytest.raises(SettlementInvariantError, match="alice withdraws 1000001 fen of 1000000"):
        feed(s, CashWithdrawn(participant="alice", amount=1_000_001))
    feed(s, CashWithdrawn(participant="alice", amount=1_000_000))
    assert s.balances()["alice"] == 0
    s.check_invariants()


def test_registering_again_keeps_the_account() -> None:
    """A second registration (new key, new roles) must not reset the cash."""
    s = session()
    feed(s, *register("alice"))
    assert s.balances()["alice"] == 1_000_000


def test_snapshot_round_trip_restores_an_equal_state() -> None:
    """Restored from its snapshot, the state has the same digest and settles the next trade the same."""
    s = session()
    feed(
        s,
        trade(1, "bob", "alice", Side.SELL, qty=18, price=5800),
        CashWithdrawn(participant="bob", amount=1000),
    )
    copy = restored(Settlement(), s.snapshot())
    assert copy == s
    assert copy.digest() == s.digest()
    assert len(s.digest()) == 64
    nxt = trade(2, "alice", "bob", Side.BUY, qty=4, price=5812)
    assert feed(copy, nxt) == feed(s, nxt)
    assert copy.digest() == s.digest()
    with pytest.raises(SettlementInvariantError, match="trade 1 settled twice"):
        feed(copy, trade(1, "bob", "alice", Side.SELL, qty=1, price=5800))


def test_equal_states_reached_in_a_different_order_give_equal_bytes() -> None:
    """Registration order and dict insertion order do not leak into the snapshot."""
    a, b = Settlement(), Settlement()
    feed(a, *register("alice", "bob"), issue("alice", 1, 5), issue("bob", 6, 9, instrument=CCER))
    feed(b, *register("bob", "alice"), issue("bob", 6, 9, instrument=CCER), issue("alice", 1, 5))
    assert a.snapshot() == b.snapshot()
    feed(a, CashDeposited(participant="bob", amount=1))
    assert a.snapshot() != b.snapshot()


def test_selling_everything_leaves_no_trace_of_the_holding() -> None:
    """A seller emptied of an instrument snapshots like one that never held it."""
    s = session()
    feed(s, trade(1, "alice", "bob", Side.BUY, qty=35, price=100))
    assert s.holdings("bob") == {}
    fresh = Settlement()
    feed(
        fresh, *register("alice", "bob"), CashDeposited(participant="alice", amount=1_000_000),
        issue("alice", 100, 104), issue("alice", 200, 209), issue("alice", 300, 319),
    )  # fmt: skip
    assert s.holdings("alice") == fresh.holdings("alice")
    assert "bob" not in msgspec.msgpack.decode(s.snapshot())[2]


def test_a_tampered_snapshot_is_refused() -> None:
    """Restore checks the invariants: cash created from nothing or a serial held twice is caught."""
    s = session()
    raw = msgspec.msgpack.decode(s.snapshot())
    raw[1]["bob"] = 1
    with pytest.raises(SettlementInvariantError, match="cash 1000001 != deposited 1000000 - withdrawn 0"):
        restored(Settlement(), msgspec.msgpack.encode(raw))
    raw = msgspec.msgpack.decode(s.snapshot())
    raw[2]["alice"] = {SZEA: [[104, 104]]}
    with pytest.raises(SettlementInvariantError, match="serial 104 of SZEA-2025 is held twice"):
        restored(Settlement(), msgspec.msgpack.encode(raw))
    raw = msgspec.msgpack.decode(s.snapshot())
    raw[2]["bob"][SZEA] = [[100, 104], [200, 209], [300, 318]]
    with pytest.raises(SettlementInvariantError, match="34 t of SZEA-2025 held but 35 t issued"):
        restored(Settlement(), msgspec.msgpack.encode(raw))
    raw[2]["bob"][SZEA] = [[100, 104], [200, 209], [301, 320]]
    with pytest.raises(
        SettlementInvariantError, match="serials held of SZEA-2025 are not the serials issued"
    ):
        restored(Settlement(), msgspec.msgpack.encode(raw))
