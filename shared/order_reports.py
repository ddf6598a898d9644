"""The reports of an order's life that matching's events make (new, trade, cancelled, expired, replaced,
and the public trade tape): a pure projection, and where each report goes.

Matching writes these in the append that logs its events (issue 17, item 4: no report hop on the order
path); intake's report publisher writes every other report, and the in-process harness all of them, with
the same code (services/intake/reports/execution.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from msgspec import UNSET

from shared.domain.codec import Event, tags
from shared.domain.events import OrderAccepted, OrderCancelled, OrderExpired, OrderReplaced, TradeExecuted
from shared.domain.values import Side, fen_to_price
from shared.eventlog.effects import SEQ_PLACEHOLDER, Effect
from shared.keys import Keys
from shared.reports import (
    ExecType,
    ExecutionReport,
    Liquidity,
    OrdStatus,
    RejectReason,
    Report,
    TradeReport,
    encode_report,
)

__all__ = ["ORDER_REPORTED_TYPES", "Delivery", "OrderReports", "report_effect", "written_by_matching"]

ORDER_REPORTED_TYPES = tags(OrderAccepted, TradeExecuted, OrderCancelled, OrderExpired, OrderReplaced)


class Delivery(NamedTuple):
    participant: str | None  # None: the public trade tape
    report: Report


def report_effect(keys: Keys, delivery: Delivery, *, seq_from_append: bool = False) -> Effect:
    """The XADD that puts one report on its stream. `seq_from_append`: the report's seq is left for the
    append script to fill in (the report was built with seq 0, and its entry has no seq until the script
    runs; shared/eventlog/effects.py)."""
    stream = keys.trades if delivery.participant is None else keys.reports(delivery.participant)
    data = encode_report(delivery.report)
    if seq_from_append:
        # `seq` is every report's first field after its tag, and a JSON key cannot occur in a string
        # value unescaped: the first `"seq":0` is the report's own.
        data = data.replace(b'"seq":0', b'"seq":' + SEQ_PLACEHOLDER, 1)
    return Effect("XADD", stream, ("*", "data", data))


_MATCHING_EXEC_TYPES = frozenset({"new", "trade", "cancelled", "expired", "replaced"})


def written_by_matching(report: dict[str, Any]) -> bool:
    """Whether a report (as JSON read back from a stream) is one matching writes with its events: the
    trade tape and execution reports other than rejections. Every other report is the publisher's."""
    kind = report.get("type")
    return kind == "trade" or (kind == "execution_report" and report.get("exec_type") in _MATCHING_EXEC_TYPES)


def _price(fen: int) -> str | None:
    return fen_to_price(fen) if fen else None


class OrderReports:
    """Remembers each open order's side, price and size so fills can be reported in full."""

    def __init__(self) -> None:
        self.orders: dict[int, tuple[Side, int, int]] = {}  # order id -> side, limit price, total qty

    def order_reports(self, seq: int, event: Event) -> list[Delivery]:
        """The reports of one of matching's events ([] for any other event)."""
        match event:
            case TradeExecuted():
                return self._trade(seq, event)
            case OrderAccepted():
                self.orders[event.order_id] = (event.side, event.price, event.quantity)
                return [Delivery(event.participant, ExecutionReport(
                    seq=seq, client_order_id=event.client_order_id, order_id=event.order_id,
                    exec_type=ExecType.NEW, ord_status=OrdStatus.NEW, instrument=event.instrument,
                    side=event.side, price=_price(event.price), quantity=event.quantity, cum_qty=0,
                    leaves_qty=event.quantity,
                ))]  # fmt: skip
            case OrderCancelled() | OrderExpired():
                return [self._ended(seq, event)]
            case OrderReplaced():
                self.orders[event.order_id] = (event.side, event.price, event.quantity)
                status = OrdStatus.PARTIALLY_FILLED if event.cum_qty else OrdStatus.NEW
                return [Delivery(event.participant, ExecutionReport(
                    seq=seq, client_order_id=event.client_order_id,
                    orig_client_order_id=event.orig_client_order_id, order_id=event.order_id,
                    exec_type=ExecType.REPLACED, ord_status=status, instrument=event.instrument,
                    side=event.side, price=_price(event.price), quantity=event.quantity,
                    cum_qty=event.cum_qty, leaves_qty=event.leaves,
                ))]  # fmt: skip
        return []

    def _ended(self, seq: int, event: OrderCancelled | OrderExpired) -> Delivery:
        self.orders.pop(event.order_id, None)
        cancelled = isinstance(event, OrderCancelled)
        # A cancel request is answered under its own id, naming the order it cancelled (FIX ClOrdID and
        # OrigClOrdID); an order cancelled by the exchange or expired, under the order's.
        request = event.request_client_order_id if isinstance(event, OrderCancelled) else ""
        return Delivery(event.participant, ExecutionReport(
            seq=seq, client_order_id=request or event.client_order_id,
            orig_client_order_id=event.client_order_id if request else UNSET, order_id=event.order_id,
            exec_type=ExecType.CANCELLED if cancelled else ExecType.EXPIRED,
            ord_status=OrdStatus.CANCELLED if cancelled else OrdStatus.EXPIRED,
            instrument=event.instrument, side=event.side, price=_price(event.price),
            last_qty=event.cancelled_qty if isinstance(event, OrderCancelled) else event.expired_qty,
            cum_qty=event.cum_qty, leaves_qty=0,
            reason=RejectReason(event.reason, event.reason.replace("_", " ")),
        ))  # fmt: skip

    def _trade(self, seq: int, t: TradeExecuted) -> list[Delivery]:
        taker_side = Side.BUY if t.maker_side is Side.SELL else Side.SELL
        out: list[Delivery] = []
        for who, order_id, cid, side, leaves, cum, liquidity in (
            (t.maker_participant, t.maker_order_id, t.maker_client_order_id, t.maker_side, t.maker_leaves,
             t.maker_cum, Liquidity.MAKER),
            (t.taker_participant, t.taker_order_id, t.taker_client_order_id, taker_side, t.taker_leaves,
             t.taker_cum, Liquidity.TAKER),
        ):  # fmt: skip
            _, limit, _ = self.orders.get(order_id, (side, 0, 0))
            if not leaves:
                self.orders.pop(order_id, None)
            out.append(Delivery(who, ExecutionReport(
                seq=seq, client_order_id=cid, order_id=order_id, exec_type=ExecType.TRADE,
                ord_status=OrdStatus.PARTIALLY_FILLED if leaves else OrdStatus.FILLED,
                instrument=t.instrument, side=side, price=_price(limit), last_qty=t.quantity,
                last_price=fen_to_price(t.price), cum_qty=cum, leaves_qty=leaves, trade_id=t.trade_id,
                liquidity=liquidity,
            )))  # fmt: skip
        out.append(Delivery(None, TradeReport(
            seq=seq, trade_id=t.trade_id, instrument=t.instrument, price=fen_to_price(t.price),
            quantity=t.quantity, aggressor=taker_side,
        )))  # fmt: skip
        return out
