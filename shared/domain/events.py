"""Events of the matching core: past-tense facts, each one entry of the event log."""

from __future__ import annotations

from shared.domain.base import DomainEvent
from shared.domain.instruments import Instrument
from shared.domain.reasons import Reason
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = [
    "EngineEvent",
    "InstrumentHalted",
    "InstrumentListed",
    "InstrumentResumed",
    "MassCancelled",
    "OrderAccepted",
    "OrderCancelled",
    "OrderExpired",
    "OrderRejected",
    "OrderReplaced",
    "TradeExecuted",
]


class OrderAccepted(DomainEvent, frozen=True):
    order_id: int
    participant: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: OrderType
    price: int
    quantity: int
    time_in_force: TimeInForce


class OrderRejected(DomainEvent, frozen=True):
    """A command refused by validation; `command` names what was refused (new_order, cancel_order ...)."""

    participant: str
    client_order_id: str
    instrument: str
    command: str
    reason: Reason
    text: str
    order_id: int = 0


class TradeExecuted(DomainEvent, frozen=True):
    """One fill between a resting (maker) and an incoming (taker) order, at the maker's price."""

    trade_id: int
    instrument: str
    price: int
    quantity: int
    maker_order_id: int
    maker_participant: str
    maker_client_order_id: str
    maker_side: Side
    maker_leaves: int
    maker_cum: int
    taker_order_id: int
    taker_participant: str
    taker_client_order_id: str
    taker_leaves: int
    taker_cum: int


class OrderCancelled(DomainEvent, frozen=True):
    order_id: int
    participant: str
    client_order_id: str  # the order's
    instrument: str
    side: Side
    price: int
    cancelled_qty: int
    cum_qty: int
    reason: Reason
    # The cancel request's own client order id (FIX ClOrdID of the cancel); "" when no request cancelled
    # it (self-trade prevention) and in entries logged before it existed.
    request_client_order_id: str = ""


class MassCancelled(DomainEvent, frozen=True):
    """A mass cancel is done: `cancelled` orders of the participant were cancelled (each its own
    OrderCancelled, before this event, under the request's client order id)."""

    participant: str
    client_order_id: str
    instrument: str  # "" = every instrument
    side: Side | None
    cancelled: int


class OrderExpired(DomainEvent, frozen=True):
    order_id: int
    participant: str
    client_order_id: str
    instrument: str
    side: Side
    price: int
    expired_qty: int
    cum_qty: int
    reason: Reason


class OrderReplaced(DomainEvent, frozen=True):
    """An amendment; `priority_kept` is false when the order went to the back of its (new) level."""

    order_id: int
    participant: str
    client_order_id: str
    orig_client_order_id: str
    instrument: str
    side: Side
    old_price: int
    old_leaves: int
    price: int
    quantity: int
    leaves: int
    cum_qty: int
    priority_kept: bool


class InstrumentListed(DomainEvent, frozen=True):
    instrument: Instrument


class InstrumentHalted(DomainEvent, frozen=True):
    instrument: str


class InstrumentResumed(DomainEvent, frozen=True):
    instrument: str


EngineEvent = (
    OrderAccepted
    | OrderRejected
    | TradeExecuted
    | OrderCancelled
    | OrderExpired
    | OrderReplaced
    | MassCancelled
    | InstrumentListed
    | InstrumentHalted
    | InstrumentResumed
)
