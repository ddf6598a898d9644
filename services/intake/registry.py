"""Registry commands at the edge: retire_credits and the participants' `registry` actions."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

import msgspec

from services.intake.fields import REGISTRY_ID, SHA256_HEX, check_owned_product, iso_date
from services.intake.footprints import FOOTPRINT_ACTIONS, FootprintBook
from shared.domain.base import Refused
from shared.domain.codec import Event
from shared.domain.ledger import SerialRange
from shared.domain.reasons import Reason
from shared.domain.registry import (
    BOUNDARIES,
    LabelRequested,
    NeutralityClaimSubmitted,
    ProductRegistered,
    RetirementKind,
    RetirementRequested,
    VerificationSubmitted,
)
from shared.domain.retirement import MAX_SELECTED_RANGES, BlockSelection, check_purpose
from shared.protocol import MAX_QUANTITY, RegistryMsg, RetireCreditsMsg

__all__ = ["REGISTRY_ACTIONS", "registry_event", "retirement_event"]

_MAX_TEXT = 200
MAX_CERTIFICATES = 50


class _Verification(msgspec.Struct, forbid_unknown_fields=True):
    project: str
    vintage: int
    period_start: str
    period_end: str
    tonnes: int
    report_hash: str
    signature: str = ""  # hex Ed25519 by the verifier's accredited key (shared/attestation.py)


class _Product(msgspec.Struct, forbid_unknown_fields=True):
    product: str
    model: str
    functional_unit: str
    boundary: str
    category: str = ""


class _ProductRef(msgspec.Struct, forbid_unknown_fields=True):
    product: str


class _Claim(msgspec.Struct, forbid_unknown_fields=True):
    product: str
    units: int  # covered by the certificates
    certificates: list[str]
    label: str  # the label id the claim is about
    period: str  # "2025", or ISO dates "2025-01-01/2025-06-30"
    units_shipped: int  # in the period


def _period(text: str) -> tuple[str, str]:
    """A year or an ISO 8601 interval of dates, as (first day, last day)."""
    if re.fullmatch(r"\d{4}", text):
        return f"{text}-01-01", f"{text}-12-31"
    start, sep, end = text.partition("/")
    first, last = iso_date(start, "period's first day"), iso_date(end, "period's last day")
    if not sep or first > last:
        raise ValueError("period must be a year (2025) or first/last ISO dates (2025-01-01/2025-06-30)")
    return first.isoformat(), last.isoformat()


def _text(value: str, what: str, *, required: bool = True) -> str:
    if (required and not value.strip()) or len(value) > _MAX_TEXT:
        raise ValueError(f"{what} must be 1-{_MAX_TEXT} characters")
    return value


def _id(value: str, what: str) -> str:
    if not REGISTRY_ID.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 of [A-Za-z0-9_.]")
    return value


def retirement_event(msg: RetireCreditsMsg) -> RetirementRequested:
    if not 0 < msg.quantity <= MAX_QUANTITY:
        raise Refused(Reason.INVALID_QUANTITY, f"quantity {msg.quantity} must be in 1..{MAX_QUANTITY}")
    return RetirementRequested(
        participant=msg.participant,
        client_order_id=msg.client_order_id,
        instrument=msg.instrument,
        quantity=msg.quantity,
        beneficiary=_text(msg.beneficiary, "beneficiary"),
        reason=_text(msg.reason, "reason", required=False),
        kind=RetirementKind.RETIRE,
        purpose=check_purpose(msg.purpose) if msg.purpose else "",
        identifier=_identifier(msg),
        selection=_selection(msg),
    )


_MAX_IDENTIFIER = 100


def _identifier(msg: RetireCreditsMsg) -> str:
    if len(msg.identifier) > _MAX_IDENTIFIER or not msg.identifier.isprintable():
        raise ValueError(f"identifier must be at most {_MAX_IDENTIFIER} printable characters")
    return msg.identifier


def _selection(msg: RetireCreditsMsg) -> BlockSelection | None:
    """The blocks asked for, checked for shape: settlement decides whether they are held free."""
    if not (msg.project or msg.vintage or msg.serials):
        return None
    if msg.project:
        _id(msg.project, "project")
    if msg.vintage < 0:
        raise ValueError("vintage must be a year (or 0: any)")
    ranges = [SerialRange(start, end) for start, end in sorted(msg.serials)]
    if len(ranges) > MAX_SELECTED_RANGES or any(not 0 < r.start <= r.end for r in ranges):
        raise ValueError(f"serials: at most {MAX_SELECTED_RANGES} ranges [start, end], 0 < start <= end")
    if any(a.end >= b.start for a, b in itertools.pairwise(ranges)):
        raise ValueError("serial ranges overlap")
    if ranges and sum(r.tonnes for r in ranges) != msg.quantity:
        raise ValueError(f"the serial ranges hold {sum(r.tonnes for r in ranges)} t, not the quantity")
    return BlockSelection(project=msg.project, vintage=msg.vintage, serials=tuple(ranges))


def _verification(msg: RegistryMsg, products: Mapping[str, str]) -> Event:
    v = msgspec.convert(msg.args, _Verification)
    start, end = iso_date(v.period_start, "period_start"), iso_date(v.period_end, "period_end")
    if start > end:
        raise ValueError("period_start is after period_end")
    if not start.year <= v.vintage <= end.year:
        raise ValueError(f"vintage {v.vintage} is outside the monitoring period")
    if not 0 < v.tonnes <= MAX_QUANTITY:
        raise ValueError(f"tonnes must be in 1..{MAX_QUANTITY}")
    if not SHA256_HEX.fullmatch(v.report_hash):
        raise ValueError("report_hash must be the lower-case hex sha256 of the report")
    if len(v.signature) > 128:
        raise ValueError("signature must be the hex Ed25519 signature (128 hex digits)")
    return VerificationSubmitted(
        participant=msg.participant, client_order_id=msg.client_order_id, project=_id(v.project, "project"),
        vintage=v.vintage, period_start=start.isoformat(), period_end=end.isoformat(), tonnes=v.tonnes,
        report_hash=v.report_hash, signature=v.signature,
    )  # fmt: skip


def _product(msg: RegistryMsg, products: Mapping[str, str]) -> Event:
    p = msgspec.convert(msg.args, _Product)
    if p.product in products:
        raise Refused(Reason.DUPLICATE_PRODUCT, f"product {p.product!r} is already registered")
    if p.boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {', '.join(BOUNDARIES)}")
    return ProductRegistered(
        participant=msg.participant, client_order_id=msg.client_order_id, product=_id(p.product, "product"),
        model=_text(p.model, "model"), functional_unit=_text(p.functional_unit, "functional_unit"),
        boundary=p.boundary, category=_text(p.category, "category", required=False),
    )  # fmt: skip


def _label(msg: RegistryMsg, products: Mapping[str, str]) -> Event:
    ref = msgspec.convert(msg.args, _ProductRef)
    if ref.product not in products:
        raise Refused(Reason.UNKNOWN_PRODUCT, f"no product {ref.product!r}")
    return LabelRequested(
        participant=msg.participant, client_order_id=msg.client_order_id, product=ref.product
    )


def _claim(msg: RegistryMsg, products: Mapping[str, str]) -> Event:
    c = msgspec.convert(msg.args, _Claim)
    check_owned_product(c.product, msg.participant, products)
    if not 0 < c.units <= c.units_shipped <= MAX_QUANTITY:
        raise ValueError(f"units must be in 1..units_shipped, units_shipped at most {MAX_QUANTITY}")
    start, end = _period(c.period)
    if not 0 < len(c.certificates) <= MAX_CERTIFICATES or len(set(c.certificates)) != len(c.certificates):
        raise ValueError(f"certificates must be 1-{MAX_CERTIFICATES} distinct ids")
    return NeutralityClaimSubmitted(
        participant=msg.participant, client_order_id=msg.client_order_id, product=c.product, units=c.units,
        certificates=tuple(c.certificates), label_id=c.label, period_start=start, period_end=end,
        units_shipped=c.units_shipped,
    )  # fmt: skip


REGISTRY_ACTIONS = {
    "submit_verification": _verification,
    "register_product": _product,
    "issue_label": _label,
    "claim_neutral": _claim,
}


def registry_event(msg: RegistryMsg, products: Mapping[str, str], book: FootprintBook) -> Event:
    """The request a `registry` message records; `products` maps product id -> owner, `book` holds the
    published factor tables and the products' activities.

    Raises Refused for domain refusals and ValueError/msgspec errors for malformed arguments.
    """
    footprint = FOOTPRINT_ACTIONS.get(msg.action)
    if footprint is not None:
        return footprint(msg, products, book)
    build = REGISTRY_ACTIONS.get(msg.action)
    if build is None:
        raise ValueError(f"unknown registry action {msg.action!r}")
    return build(msg, products)
