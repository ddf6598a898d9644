"""What registry, footprint and compliance requests check alike: ids, report hashes, product ownership."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from shared.domain.base import Refused
from shared.domain.reasons import Reason

__all__ = ["MONTH_DAY", "REGISTRY_ID", "SHA256_HEX", "check_owned_product", "iso_date"]

# Project, product and scheme ids; project ids appear inside serial labels, so no dashes.
REGISTRY_ID = re.compile(r"[A-Za-z0-9_.]{1,64}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MONTH_DAY = re.compile(r"\d{2}-\d{2}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(value: str, what: str) -> datetime.date:
    """A real calendar day spelled exactly YYYY-MM-DD. `date.fromisoformat` alone also takes ISO week
    dates ("2025-W01-1") and basic forms ("20250101"), which would then be stored as they were sent and
    read as nonsense further on (security review F6)."""
    try:
        if _ISO_DATE.fullmatch(value):
            return datetime.date.fromisoformat(value)
    except ValueError:
        pass
    raise ValueError(f"{what} must be a date YYYY-MM-DD, not {value[:40]!r}")


def check_owned_product(product: str, participant: str, products: Mapping[str, str]) -> None:
    """Refused unless `product` is registered (products: product -> maker) and `participant` makes it."""
    owner = products.get(product)
    if owner is None:
        raise Refused(Reason.UNKNOWN_PRODUCT, f"no product {product!r}")
    if owner != participant:
        raise Refused(Reason.NOT_OWNER, f"product {product!r} is not yours")
