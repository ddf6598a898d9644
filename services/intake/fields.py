"""What registry, footprint and compliance requests check alike: ids, report hashes, product ownership."""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.domain.base import Refused
from shared.domain.reasons import Reason

__all__ = ["REGISTRY_ID", "SHA256_HEX", "check_owned_product"]

# Project, product and scheme ids; project ids appear inside serial labels, so no dashes.
REGISTRY_ID = re.compile(r"[A-Za-z0-9_.]{1,64}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_owned_product(product: str, participant: str, products: Mapping[str, str]) -> None:
    """Refused unless `product` is registered (products: product -> maker) and `participant` makes it."""
    owner = products.get(product)
    if owner is None:
        raise Refused(Reason.UNKNOWN_PRODUCT, f"no product {product!r}")
    if owner != participant:
        raise Refused(Reason.NOT_OWNER, f"product {product!r} is not yours")
