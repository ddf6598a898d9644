"""Order validity rules shared by intake (at the edge) and the matching core (defence in depth)."""

from __future__ import annotations

from shared.domain.instruments import Instrument
from shared.domain.reasons import Reason

__all__ = ["MAX_ORDER_QTY", "price_problem", "quantity_problem"]

MAX_ORDER_QTY = 1_000_000_000  # tonnes; anything larger is a typo or an attack


def price_problem(inst: Instrument, price: int) -> tuple[Reason, str] | None:
    """Why a limit price is not acceptable today, or None."""
    if price <= 0:
        return Reason.INVALID_PRICE, f"price {price} must be positive"
    if price % inst.tick_size:
        return Reason.INVALID_TICK, f"price {price} fen is not a multiple of tick {inst.tick_size}"
    if price < inst.band_low or price > inst.band_high:
        return (
            Reason.OUTSIDE_PRICE_BAND,
            f"price {price} fen outside today's band [{inst.band_low}, {inst.band_high}]",
        )
    return None


def quantity_problem(inst: Instrument, quantity: int) -> tuple[Reason, str] | None:
    """Why an order quantity is not acceptable, or None."""
    if quantity <= 0 or quantity > MAX_ORDER_QTY:
        return Reason.INVALID_QUANTITY, f"quantity {quantity} must be in 1..{MAX_ORDER_QTY}"
    if quantity % inst.lot_size:
        return Reason.INVALID_LOT, f"quantity {quantity} is not a multiple of lot {inst.lot_size}"
    return None
