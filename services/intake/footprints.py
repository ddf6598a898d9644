"""Footprint data at the edge: published factor tables, activities recorded against them, cut-offs and
explicit recalculations. Factors come from the tables in the log, never from a file read later."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from services.intake.fields import SHA256_HEX, check_owned_product
from shared.domain.base import Refused
from shared.domain.codec import Event
from shared.domain.footprint import CURRENT_TABLE, grams_co2e, load_table_file
from shared.domain.labels import (
    ClaimRulesSet,
    CutOffDeclared,
    FactorTablePublished,
    FootprintRecalculated,
    published,
)
from shared.domain.reasons import Reason
from shared.domain.registry import STAGES, ActivityRecorded
from shared.protocol import RegistryMsg

__all__ = ["FOOTPRINT_ACTIONS", "FootprintBook", "claim_rules_event", "publish_event"]

_MAX_JUSTIFICATION = 500


@dataclass
class FootprintBook:
    """What intake knows of footprints: the published tables, each product's table and activities."""

    tables: dict[str, FactorTablePublished] = field(default_factory=dict)
    product_table: dict[str, str] = field(default_factory=dict)
    activities: dict[str, list[ActivityRecorded]] = field(default_factory=dict)

    def evolve(self, event: Event) -> None:
        match event:
            case FactorTablePublished():
                self.tables.setdefault(event.version, event)
            case ActivityRecorded():
                self.activities.setdefault(event.product, []).append(event)
                self.product_table.setdefault(event.product, event.factor_table)
            case FootprintRecalculated():
                self.activities[event.product] = list(event.activities)
                self.product_table[event.product] = event.to_table
            case _:
                pass

    def table(self, version: str) -> FactorTablePublished:
        found = self.tables.get(version)
        if found is None:
            text = f"factor table {version!r} is not published (operator: publish_factor_table)"
            raise Refused(Reason.UNPUBLISHED_FACTOR_TABLE, text)
        return found

    def check_new(self, event: FactorTablePublished) -> None:
        """A version is published once: the same content again, or another one under it, is refused."""
        old = self.tables.get(event.version)
        if old is not None:
            same = "the same content" if old.sha256 == event.sha256 else f"content {old.sha256[:12]}..."
            raise Refused(Reason.FACTOR_TABLE_EXISTS, f"factor table {event.version} is published already, "
                                                      f"with {same}: publish a new version")  # fmt: skip


class _Publish(msgspec.Struct, forbid_unknown_fields=True):
    version: str
    sha256: str  # what the operator checked: the file must hash to it


class _Rules(msgspec.Struct, forbid_unknown_fields=True):
    max_vintage_age_years: int
    label_validity_days: int


def publish_event(args: dict[str, Any]) -> Event:
    """The shipped table `version`, read now, if it hashes to the `sha256` the operator gives."""
    p = msgspec.convert(args, _Publish)
    if not SHA256_HEX.fullmatch(p.sha256):
        raise ValueError("sha256 must be the lower-case hex SHA-256 of the table's canonical content")
    event = published(load_table_file(p.version))
    if event.sha256 != p.sha256:
        raise ValueError(f"table {p.version} hashes to {event.sha256}, not {p.sha256}")
    return event


def claim_rules_event(args: dict[str, Any]) -> Event:
    r = msgspec.convert(args, _Rules)
    if not 0 <= r.max_vintage_age_years <= 50 or not 1 <= r.label_validity_days <= 3660:
        raise ValueError("max_vintage_age_years must be 0..50 and label_validity_days 1..3660")
    return ClaimRulesSet(
        max_vintage_age_years=r.max_vintage_age_years, label_validity_days=r.label_validity_days
    )


class _Activity(msgspec.Struct, forbid_unknown_fields=True):
    product: str
    stage: str
    factor: str
    amount: str
    factor_table: str = ""  # default: the product's table (the first activity's: v1)


class _CutOff(msgspec.Struct, forbid_unknown_fields=True):
    product: str
    stage: str
    justification: str


class _Recalculate(msgspec.Struct, forbid_unknown_fields=True):
    product: str
    factor_table: str


def _stage(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}")
    return stage


def _activity(msg: RegistryMsg, products: Mapping[str, str], book: FootprintBook) -> Event:
    a = msgspec.convert(msg.args, _Activity)
    check_owned_product(a.product, msg.participant, products)
    _stage(a.stage)
    # Bounded, so a recalculation (one entry holding every activity of the product) stays small.
    if len(a.amount) > MAX_AMOUNT_CHARS:
        raise ValueError(f"amount is at most {MAX_AMOUNT_CHARS} characters")
    if len(book.activities.get(a.product, ())) >= MAX_ACTIVITIES:
        raise ValueError(f"{a.product} has {MAX_ACTIVITIES} activities already, the most one product takes")
    current = book.product_table.get(a.product, "")
    version = a.factor_table or current or CURRENT_TABLE
    if current and version != current:
        text = f"{a.product} is calculated with table {current}: move it to {version} with recalculate"
        raise Refused(Reason.MIXED_FACTOR_TABLES, text)
    factor = book.table(version).factor(a.factor)
    if factor is None:
        raise Refused(Reason.UNKNOWN_FACTOR, f"no factor {a.factor!r} in table {version!r}")
    return ActivityRecorded(
        participant=msg.participant, client_order_id=msg.client_order_id, product=a.product, stage=a.stage,
        factor_key=a.factor, factor_table=version, amount=a.amount, unit=factor.unit,
        factor=factor.kg_co2e, grams=grams_co2e(a.amount, factor.kg_co2e),
    )  # fmt: skip


MAX_ACTIVITIES = 200  # activity lines per product: a bill of materials, not a ledger
MAX_AMOUNT_CHARS = 32


def _cut_off(msg: RegistryMsg, products: Mapping[str, str], book: FootprintBook) -> Event:
    c = msgspec.convert(msg.args, _CutOff)
    check_owned_product(c.product, msg.participant, products)
    if not 20 <= len(c.justification.strip()) <= _MAX_JUSTIFICATION:
        raise ValueError(f"justification must be 20-{_MAX_JUSTIFICATION} characters: why it is negligible")
    return CutOffDeclared(participant=msg.participant, client_order_id=msg.client_order_id, product=c.product,
                          stage=_stage(c.stage), justification=c.justification.strip())  # fmt: skip


def _recalculate(msg: RegistryMsg, products: Mapping[str, str], book: FootprintBook) -> Event:
    r = msgspec.convert(msg.args, _Recalculate)
    check_owned_product(r.product, msg.participant, products)
    current = book.product_table.get(r.product, "")
    if r.factor_table == current:
        raise ValueError(f"{r.product} is on table {current} already")
    table = book.table(r.factor_table)
    moved: list[ActivityRecorded] = []
    for old in book.activities.get(r.product, []):
        factor = table.factor(old.factor_key)
        if factor is None or factor.unit != old.unit:
            text = f"table {r.factor_table} has no factor {old.factor_key!r} in {old.unit}"
            raise Refused(Reason.UNKNOWN_FACTOR, text)
        grams = grams_co2e(old.amount, factor.kg_co2e)
        moved.append(
            msgspec.structs.replace(old, factor_table=r.factor_table, factor=factor.kg_co2e, grams=grams)
        )
    return FootprintRecalculated(participant=msg.participant, client_order_id=msg.client_order_id,
                                 product=r.product, from_table=current, to_table=r.factor_table,
                                 activities=tuple(moved))  # fmt: skip


FOOTPRINT_ACTIONS = {"record_activity": _activity, "declare_cutoff": _cut_off, "recalculate": _recalculate}
