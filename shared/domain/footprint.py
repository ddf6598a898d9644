"""Emission factor tables shipped with the package and the footprint arithmetic (Decimal, at the edge)."""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import msgspec

__all__ = ["CURRENT_TABLE", "Factor", "FactorTable", "factor_table", "grams_co2e", "load_table_file"]

CURRENT_TABLE = "v1"
_DATA = Path(__file__).resolve().parents[1] / "data"
_MAX_AMOUNT = Decimal(10) ** 12  # per functional unit; anything larger is a typo


class Factor(msgspec.Struct, frozen=True):
    unit: str
    kg_co2e: str  # decimal string: factors are data, never floats
    source: str


class FactorTable(msgspec.Struct, frozen=True):
    version: str
    unit_of_factors: str
    caveat: str
    factors: dict[str, Factor]


@functools.cache
def factor_table(version: str = CURRENT_TABLE) -> FactorTable:
    """The versioned table `shared/data/emission_factors_<version>.json`, read once; ValueError if there
    is none. Footprints use the table as published into the log, not this (services/intake/footprints.py)."""
    return load_table_file(version)


def load_table_file(version: str) -> FactorTable:
    """The table file as it is now (what the operator publishes); ValueError if there is none."""
    if not version.isalnum():
        raise ValueError(f"bad factor table version {version!r}")
    path = _DATA / f"emission_factors_{version}.json"
    if not path.is_file():
        raise ValueError(f"no emission factor table {version!r}")
    return msgspec.json.decode(path.read_bytes(), type=FactorTable)


def grams_co2e(amount: str, kg_per_unit: str) -> int:
    """amount x factor in integer grams CO2e, rounded half up; ValueError on a bad or negative amount."""
    try:
        qty, factor = Decimal(amount), Decimal(kg_per_unit)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a decimal amount: {amount!r}") from exc
    if not qty.is_finite() or qty < 0 or qty > _MAX_AMOUNT:
        raise ValueError(f"amount {amount!r} must be a finite decimal in 0..10^12")
    return int((qty * factor * 1000).to_integral_value(rounding=ROUND_HALF_UP))
