"""The fee schedule: maker and taker fees in basis points of notional, rounded up to the fen."""

from __future__ import annotations

__all__ = ["MAKER_FEE_BPS", "MAX_FEE_BPS", "TAKER_FEE_BPS", "fee"]

MAKER_FEE_BPS = 2
TAKER_FEE_BPS = 5
MAX_FEE_BPS = max(MAKER_FEE_BPS, TAKER_FEE_BPS)


def fee(notional: int, bps: int) -> int:
    """Fee in fen on `notional` fen, rounded up so the exchange never under-collects."""
    return -(-notional * bps // 10_000)
