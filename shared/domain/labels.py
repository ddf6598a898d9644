"""Events that make footprint labels and claims truthful: published factor tables, stage cut-offs,
explicit recalculations, and the claim rules (docs/registry.md, "Labels and claims that tell the truth")."""

from __future__ import annotations

import hashlib
import json

import msgspec

from shared.domain.base import DomainEvent
from shared.domain.footprint import FactorTable
from shared.domain.registry import ActivityRecorded

__all__ = [
    "DEFAULT_LABEL_VALIDITY_DAYS",
    "DEFAULT_MAX_VINTAGE_AGE_YEARS",
    "ClaimRulesSet",
    "CutOffDeclared",
    "FactorTablePublished",
    "FootprintEvent",
    "FootprintRecalculated",
    "PublishedFactor",
    "published",
    "table_sha256",
]

# VCMI Claims Code of Practice: credits of a vintage at most five years before the claim period; the
# operator may set another window (ClaimRulesSet). A label is valid a year, as PAS 2060 declarations are.
DEFAULT_MAX_VINTAGE_AGE_YEARS = 5
DEFAULT_LABEL_VALIDITY_DAYS = 365


class PublishedFactor(msgspec.Struct, frozen=True, array_like=True):
    key: str
    unit: str
    kg_co2e: str  # decimal string
    source: str


class FactorTablePublished(DomainEvent, frozen=True):
    """A factor table, whole, with the SHA-256 of its canonical content: a version is published once and
    never changes (a new table is a new version)."""

    version: str
    sha256: str
    unit_of_factors: str
    caveat: str
    factors: tuple[PublishedFactor, ...]  # by key

    def factor(self, key: str) -> PublishedFactor | None:
        return next((f for f in self.factors if f.key == key), None)


def published(table: FactorTable) -> FactorTablePublished:
    """The event that publishes `table`, its hash computed over the canonical content."""
    return FactorTablePublished(
        version=table.version, sha256=table_sha256(table), unit_of_factors=table.unit_of_factors,
        caveat=table.caveat,
        factors=tuple(
            PublishedFactor(k, f.unit, f.kg_co2e, f.source) for k, f in sorted(table.factors.items())
        ),
    )  # fmt: skip


def table_sha256(table: FactorTable | FactorTablePublished) -> str:
    """Hex SHA-256 of the table's canonical JSON (version, unit_of_factors, caveat, factors by key with
    unit, kg_co2e and source; keys sorted, no spaces, UTF-8): recomputable from the file or the log."""
    if isinstance(table, FactorTablePublished):
        rows = [(f.key, f.unit, f.kg_co2e, f.source) for f in table.factors]
    else:
        rows = [(k, f.unit, f.kg_co2e, f.source) for k, f in table.factors.items()]
    factors = {key: {"unit": unit, "kg_co2e": kg, "source": source} for key, unit, kg, source in rows}
    body = {"version": table.version, "unit_of_factors": table.unit_of_factors, "caveat": table.caveat,
            "factors": factors}  # fmt: skip
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class CutOffDeclared(DomainEvent, frozen=True):
    """The maker leaves a life-cycle stage out of the data, with the justification a verifier checks
    (ISO 14067 cut-off criteria): the stage then counts as covered, at 0 g."""

    participant: str
    client_order_id: str
    product: str
    stage: str
    justification: str


class FootprintRecalculated(DomainEvent, frozen=True):
    """The product moves to another factor table: every activity recomputed with the new table's factors.
    The only way a product changes table; labels after it use the new one alone."""

    participant: str
    client_order_id: str
    product: str
    from_table: str
    to_table: str
    activities: tuple[ActivityRecorded, ...]


class ClaimRulesSet(DomainEvent, frozen=True):
    """The operator's claim rules: how old a credit's vintage may be relative to a claim's period, and
    how long a label stays valid."""

    max_vintage_age_years: int = DEFAULT_MAX_VINTAGE_AGE_YEARS
    label_validity_days: int = DEFAULT_LABEL_VALIDITY_DAYS


FootprintEvent = FactorTablePublished | CutOffDeclared | FootprintRecalculated | ClaimRulesSet
