"""Execution, settlement and market-data reports derived from log events: a pure projection."""

from __future__ import annotations

from typing import Any

from services.intake.registry_reports import REGISTRY_REPORTED_TYPES, RegistryReporter
from shared.domain.codec import Event
from shared.domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from shared.domain.ledger import CashWithdrawn, TradeSettled, WithdrawalRejected
from shared.domain.values import Side, fen_to_price

__all__ = ["REPORTED_TYPES", "TRADES_STREAM", "Report", "Reporter"]

TRADES_STREAM = "md:trades"
# (stream suffix under the prefix, JSON-able payload)
Report = tuple[str, dict[str, Any]]

REPORTED_TYPES = frozenset(
    {
        "OrderAccepted",
        "OrderRejected",
        "TradeExecuted",
        "OrderCancelled",
        "OrderExpired",
        "OrderReplaced",
        "TradeSettled",
        "CashWithdrawn",
        "WithdrawalRejected",
    }
    | REGISTRY_REPORTED_TYPES
)


def _price(fen: int) -> str | None:
    return fen_to_price(fen) if fen else None


def _exec(seq: int, participant: str, **fields: Any) -> Report:
    return f"out:{participant}", {"type": "execution_report", "seq": seq, **fields}


class Reporter:
    """Remembers each open order's side, price and size so fills can be reported in full."""

    def __init__(self) -> None:
        self.orders: dict[int, tuple[Side, int, int]] = {}  # order id -> side, limit price, total qty
        self.registry = RegistryReporter()

    def reports(self, seq: int, event: Event, entry_hash: bytes = b"") -> list[Report]:
        if type(event).__name__ in REGISTRY_REPORTED_TYPES:
            return self.registry.reports(seq, event, entry_hash)
        if isinstance(event, TradeExecuted):
            return self._trade(seq, event)
        if isinstance(event, OrderAccepted):
            self.orders[event.order_id] = (event.side, event.price, event.quantity)
            return [
                _exec(
                    seq,
                    event.participant,
                    client_order_id=event.client_order_id,
                    order_id=event.order_id,
                    exec_type="new",
                    ord_status="new",
                    instrument=event.instrument,
                    side=event.side,
                    price=_price(event.price),
                    quantity=event.quantity,
                    cum_qty=0,
                    leaves_qty=event.quantity,
                )
            ]
        if isinstance(event, OrderCancelled | OrderExpired):
            self.orders.pop(event.order_id, None)
            status = "cancelled" if isinstance(event, OrderCancelled) else "expired"
            qty = event.cancelled_qty if isinstance(event, OrderCancelled) else event.expired_qty
            return [
                _exec(
                    seq,
                    event.participant,
                    client_order_id=event.client_order_id,
                    order_id=event.order_id,
                    exec_type=status,
                    ord_status=status,
                    instrument=event.instrument,
                    side=event.side,
                    price=_price(event.price),
                    last_qty=qty,
                    cum_qty=event.cum_qty,
                    leaves_qty=0,
                    reason={"code": event.reason, "text": event.reason.replace("_", " ")},
                )
            ]
        if isinstance(event, OrderReplaced):
            self.orders[event.order_id] = (event.side, event.price, event.quantity)
            return [
                _exec(
                    seq,
                    event.participant,
                    client_order_id=event.client_order_id,
                    orig_client_order_id=event.orig_client_order_id,
                    order_id=event.order_id,
                    exec_type="replaced",
                    ord_status="partially_filled" if event.cum_qty else "new",
                    instrument=event.instrument,
                    side=event.side,
                    price=_price(event.price),
                    quantity=event.quantity,
                    cum_qty=event.cum_qty,
                    leaves_qty=event.leaves,
                )
            ]
        if isinstance(event, OrderRejected):
            return [
                _exec(
                    seq,
                    event.participant,
                    client_order_id=event.client_order_id,
                    order_id=event.order_id or None,
                    exec_type="rejected",
                    ord_status="rejected",
                    instrument=event.instrument,
                    command=event.command,
                    reason={"code": event.reason, "text": event.text},
                )
            ]
        if isinstance(event, TradeSettled):
            return self._settled(seq, event)
        if isinstance(event, CashWithdrawn | WithdrawalRejected):
            ok = isinstance(event, CashWithdrawn)
            return [
                (
                    f"out:{event.participant}",
                    {
                        "type": "cash",
                        "seq": seq,
                        "status": "withdrawn" if ok else "rejected",
                        "amount": fen_to_price(event.amount),
                        **({} if ok else {"reason": {"code": event.reason, "text": event.text}}),  # type: ignore[union-attr]
                    },
                )
            ]
        return []

    def _trade(self, seq: int, t: TradeExecuted) -> list[Report]:
        taker_side = Side.BUY if t.maker_side is Side.SELL else Side.SELL
        out: list[Report] = []
        for who, order_id, cid, side, leaves, cum in (
            (
                t.maker_participant,
                t.maker_order_id,
                t.maker_client_order_id,
                t.maker_side,
                t.maker_leaves,
                t.maker_cum,
            ),
            (
                t.taker_participant,
                t.taker_order_id,
                t.taker_client_order_id,
                taker_side,
                t.taker_leaves,
                t.taker_cum,
            ),
        ):
            _, limit, _ = self.orders.get(order_id, (side, 0, 0))
            if not leaves:
                self.orders.pop(order_id, None)
            out.append(
                _exec(
                    seq,
                    who,
                    client_order_id=cid,
                    order_id=order_id,
                    exec_type="trade",
                    ord_status="partially_filled" if leaves else "filled",
                    instrument=t.instrument,
                    side=side,
                    price=_price(limit),
                    last_qty=t.quantity,
                    last_price=fen_to_price(t.price),
                    cum_qty=cum,
                    leaves_qty=leaves,
                    trade_id=t.trade_id,
                    liquidity="maker"
                    if who == t.maker_participant and order_id == t.maker_order_id
                    else "taker",
                )
            )
        out.append(
            (
                TRADES_STREAM,
                {
                    "type": "trade",
                    "seq": seq,
                    "trade_id": t.trade_id,
                    "instrument": t.instrument,
                    "price": fen_to_price(t.price),
                    "quantity": t.quantity,
                    "aggressor": taker_side,
                },
            )
        )
        return out

    @staticmethod
    def _settled(seq: int, s: TradeSettled) -> list[Report]:
        serials = [[r.start, r.end] for r in s.serials]
        common = {
            "type": "settlement",
            "seq": seq,
            "trade_id": s.trade_id,
            "instrument": s.instrument,
            "price": fen_to_price(s.price),
            "quantity": s.quantity,
            "cash": fen_to_price(s.cash),
            "serials": serials,
        }
        return [
            (
                f"out:{s.buyer}",
                {
                    **common,
                    "side": "buy",
                    "order_id": s.buy_order_id,
                    "fee": fen_to_price(s.buyer_fee),
                    "net_cash": fen_to_price(-(s.cash + s.buyer_fee)),
                },
            ),
            (
                f"out:{s.seller}",
                {
                    **common,
                    "side": "sell",
                    "order_id": s.sell_order_id,
                    "fee": fen_to_price(s.seller_fee),
                    "net_cash": fen_to_price(s.cash - s.seller_fee),
                },
            ),
        ]
