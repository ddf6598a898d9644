"""Answers to a participant's queries, read from verification's state (which they do not change)."""

from __future__ import annotations

import heapq

from services.verification.state import OpenOrder, State
from shared.domain.codec import Event
from shared.domain.queries import (
    MAX_ORDERS_PER_ANSWER,
    BalancesAnswered,
    HoldingBalance,
    OpenOrdersAnswered,
    OpenOrderView,
    OrderStatusAnswered,
    QuerySubmitted,
)
from shared.protocol import QueryKind

__all__ = ["answer"]


def answer(state: State, seq: int, query: QuerySubmitted) -> Event:
    """Verification's state after every entry before `seq` is exactly what the log says up to there."""
    who, cid = query.participant, query.client_order_id
    if query.query == QueryKind.BALANCES:
        account = state.accounts.get(who)
        holdings = (
            tuple(
                HoldingBalance(symbol, h.held, h.frozen)
                for symbol, h in sorted(account.credits.items())
                if h.held or h.frozen
            )
            if account is not None
            else ()
        )
        cash, frozen = (account.cash, account.frozen_cash) if account is not None else (0, 0)
        return BalancesAnswered(participant=who, client_order_id=cid, as_of=seq, cash=cash,
                                frozen_cash=frozen, holdings=holdings)  # fmt: skip
    if query.query == QueryKind.ORDER_STATUS:
        order_id = state.live_ids.get(who, {}).get(query.orig_client_order_id)
        order = state.orders.get(order_id) if order_id is not None else None
        return OrderStatusAnswered(
            participant=who, client_order_id=cid, as_of=seq, orig_client_order_id=query.orig_client_order_id,
            order=_view(order) if order is not None else None,
        )  # fmt: skip
    # Order ids grow with the log, so `after_order_id` pages through a participant's orders in order. One
    # more than a page tells whether more follow; nsmallest keeps a page, not a sort of every order.
    mine = heapq.nsmallest(MAX_ORDERS_PER_ANSWER + 1, (
        order_id
        for order_id in state.live_ids.get(who, {}).values()
        if order_id > query.after_order_id
        and order_id in state.orders
        and (not query.instrument or state.orders[order_id].instrument == query.instrument)
    ))  # fmt: skip
    page = mine[:MAX_ORDERS_PER_ANSWER]
    return OpenOrdersAnswered(
        participant=who, client_order_id=cid, as_of=seq,
        orders=tuple(_view(state.orders[order_id]) for order_id in page), more=len(mine) > len(page),
    )  # fmt: skip


def _view(order: OpenOrder) -> OpenOrderView:
    return OpenOrderView(
        order.order_id, order.client_order_id, order.instrument, order.side, order.price, order.leaves,
        order.cum,
    )
