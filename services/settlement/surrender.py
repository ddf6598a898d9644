"""Which serials a surrender takes: those its rule lets count, the ones that can no longer trade first."""

from __future__ import annotations

from collections.abc import Iterable

from services.settlement.blocks import plan_preferring
from shared.domain.certificates import Origin, split_serials
from shared.domain.compliance import CreditsSurrendered, SurrenderApproved
from shared.domain.eligibility import accepts
from shared.domain.instruments import Instrument
from shared.domain.ledger import SerialRange

__all__ = ["plan_surrender"]


def plan_surrender(
    seq: int,
    ok: SurrenderApproved,
    blocks: Iterable[SerialRange],
    inst: Instrument | None,
    origins: list[Origin],
) -> CreditsSurrendered | None:
    """The surrender of `ok` from the holding's `blocks` (oldest first): serials that qualify under its
    rule, first those the instrument's window keeps off the market, then tradable ones, each oldest
    first (so sells keep the tradable tonnes verification counted for them); None if too few qualify."""

    def split(block: SerialRange) -> list[tuple[SerialRange, bool]]:
        return [
            (piece, origin is None or accepts(inst, origin.standard, origin.vintage))
            for piece, origin in split_serials(origins, block)
            if ok.rule.allows(origin)
        ]

    serials = plan_preferring(blocks, ok.quantity, split, False)
    if serials is None or ok.quantity <= 0:
        return None
    return CreditsSurrendered(
        certificate_id=f"SC-{seq}", participant=ok.participant, scheme=ok.scheme, year=ok.year,
        instrument=ok.instrument, serials=serials, tonnes=ok.quantity, offset=ok.rule.offset,
        client_order_id=ok.client_order_id, request_seq=ok.request_seq,
    )  # fmt: skip
