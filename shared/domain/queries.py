"""A participant's questions about its own account, and verification's answers, as log entries.

A query is logged like any command (intake authenticates it and spends its id) and answered by
verification when it reaches it in the log: the answer is the state after every entry before the query,
and its report lands on the participant's stream after every report of those entries. Answers change no
state; they are in the log so that they are written exactly once, in order, and replay to the same bytes.
"""

from __future__ import annotations

import msgspec

from shared.domain.base import DomainEvent
from shared.domain.values import Side

__all__ = [
    "MAX_ORDERS_PER_ANSWER",
    "BalancesAnswered",
    "HoldingBalance",
    "OpenOrderView",
    "OpenOrdersAnswered",
    "OrderStatusAnswered",
    "QueryEvent",
    "QuerySubmitted",
]

MAX_ORDERS_PER_ANSWER = 200  # open orders per answer: a log entry stays small; `more` says ask again


class QuerySubmitted(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    query: str  # shared.protocol.QueryKind
    instrument: str = ""
    orig_client_order_id: str = ""
    after_order_id: int = 0


class HoldingBalance(msgspec.Struct, frozen=True, array_like=True):
    instrument: str
    held: int  # tonnes
    frozen: int  # tonnes frozen by open sells and pending retirements


class OpenOrderView(msgspec.Struct, frozen=True, array_like=True):
    order_id: int
    client_order_id: str
    instrument: str
    side: Side
    price: int  # fen; 0 for a market order
    leaves: int
    cum: int


class BalancesAnswered(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    as_of: int  # the query's seq: the answer covers every entry before it
    cash: int  # fen
    frozen_cash: int
    holdings: tuple[HoldingBalance, ...]


class OpenOrdersAnswered(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    as_of: int
    orders: tuple[OpenOrderView, ...]  # by order id, after the query's `after_order_id`
    more: bool  # more open orders follow: ask again after the last order id


class OrderStatusAnswered(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    as_of: int
    orig_client_order_id: str
    order: OpenOrderView | None  # None: not open (never was, or filled, cancelled or expired)


QueryEvent = QuerySubmitted | BalancesAnswered | OpenOrdersAnswered | OrderStatusAnswered
