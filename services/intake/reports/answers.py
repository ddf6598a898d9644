"""Reports that answer a participant's queries and mass cancels: a pure projection of their log entries."""

from __future__ import annotations

from services.intake.reports.delivery import Delivery
from shared.domain.codec import Event, tags
from shared.domain.events import MassCancelled
from shared.domain.queries import BalancesAnswered, OpenOrdersAnswered, OpenOrderView, OrderStatusAnswered
from shared.domain.reasons import Reason
from shared.domain.values import fen_to_price
from shared.reports import (
    BalancesReport,
    ExecType,
    ExecutionReport,
    HoldingView,
    MassCancelReport,
    OpenOrdersReport,
    OrderView,
    OrdStatus,
    RejectReason,
)

__all__ = ["ANSWER_TYPES", "answer_reports"]

ANSWER_TYPES = tags(MassCancelled, BalancesAnswered, OpenOrdersAnswered, OrderStatusAnswered)


def answer_reports(seq: int, event: Event) -> list[Delivery]:
    match event:
        case MassCancelled():
            return [Delivery(event.participant, MassCancelReport(
                seq=seq, client_order_id=event.client_order_id, instrument=event.instrument or None,
                side=event.side, cancelled=event.cancelled,
            ))]  # fmt: skip
        case BalancesAnswered():
            holdings = [HoldingView(h.instrument, h.held, h.frozen, free=h.held - h.frozen)
                        for h in event.holdings]  # fmt: skip
            return [Delivery(event.participant, BalancesReport(
                seq=seq, client_order_id=event.client_order_id, as_of=event.as_of,
                cash=fen_to_price(event.cash), frozen_cash=fen_to_price(event.frozen_cash),
                free_cash=fen_to_price(event.cash - event.frozen_cash), holdings=holdings,
            ))]  # fmt: skip
        case OpenOrdersAnswered():
            return [Delivery(event.participant, OpenOrdersReport(
                seq=seq, client_order_id=event.client_order_id, as_of=event.as_of,
                orders=[_order(o) for o in event.orders], more=event.more,
            ))]  # fmt: skip
        case OrderStatusAnswered():
            return [Delivery(event.participant, _status(seq, event))]
    return []


def _order(o: OpenOrderView) -> OrderView:
    return OrderView(
        order_id=o.order_id, client_order_id=o.client_order_id, instrument=o.instrument, side=o.side,
        price=fen_to_price(o.price) if o.price else None, quantity=o.leaves + o.cum, cum_qty=o.cum,
        leaves_qty=o.leaves, ord_status=OrdStatus.PARTIALLY_FILLED if o.cum else OrdStatus.NEW,
    )  # fmt: skip


def _status(seq: int, event: OrderStatusAnswered) -> ExecutionReport:
    """FIX answers an order status request with an execution report (ExecType I), or a reject for an
    order it does not know."""
    o = event.order
    if o is None:
        return ExecutionReport(
            seq=seq, client_order_id=event.client_order_id, orig_client_order_id=event.orig_client_order_id,
            exec_type=ExecType.REJECTED, ord_status=OrdStatus.REJECTED, command="query",
            reason=RejectReason(Reason.UNKNOWN_ORDER, f"no open order {event.orig_client_order_id!r}: a "
                                "filled, cancelled or expired order's end is in its reports"),
        )  # fmt: skip
    view = _order(o)
    return ExecutionReport(
        seq=seq, client_order_id=event.client_order_id, orig_client_order_id=o.client_order_id,
        order_id=o.order_id, exec_type=ExecType.ORDER_STATUS, ord_status=view.ord_status,
        instrument=o.instrument, side=o.side, price=view.price, quantity=view.quantity, cum_qty=o.cum,
        leaves_qty=o.leaves,
    )  # fmt: skip
