"""Evolution of the verification state: how each fact moves cash, credits and reservations."""

from __future__ import annotations

import bisect

from services.verification.compliance import COMPLIANCE_FOLDED, evolve_compliance
from services.verification.compliance_state import Surrendering
from services.verification.state import (
    Account,
    Holding,
    Lot,
    OpenOrder,
    PendingReplace,
    Retiring,
    State,
    Unsettled,
    push,
    take,
    unit_reservation,
)
from shared.domain.certificates import Origin, split_serials
from shared.domain.codec import Event
from shared.domain.compliance import CreditsSurrendered, SurrenderApproved
from shared.domain.eligibility import with_window
from shared.domain.events import (
    InstrumentListed,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from shared.domain.ledger import (
    EXCHANGE_ACCOUNT,
    CashDeposited,
    CashWithdrawn,
    CreditsIssued,
    LimitsSet,
    OrderSubmitted,
    OrderVerified,
    ParticipantRegistered,
    ReplaceVerified,
    SerialRange,
    TradeSettled,
)
from shared.domain.registry import (
    CreditsRetired,
    EligibilityChanged,
    RetirementApproved,
    RetirementRejected,
    VerificationAccepted,
)
from shared.domain.values import OrderType, Side

__all__ = ["evolve", "order_unit"]


def order_unit(state: State, ev: OrderSubmitted | OrderVerified) -> int:
    """What one tonne of the order freezes (see unit_reservation); 0 for nonsense terms.

    A zero or negative quantity or limit price reserves nothing, never a negative amount: matching rejects
    such orders itself, with the precise reason.
    """
    market = ev.order_type is OrderType.MARKET
    if ev.quantity <= 0 or (not market and ev.price <= 0):
        return 0
    # A market buy trades at most at today's band high.
    price = state.instruments[ev.instrument].band_high if market else ev.price
    return unit_reservation(ev.side, price)


def evolve(state: State, event: Event) -> None:
    """Apply a fact; never refuses (facts about orders it does not know change nothing)."""
    match event:
        case OrderVerified():
            _on_verified(state, event)
        case ReplaceVerified():
            _on_replace_verified(state, event)
        case OrderAccepted():
            _on_accepted(state, event)
        case OrderRejected():
            _on_rejected(state, event)
        case TradeExecuted():
            _on_trade(state, event)
        case OrderCancelled() | OrderExpired():
            _close(state, event.order_id)
        case OrderReplaced():
            _on_replaced(state, event)
        case TradeSettled():
            _on_settled(state, event)
        case RetirementApproved():
            selected = event.selection is not None
            state.retiring.append(
                Retiring(event.request_seq, event.participant, event.instrument, event.quantity, selected)
            )
            _holding(state, event.participant, event.instrument).frozen += event.quantity
        case CreditsRetired():
            _on_retired(state, event)
        case SurrenderApproved():
            state.compliance.surrendering.append(
                Surrendering(event.request_seq, event.participant, event.instrument, event.quantity)
            )
            _holding(state, event.participant, event.instrument).frozen += event.quantity
        case CreditsSurrendered():
            _on_surrendered(state, event)
        case RetirementRejected() if event.request_seq:
            _release_retirement(state, event.participant, event.instrument, event.request_seq)
        case _:
            _on_operator_fact(state, event)
    if type(event).__name__ in COMPLIANCE_FOLDED:
        evolve_compliance(state, event)


def _on_operator_fact(state: State, event: Event) -> None:
    match event:
        case InstrumentListed():
            state.instruments[event.instrument.symbol] = event.instrument
        case ParticipantRegistered():
            state.permissions[event.participant] = event.instruments
        case CashDeposited():
            _account(state, event.participant).cash += event.amount
        case CashWithdrawn():
            _account(state, event.participant).cash -= event.amount
        case EligibilityChanged():
            inst = state.instruments.get(event.instrument)
            if inst is not None:
                state.instruments[event.instrument] = with_window(inst, event)
        case CreditsIssued():
            _on_issued(state, event)
        case VerificationAccepted():
            instruments = state.verified.setdefault(event.verifier, [])
            if event.instrument not in instruments:
                instruments.append(event.instrument)
                instruments.sort()
        case LimitsSet():
            if event.max_open_orders:
                state.max_open_orders[event.participant] = event.max_open_orders
            else:
                state.max_open_orders.pop(event.participant, None)
        case _:
            pass  # not an input: nothing verification tracks


def _on_issued(state: State, ev: CreditsIssued) -> None:
    s = ev.serials
    _holding(state, ev.participant, ev.instrument).held += s.tonnes
    origin = Origin(s.start, s.end, ev.standard, ev.project, ev.vintage)
    bisect.insort(state.origins.setdefault(ev.instrument, []), origin, key=lambda o: o.start)
    if ev.standard:
        _add_lot(_holding(state, ev.participant, ev.instrument), ev.standard, ev.vintage, s.tonnes)


def _move_lots(
    state: State, instrument: str, serials: tuple[SerialRange, ...], source: str, to: str | None
) -> None:
    """Registry credits among `serials` leave `source`'s lots (and join `to`'s), by standard and vintage."""
    origins = state.origins.get(instrument, [])
    for block in serials:
        for piece, origin in split_serials(origins, block):
            if origin is None or not origin.standard:
                continue
            _add_lot(_holding(state, source, instrument), origin.standard, origin.vintage, -piece.tonnes)
            if to is not None:
                _add_lot(_holding(state, to, instrument), origin.standard, origin.vintage, piece.tonnes)


def _add_lot(holding: Holding, standard: str, vintage: int, tonnes: int) -> None:
    """Lots stay sorted and without empty entries, so equal holdings snapshot equally."""
    lots = holding.lots
    at = bisect.bisect_left(lots, (standard, vintage), key=lambda lot: (lot.standard, lot.vintage))
    if at < len(lots) and (lots[at].standard, lots[at].vintage) == (standard, vintage):
        lots[at].tonnes += tonnes
        if not lots[at].tonnes:
            del lots[at]
    else:
        # A lot never goes negative on facts settlement decided; should one, check_state says so.
        lots.insert(at, Lot(standard, vintage, tonnes))


def _on_verified(state: State, ev: OrderVerified) -> None:
    unit = order_unit(state, ev)
    order = OpenOrder(
        order_id=ev.order_id,
        participant=ev.participant,
        client_order_id=ev.client_order_id,
        instrument=ev.instrument,
        side=ev.side,
        unit=unit,
        leaves=ev.quantity,
        cum=0,
        reserved=0,
        price=ev.price,
    )
    state.orders[ev.order_id] = order
    _freeze(state, order, ev.reserved_cash + ev.reserved_qty)
    push(state.awaiting, ev.participant, ev.client_order_id, ev.order_id)
    # A reused client id stays with its first order; matching rejects the newcomer as a duplicate.
    state.live_ids.setdefault(ev.participant, {}).setdefault(ev.client_order_id, ev.order_id)


def _on_replace_verified(state: State, ev: ReplaceVerified) -> None:
    extra = ev.extra_cash + ev.extra_qty
    order = state.orders.get(ev.order_id)
    if order is not None:
        _freeze(state, order, extra)
        order.pending_extra += extra
    push(state.replaces, ev.participant, ev.client_order_id, PendingReplace(ev.order_id, extra))


def _on_accepted(state: State, ev: OrderAccepted) -> None:
    take(state.awaiting, ev.participant, ev.client_order_id, ev.order_id)
    if ev.order_id in state.orders:
        state.live_ids.setdefault(ev.participant, {})[ev.client_order_id] = ev.order_id


def _on_rejected(state: State, ev: OrderRejected) -> None:
    if ev.command == "new_order":
        order_id = take(state.awaiting, ev.participant, ev.client_order_id)
        if order_id is not None:
            _close(state, order_id)
    elif ev.command == "replace_order":
        pending = take(state.replaces, ev.participant, ev.client_order_id)
        order = state.orders.get(pending.order_id) if pending is not None else None
        if pending is not None and order is not None:
            order.pending_extra -= pending.extra
            _release(state, order, min(pending.extra, order.reserved))


def _on_replaced(state: State, ev: OrderReplaced) -> None:
    pending = take(state.replaces, ev.participant, ev.client_order_id)
    order = state.orders.get(ev.order_id)
    if order is None:
        return
    if pending is not None:
        order.pending_extra -= pending.extra  # the extra now backs the new terms
    _drop_live_id(state, order)
    order.client_order_id = ev.client_order_id
    order.unit = unit_reservation(order.side, ev.price)
    order.price = ev.price
    order.leaves = ev.leaves
    order.cum = ev.cum_qty
    state.live_ids.setdefault(ev.participant, {})[ev.client_order_id] = ev.order_id


def _on_trade(state: State, ev: TradeExecuted) -> None:
    maker_buys = ev.maker_side is Side.BUY
    maker = (ev.maker_order_id, ev.maker_leaves, ev.maker_cum)
    taker = (ev.taker_order_id, ev.taker_leaves, ev.taker_cum)
    buy, sell = (maker, taker) if maker_buys else (taker, maker)
    cash = _take_fill(state, *buy, ev.quantity)
    qty = _take_fill(state, *sell, ev.quantity)
    buyer, seller = ev.maker_participant, ev.taker_participant
    if not maker_buys:
        buyer, seller = seller, buyer
    state.unsettled[ev.trade_id] = Unsettled(ev.trade_id, buyer, cash, seller, ev.instrument, qty)


def _take_fill(state: State, order_id: int, leaves: int, cum: int, qty: int) -> int:
    """Move a fill's share of the reservation out of its order, still frozen until settlement."""
    order = state.orders.get(order_id)
    if order is None:
        return 0
    share = order.reserved if leaves == 0 else min(order.reserved, qty * order.unit)
    order.reserved -= share
    order.leaves = leaves
    order.cum = cum
    if leaves == 0:
        del state.orders[order_id]
        _drop_live_id(state, order)
    return share


def _on_settled(state: State, ev: TradeSettled) -> None:
    _account(state, ev.buyer).cash -= ev.cash + ev.buyer_fee
    _account(state, ev.seller).cash += ev.cash - ev.seller_fee
    _account(state, EXCHANGE_ACCOUNT).cash += ev.buyer_fee + ev.seller_fee
    _holding(state, ev.seller, ev.instrument).held -= ev.quantity
    _holding(state, ev.buyer, ev.instrument).held += ev.quantity
    _move_lots(state, ev.instrument, ev.serials, ev.seller, ev.buyer)
    trade = state.unsettled.pop(ev.trade_id, None)
    if trade is not None:
        _account(state, trade.buyer).frozen_cash -= trade.cash
        _holding(state, trade.seller, trade.instrument).frozen -= trade.qty


def _on_retired(state: State, ev: CreditsRetired) -> None:
    """The serials left the holding for good: they are no longer held, nor frozen for the retirement."""
    holding = _holding(state, ev.participant, ev.instrument)
    holding.held -= ev.tonnes
    _move_lots(state, ev.instrument, ev.serials, ev.participant, None)
    _release_retirement(state, ev.participant, ev.instrument, ev.request_seq)


def _release_retirement(state: State, participant: str, instrument: str, request_seq: int) -> None:
    """The retirement of `request_seq` is done or refused: what it froze is frozen no more."""
    for i, retiring in enumerate(state.retiring):
        if retiring.request_seq == request_seq:
            _holding(state, participant, instrument).frozen -= retiring.qty
            del state.retiring[i]
            break


def _on_surrendered(state: State, ev: CreditsSurrendered) -> None:
    """Like a retirement: the serials leave the holding, and the surrender's freeze goes with them."""
    holding = _holding(state, ev.participant, ev.instrument)
    holding.held -= ev.tonnes
    _move_lots(state, ev.instrument, ev.serials, ev.participant, None)
    surrendering = state.compliance.surrendering
    at = next((i for i, s in enumerate(surrendering) if s.request_seq == ev.request_seq), None)
    if at is not None:
        holding.frozen -= surrendering.pop(at).qty


# ---------------------------------------------------------------- reservations


def _close(state: State, order_id: int) -> None:
    """The order is over: everything it still holds becomes available again."""
    order = state.orders.pop(order_id, None)
    if order is not None:
        _release(state, order, order.reserved)
        _drop_live_id(state, order)


def _drop_live_id(state: State, order: OpenOrder) -> None:
    by_id = state.live_ids.get(order.participant, {})
    if by_id.get(order.client_order_id) == order.order_id:
        del by_id[order.client_order_id]
        if not by_id:
            del state.live_ids[order.participant]


def _freeze(state: State, order: OpenOrder, amount: int) -> None:
    order.reserved += amount
    if order.side is Side.BUY:
        _account(state, order.participant).frozen_cash += amount
    else:
        _holding(state, order.participant, order.instrument).frozen += amount


def _release(state: State, order: OpenOrder, amount: int) -> None:
    _freeze(state, order, -amount)


def _account(state: State, participant: str) -> Account:
    account = state.accounts.get(participant)
    if account is None:
        account = state.accounts[participant] = Account()
    return account


def _holding(state: State, participant: str, instrument: str) -> Holding:
    credits = _account(state, participant).credits
    holding = credits.get(instrument)
    if holding is None:
        holding = credits[instrument] = Holding()
    return holding
