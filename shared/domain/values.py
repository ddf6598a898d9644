"""Value types of the exchange: sides, order types, time in force, and integer money and tonnes."""

from __future__ import annotations

import enum
from decimal import Decimal, InvalidOperation

__all__ = [
    "FEN_PER_CNY",
    "OrderType",
    "Side",
    "TimeInForce",
    "fen_to_price",
    "price_to_fen",
]

# Prices and cash are integer fen (CNY 0.01); quantities are integer tonnes. Decimal lives only at the edges.
FEN_PER_CNY = 100


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    DAY = "DAY"
    IOC = "IOC"
    FOK = "FOK"


def price_to_fen(text: str) -> int:
    """Parse a decimal CNY string ("58.25") into integer fen; raise ValueError on anything finer or odd."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a decimal price: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite price: {text!r}")
    fen = value * FEN_PER_CNY
    if fen != fen.to_integral_value():
        raise ValueError(f"price finer than 0.01 CNY: {text!r}")
    return int(fen)


def fen_to_price(fen: int) -> str:
    """Render integer fen as a decimal CNY string with two places."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), FEN_PER_CNY)
    return f"{sign}{whole}.{part:02d}"
