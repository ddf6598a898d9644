"""Commands to the matching core: imperative requests that it accepts or rejects with events."""

from __future__ import annotations

import msgspec

from shared.domain.instruments import Instrument
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = [
    "CancelOrder",
    "EngineCommand",
    "ExpireDayOrders",
    "HaltInstrument",
    "ListInstrument",
    "MassCancel",
    "PlaceOrder",
    "ReplaceOrder",
    "ResumeInstrument",
]


class _Command(msgspec.Struct, frozen=True, tag=True, tag_field="type", kw_only=True):
    """Base of every command; the tag is the class name and never changes once published."""


class PlaceOrder(_Command, frozen=True):
    """Enter a new order; `order_id` is assigned by the shell so the core stays deterministic."""

    order_id: int
    participant: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: OrderType
    price: int  # fen; ignored for market orders
    quantity: int  # tonnes
    time_in_force: TimeInForce = TimeInForce.GTC


class CancelOrder(_Command, frozen=True):
    participant: str
    client_order_id: str
    instrument: str
    orig_client_order_id: str


class MassCancel(_Command, frozen=True):
    """Cancel every resting order of the participant, or of one instrument ("" = all) and/or side."""

    participant: str
    client_order_id: str
    instrument: str = ""
    side: Side | None = None


class ReplaceOrder(_Command, frozen=True):
    """Amend price and/or total quantity; `quantity` is the new total including what already traded."""

    participant: str
    client_order_id: str
    instrument: str
    orig_client_order_id: str
    price: int
    quantity: int


class ListInstrument(_Command, frozen=True):
    instrument: Instrument


class HaltInstrument(_Command, frozen=True):
    instrument: str


class ResumeInstrument(_Command, frozen=True):
    instrument: str


class ExpireDayOrders(_Command, frozen=True):
    """Close of the trading day: every resting DAY order of the instrument expires."""

    instrument: str


EngineCommand = (
    PlaceOrder
    | CancelOrder
    | ReplaceOrder
    | MassCancel
    | ListInstrument
    | HaltInstrument
    | ResumeInstrument
    | ExpireDayOrders
)
