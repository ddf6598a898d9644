"""Order validity rules shared by intake (at the edge) and the matching core (defence in depth)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from shared.domain.base import Refused
from shared.domain.instruments import Instrument
from shared.domain.reasons import Reason
from shared.domain.values import fen_to_price, price_to_fen

__all__ = ["MAX_ORDER_QTY", "price_in_fen", "price_problem", "quantity_problem"]

MAX_ORDER_QTY = 1_000_000_000  # tonnes; anything larger is a typo or an attack


def price_problem(inst: Instrument, price: int) -> tuple[Reason, str] | None:
    """Why a limit price is not acceptable today, or None."""
    shown = fen_to_price(price)  # clients speak CNY
    if price <= 0:
        return Reason.INVALID_PRICE, f"price {shown} CNY must be positive"
    if price % inst.tick_size:
        tick = fen_to_price(inst.tick_size)
        return Reason.INVALID_TICK, f"price {shown} CNY is not a multiple of the tick {tick}"
    if price < inst.band_low or price > inst.band_high:
        low, high = fen_to_price(inst.band_low), fen_to_price(inst.band_high)
        return Reason.OUTSIDE_PRICE_BAND, f"price {shown} CNY is outside today's band {low}-{high} CNY"
    return None


def price_in_fen(text: str) -> int:
    """A client's price in fen; Refused with `invalid_tick` for a decimal finer than a fen (off every
    tick), `malformed` for anything that is not a decimal price at all."""
    try:
        return price_to_fen(text)
    except ValueError as exc:
        if _finer_than_a_fen(text):
            finer = f"price {text} is finer than the smallest tick, 0.01 CNY"
            raise Refused(Reason.INVALID_TICK, finer) from exc
        raise Refused(Reason.MALFORMED, str(exc)) from exc


def _finer_than_a_fen(text: str) -> bool:
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return False
    exponent = value.as_tuple().exponent
    # A few places too many is a price off the tick; a huge exponent is not a price anyone meant.
    return value.is_finite() and isinstance(exponent, int) and -40 <= exponent < -2


def quantity_problem(inst: Instrument, quantity: int) -> tuple[Reason, str] | None:
    """Why an order quantity is not acceptable, or None."""
    if quantity <= 0 or quantity > MAX_ORDER_QTY:
        return Reason.INVALID_QUANTITY, f"quantity {quantity} must be in 1..{MAX_ORDER_QTY}"
    if quantity % inst.lot_size:
        return Reason.INVALID_LOT, f"quantity {quantity} is not a multiple of lot {inst.lot_size}"
    return None
