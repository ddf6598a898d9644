"""Instruments with their carbon attributes and trading rules (tick, lot, reference price, price band)."""

from __future__ import annotations

import enum

import msgspec

__all__ = ["Instrument", "InstrumentKind"]


class InstrumentKind(enum.StrEnum):
    ALLOWANCE = "allowance"  # compliance allowances such as SZEA or CEA
    OFFSET = "offset"  # project credits such as CCER or VCS


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """A tradable carbon product; prices in integer fen, quantities in integer tonnes."""

    symbol: str
    kind: InstrumentKind
    standard: str  # registry standard: SZEA, CEA, CCER, VCS, GS ...
    registry: str
    vintage: int
    project_type: str = ""
    tick_size: int = 1  # fen
    lot_size: int = 1  # tonnes
    reference_price: int  # fen; centre of the daily price band
    band_bps: int = 1000  # +-10 % by default, in basis points

    @property
    def band_low(self) -> int:
        """Lowest limit price accepted today (inclusive)."""
        return self.reference_price - self.reference_price * self.band_bps // 10_000

    @property
    def band_high(self) -> int:
        """Highest limit price accepted today (inclusive)."""
        return self.reference_price + self.reference_price * self.band_bps // 10_000
