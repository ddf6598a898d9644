"""The public projection folds the book, tape, candles and VWAP from public events alone, in integer fen,
bucketed by the log's time; a replay gives the same digest; the web app serves only GETs."""

from __future__ import annotations

from services.public.core import PublicProjection
from services.public.state import vwap
from services.public.views import book, day_stats
from services.web.app import create_app
from shared.domain.events import InstrumentListed, OrderAccepted, OrderCancelled, TradeExecuted
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.values import OrderType, Side, TimeInForce

MINUTE = 60_000_000_000
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00Z


def _events() -> list[tuple[int, object]]:
    inst = Instrument(symbol="X", kind=InstrumentKind.ALLOWANCE, standard="SZEA", registry="SZ", vintage=2025,
                      reference_price=5000)  # fmt: skip

    def accepted(oid: int, side: Side, price: int, qty: int) -> OrderAccepted:
        return OrderAccepted(order_id=oid, participant=f"p{oid}", client_order_id=f"c{oid}", instrument="X",
                             side=side, order_type=OrderType.LIMIT, price=price, quantity=qty,
                             time_in_force=TimeInForce.DAY)  # fmt: skip

    def trade(tid: int, price: int, qty: int, maker: int, maker_leaves: int, taker: int) -> TradeExecuted:
        return TradeExecuted(trade_id=tid, instrument="X", price=price, quantity=qty, maker_order_id=maker,
                             maker_participant="a", maker_client_order_id="m", maker_side=Side.SELL,
                             maker_leaves=maker_leaves, maker_cum=qty, taker_order_id=taker,
                             taker_participant="b", taker_client_order_id="t", taker_leaves=0,
                             taker_cum=qty)  # fmt: skip

    return [
        (T0, InstrumentListed(instrument=inst)),
        (T0 + 1, accepted(1, Side.SELL, 5001, 10)),
        (T0 + 2, accepted(2, Side.SELL, 5003, 5)),
        (T0 + 3, accepted(3, Side.BUY, 4990, 4)),
        (T0 + 4, accepted(4, Side.BUY, 5001, 3)),
        (T0 + 5, trade(1, 5001, 3, 1, 7, 4)),
        (T0 + MINUTE + 6, accepted(5, Side.BUY, 5003, 8)),
        (T0 + MINUTE + 7, trade(2, 5001, 7, 1, 0, 5)),
        (T0 + MINUTE + 8, trade(3, 5003, 1, 2, 4, 5)),
        (T0 + MINUTE + 9, OrderCancelled(order_id=3, participant="p3", client_order_id="c3", instrument="X",
                                         side=Side.BUY, price=4990, cancelled_qty=4, cum_qty=0,
                                         reason="cancelled_by_client")),  # type: ignore[arg-type]
    ]  # fmt: skip


def _folded() -> PublicProjection:
    proj = PublicProjection()
    for seq, (ns, event) in enumerate(_events(), start=1):
        proj.decide(seq, ns, event)  # type: ignore[arg-type]
    return proj


def test_book_candles_and_vwap_follow_the_public_events() -> None:
    """Resting tonnes per level after fills and a cancel; one candle per minute; VWAP rounded half up."""
    proj = _folded()
    m = proj.state.markets["X"]
    assert book(m) == {"bids": [], "asks": [[5003, 4]]}
    assert [(c.open, c.high, c.low, c.close, c.volume, c.trades) for c in m.candles["1m"]] == [
        (5001, 5001, 5001, 5001, 3, 1), (5001, 5003, 5001, 5003, 8, 2)]  # fmt: skip
    stats = day_stats(m)
    assert (stats["open"], stats["close"], stats["volume"], stats["trades"]) == (5001, 5003, 11, 3)
    assert stats["vwap"] == vwap(5001 * 10 + 5003, 11) == 5001  # 55013 / 11 = 5001.18 -> 5001
    assert vwap(3, 2) == 2  # 1.5 rounds up
    assert [t.aggressor for t in m.tape] == ["buy", "buy", "buy"]
    assert not any("p1" in repr(v) for v in (m, proj.state.orders))  # no participant kept


def test_a_replay_and_a_restore_give_the_same_digest() -> None:
    """Same log, same bytes; a restored snapshot digests the same and marks everything for publication."""
    first, second = _folded(), _folded()
    assert first.digest() == second.digest()
    restored = PublicProjection()
    restored.restore(first.snapshot())
    assert restored.digest() == first.digest()
    assert restored.touched == {"X"}
    assert second.first_difference(first) is None


def test_the_web_app_serves_only_reads() -> None:
    """Every route is a GET (or HEAD): the app has no write endpoint."""
    app = create_app(None, None)  # type: ignore[arg-type]  # routes only: nothing is read here
    methods = {m for r in app.routes for m in getattr(r, "methods", None) or {"GET"}}
    assert methods <= {"GET", "HEAD"}
