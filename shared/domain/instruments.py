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
    # Offset eligibility (added later, so defaulted and last): which registry standards and vintages
    # the instrument pools. Empty standards = its own `standard` only; a vintage bound of 0 = open.
    eligible_standards: tuple[str, ...] = ()
    min_vintage: int = 0
    max_vintage: int = 0

    def accepts_standard(self, standard: str) -> bool:
        """Whether credits of registry `standard` may be pooled into this instrument."""
        return standard in (self.eligible_standards or (self.standard,))

    def accepts_vintage(self, vintage: int) -> bool:
        """Whether credits of `vintage` are inside the instrument's vintage window."""
        return (not self.min_vintage or vintage >= self.min_vintage) and (
            not self.max_vintage or vintage <= self.max_vintage
        )

    @property
    def band_low(self) -> int:
        """Lowest limit price accepted today (inclusive)."""
        return self.reference_price - self.reference_price * self.band_bps // 10_000

    @property
    def band_high(self) -> int:
        """Highest limit price accepted today (inclusive)."""
        return self.reference_price + self.reference_price * self.band_bps // 10_000
