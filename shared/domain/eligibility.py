"""Which credits an instrument's eligibility window lets trade, decided from where their serials come from."""

from __future__ import annotations

import msgspec

from shared.domain.certificates import Origin, split_serials
from shared.domain.instruments import Instrument
from shared.domain.ledger import SerialRange
from shared.domain.registry import EligibilityChanged

__all__ = ["accepts", "split_eligibility", "with_window"]


def accepts(inst: Instrument | None, standard: str, vintage: int) -> bool:
    """Whether credits of (standard, vintage) may be sold in `inst` under its current window.

    Blocks without a registry standard are the operator's allowance blocks: no project, no vintage,
    nothing for a window to exclude, so they always may.
    """
    if inst is None or not standard:
        return True
    return inst.accepts_standard(standard) and inst.accepts_vintage(vintage)


def with_window(inst: Instrument, ev: EligibilityChanged) -> Instrument:
    """The instrument under the window `ev` sets."""
    return msgspec.structs.replace(
        inst,
        eligible_standards=ev.eligible_standards,
        min_vintage=ev.min_vintage,
        max_vintage=ev.max_vintage,
    )


def split_eligibility(
    inst: Instrument | None, origins: list[Origin], block: SerialRange
) -> list[tuple[SerialRange, bool]]:
    """`block` cut where eligibility changes, each piece with whether `inst` lets it trade now.

    `origins` are the instrument's issued blocks sorted by start; touching pieces of equal eligibility
    are joined, so a block that is eligible throughout comes back whole.
    """
    out: list[tuple[SerialRange, bool]] = []
    for piece, origin in split_serials(origins, block):
        ok = origin is None or accepts(inst, origin.standard, origin.vintage)
        if out and out[-1][1] == ok and out[-1][0].end + 1 == piece.start:
            out[-1] = (SerialRange(out[-1][0].start, piece.end), ok)
        else:
            out.append((piece, ok))
    return out
