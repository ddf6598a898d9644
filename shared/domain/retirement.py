"""What a retirement record declares: its purpose, and which blocks of the holding it retires."""

from __future__ import annotations

import re

import msgspec

from shared.domain.ledger import SerialRange

__all__ = [
    "MAX_SELECTED_RANGES",
    "PRODUCT_CLAIM",
    "PURPOSES",
    "BlockSelection",
    "check_purpose",
    "product_claim_purpose",
]

# A retirement declares what it is for (docs/registry.md, "Retirement records"): the same tonne must
# not count for a company's own inventory and for a product's claim, so a claim only takes retirements
# that declared `product_claim:<that product>`. "" is what retirements logged before purposes had.
PURPOSES = ("corporate_inventory", "compliance", "voluntary")
PRODUCT_CLAIM = "product_claim:"
MAX_SELECTED_RANGES = 50


def product_claim_purpose(product: str) -> str:
    return f"{PRODUCT_CLAIM}{product}"


_PRODUCT_ID = re.compile(r"[A-Za-z0-9_.]{1,64}")  # as product ids are registered


def check_purpose(purpose: str) -> str:
    """`purpose` if it is one of PURPOSES or `product_claim:<product id>`; ValueError otherwise."""
    if purpose in PURPOSES:
        return purpose
    if purpose.startswith(PRODUCT_CLAIM) and _PRODUCT_ID.fullmatch(purpose.removeprefix(PRODUCT_CLAIM)):
        return purpose
    raise ValueError(f"purpose must be one of {', '.join(PURPOSES)} or {PRODUCT_CLAIM}<product>")


class BlockSelection(msgspec.Struct, frozen=True, array_like=True):
    """Which of the holding's blocks a retirement takes: explicit serial ranges, or the oldest free
    serials of one project and/or vintage ("" and 0: any). Absent: settlement's own order."""

    project: str = ""
    vintage: int = 0
    serials: tuple[SerialRange, ...] = ()

    def describe(self) -> str:
        parts = [f"project {self.project}"] if self.project else []
        parts += [f"vintage {self.vintage}"] if self.vintage else []
        parts += [", ".join(f"{r.start}-{r.end}" for r in self.serials)] if self.serials else []
        return " ".join(parts) or "any block"
