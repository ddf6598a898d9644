"""Value types of the exchange: sides, order types, time in force, and integer money and tonnes."""

from __future__ import annotations

import enum
from decimal import Decimal, InvalidOperation

__all__ = [
    "FEN_PER_CNY",
    "MAX_DIGITS",
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


# The largest price or amount a string may give: 10^15 CNY. Without a bound, "1e999999999" overflows
# Decimal and "1e999990" turns into an integer of a million digits (seconds of CPU) at a client's word.
MAX_DIGITS = 32
_MAX_ADJUSTED_EXPONENT = 15


def price_to_fen(text: str) -> int:
    """Parse a decimal CNY string ("58.25") into integer fen; raise ValueError on anything finer or odd."""
    if not isinstance(text, str) or len(text) > MAX_DIGITS:
        raise ValueError(f"not a decimal price of at most {MAX_DIGITS} characters: {str(text)[:40]!r}")
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a decimal price: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite price: {text!r}")
    if value and value.adjusted() > _MAX_ADJUSTED_EXPONENT:
        raise ValueError(f"price out of range (at most 10^{_MAX_ADJUSTED_EXPONENT} CNY): {text!r}")
    if value and value.adjusted() < -2:  # also what would underflow to 0 in Decimal's context
        raise ValueError(f"price finer than 0.01 CNY: {text!r}")
    fen = value * FEN_PER_CNY
    if fen != fen.to_integral_value():
        raise ValueError(f"price finer than 0.01 CNY: {text!r}")
    return int(fen)


def fen_to_price(fen: int) -> str:
    """Render integer fen as a decimal CNY string with two places (the protocol's form)."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), FEN_PER_CNY)
    return f"{sign}{whole}.{part:02d}"


def fen_for_people(fen: int) -> str:
    """Integer fen as CNY for a person to read: thousands separated, two places (1,234,567.89)."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), FEN_PER_CNY)
    return f"{sign}{whole:,}.{part:02d}"
