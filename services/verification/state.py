"""State of the verification core: accounts, open-order reservations, and answers awaited from matching."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from services.verification.compliance_state import ComplianceState
from shared.domain.certificates import Origin
from shared.domain.fees import MAX_FEE_BPS, fee
from shared.domain.instruments import Instrument
from shared.domain.values import Side

__all__ = [
    "Account",
    "Holding",
    "Lot",
    "OpenOrder",
    "PendingReplace",
    "Unsettled",
    "Retiring",
    "State",
    "InvariantError",
    "unit_reservation",
    "push",
    "take",
    "encode_state",
    "decode_state",
    "check_state",
]

T = TypeVar("T")


def unit_reservation(side: Side, price: int) -> int:
    """What one tonne of an order freezes: fen for a buy at limit `price`, one tonne for a sell.

    The fee is rounded up per tonne, not per order: settlement charges fee() per trade, each rounded up, so
    10 t at 58.00 filled one tonne at a time pays 10 x 3 = 30 fen of taker fee where fee(58000) is 29.
    Ceiling is subadditive, so qty x fee(price) covers every way the order can be split.
    """
    if side is Side.SELL:
        return 1
    return price + fee(price, MAX_FEE_BPS) if price > 0 else 0


class Lot(msgspec.Struct, array_like=True):
    """Held tonnes of registry credits of one standard and vintage, whatever their serials."""

    standard: str
    vintage: int
    tonnes: int


class Holding(msgspec.Struct, array_like=True):
    """Tonnes of one instrument a participant holds, and how many of them open sells and retirements
    have frozen; `lots` splits the registry credits among them by (standard, vintage), sorted, so an
    eligibility window can count the eligible ones. Held tonnes outside every lot are operator blocks
    (allowances), which no window excludes."""

    held: int = 0
    frozen: int = 0
    lots: list[Lot] = []


class Account(msgspec.Struct):
    """Cash in fen (total and frozen) and credit holdings by instrument symbol."""

    cash: int = 0
    frozen_cash: int = 0
    credits: dict[str, Holding] = {}


class OpenOrder(msgspec.Struct):
    """An order verification froze for; `reserved` is what it still holds (fen for buys, tonnes for sells)."""

    order_id: int
    participant: str
    client_order_id: str
    instrument: str
    side: Side
    unit: int  # reservation per tonne of leaves at the current limit price
    leaves: int
    cum: int
    reserved: int
    pending_extra: int = 0  # frozen for amendments matching has not answered yet
    price: int = 0  # the limit in fen (0: market), for order status answers


class PendingReplace(msgspec.Struct, array_like=True):
    """An amendment verification froze `extra` for and matching has yet to apply or reject."""

    order_id: int
    extra: int


class Unsettled(msgspec.Struct, array_like=True):
    """Reservations an executed trade moved out of its orders; frozen until the trade settles."""

    trade_id: int
    buyer: str
    cash: int
    seller: str
    instrument: str
    qty: int


class Retiring(msgspec.Struct, array_like=True):
    """Tonnes frozen for an approved retirement until settlement moves the serials out."""

    request_seq: int
    participant: str
    instrument: str
    qty: int
    selected: bool = False  # the retirement chose its blocks (settlement may still refuse them)


class State(msgspec.Struct):
    """Everything verification knows: its projection of the log."""

    instruments: dict[str, Instrument] = {}
    permissions: dict[str, tuple[str, ...]] = {}  # participant -> instruments it may trade; empty = all
    accounts: dict[str, Account] = {}
    orders: dict[int, OpenOrder] = {}
    live_ids: dict[str, dict[str, int]] = {}  # participant -> client order id -> order id
    # Matching answers verified orders and amendments in log order, so FIFO per client id pairs each
    # answer with its request even when matching rejects with order_id 0 (duplicate id, halted book).
    awaiting: dict[str, dict[str, list[int]]] = {}
    replaces: dict[str, dict[str, list[PendingReplace]]] = {}
    unsettled: dict[int, Unsettled] = {}
    retiring: list[Retiring] = []  # in approval order, which is the order settlement answers in
    origins: dict[str, list[Origin]] = {}  # instrument -> issued blocks by start: serials -> vintages
    max_open_orders: dict[str, int] = {}  # the operator's limits (LimitsSet); absent: the default
    # verifier -> the instruments pooling projects it verified: it may not trade them (conflict of interest)
    verified: dict[str, list[str]] = {}
    compliance: ComplianceState = msgspec.field(default_factory=ComplianceState)


class InvariantError(AssertionError):
    """The books no longer add up: the service must stop and rebuild from the log."""


def push(table: dict[str, dict[str, list[T]]], participant: str, client_order_id: str, item: T) -> None:
    table.setdefault(participant, {}).setdefault(client_order_id, []).append(item)


def take(
    table: dict[str, dict[str, list[T]]],
    participant: str,
    client_order_id: str,
    item: T | None = None,
) -> T | None:
    """Remove `item` (default: the oldest) queued under the key; drop emptied entries to keep snapshots
    canonical. None if there was nothing to take."""
    by_id = table.get(participant, {})
    items = by_id.get(client_order_id, [])
    if item is None and items:
        item = items[0]
    if item is None or item not in items:
        return None
    items.remove(item)
    if not items:
        del by_id[client_order_id]
        if not by_id:
            del table[participant]
    return item


class _Snapshot(msgspec.Struct, array_like=True):
    """State with its int-keyed maps as sorted lists: canonical encoding needs str keys."""

    state: State
    orders: list[OpenOrder]
    unsettled: list[Unsettled]


_encoder = msgspec.msgpack.Encoder(order="deterministic")
_decoder = msgspec.msgpack.Decoder(_Snapshot)


def encode_state(state: State) -> bytes:
    """Canonical bytes: equal states encode equally whatever order their maps were filled in."""
    rest = msgspec.structs.replace(state, orders={}, unsettled={})
    orders = [state.orders[k] for k in sorted(state.orders)]
    unsettled = [state.unsettled[k] for k in sorted(state.unsettled)]
    return _encoder.encode(_Snapshot(rest, orders, unsettled))


def decode_state(data: bytes) -> State:
    snap = _decoder.decode(data)
    state = snap.state
    state.orders = {o.order_id: o for o in snap.orders}
    state.unsettled = {u.trade_id: u for u in snap.unsettled}
    return state


def check_state(state: State) -> None:
    """Raise InvariantError unless balances are non-negative and frozen amounts match their reasons."""
    cash_due, credits_due = _reserved(state)
    for participant, account in state.accounts.items():
        _require(
            0 <= account.frozen_cash <= account.cash,
            f"{participant}: frozen {account.frozen_cash} of cash {account.cash}",
        )
        _require(
            account.frozen_cash == cash_due.pop(participant, 0),
            f"{participant}: frozen cash {account.frozen_cash} is not what its orders reserve",
        )
        for symbol, holding in account.credits.items():
            _require(
                0 <= holding.frozen <= holding.held,
                f"{participant}/{symbol}: frozen {holding.frozen} of {holding.held} t",
            )
            _require(
                holding.frozen == credits_due.pop((participant, symbol), 0),
                f"{participant}/{symbol}: frozen {holding.frozen} t is not what its orders reserve",
            )
            keys = [(lot.standard, lot.vintage) for lot in holding.lots]
            _require(
                keys == sorted(set(keys))
                and all(lot.tonnes > 0 for lot in holding.lots)
                and sum(lot.tonnes for lot in holding.lots) <= holding.held,
                f"{participant}/{symbol}: lots {holding.lots} do not split the {holding.held} t held",
            )
    _require(
        not any(cash_due.values()) and not any(credits_due.values()),
        f"reservations without an account: {cash_due} {credits_due}",
    )


def _reserved(state: State) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Fen per participant and tonnes per (participant, instrument) that orders and unsettled fills hold."""
    cash_due: dict[str, int] = {}
    credits_due: dict[tuple[str, str], int] = {}
    for order in state.orders.values():
        _require(order.reserved >= 0, f"order {order.order_id} reserves {order.reserved}")
        # An amendment in flight may hold for the old and new terms at once; check orders without one.
        if not order.pending_extra:
            _require(
                order.reserved >= order.leaves * order.unit,
                f"order {order.order_id} reserves {order.reserved} for {order.leaves} x {order.unit}",
            )
        if order.side is Side.BUY:
            cash_due[order.participant] = cash_due.get(order.participant, 0) + order.reserved
        else:
            key = (order.participant, order.instrument)
            credits_due[key] = credits_due.get(key, 0) + order.reserved
    for trade in state.unsettled.values():
        cash_due[trade.buyer] = cash_due.get(trade.buyer, 0) + trade.cash
        key = (trade.seller, trade.instrument)
        credits_due[key] = credits_due.get(key, 0) + trade.qty
    frozen_out = [(r.participant, r.instrument, r.qty) for r in state.retiring]
    frozen_out += [(s.participant, s.instrument, s.qty) for s in state.compliance.surrendering]
    for participant, instrument, qty in frozen_out:
        credits_due[(participant, instrument)] = credits_due.get((participant, instrument), 0) + qty
    return cash_due, credits_due


def _require(condition: bool, text: str) -> None:
    if not condition:
        raise InvariantError(text)
