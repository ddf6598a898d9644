"""The blocks a retirement selected (serials, or a project and vintage), taken only from what is free."""

from __future__ import annotations

from collections import deque

from services.settlement.blocks import Blocks, Split, plan_preferring, remove_pieces
from shared.domain.certificates import Origin, split_serials
from shared.domain.ledger import SerialRange
from shared.domain.retirement import BlockSelection

__all__ = ["free_blocks", "select_blocks"]


def free_blocks(blocks: Blocks, sell_claim: int, split: Split) -> Blocks:
    """The holding without the serials its sells have frozen: the oldest eligible ones (then the oldest
    ineligible, for sells resting since a window tightened), as settlement delivers sells and as the
    registry view shows them frozen. Whatever order the claims then settle in, they take those."""
    free: Blocks = deque(blocks)
    if sell_claim > 0:
        frozen = plan_preferring(free, sell_claim, split, True)
        if frozen is None or not remove_pieces(free, frozen):
            return deque()  # frozen beyond what is held: nothing is free
    return free


def select_blocks(
    free: Blocks, quantity: int, selection: BlockSelection, origins: list[Origin]
) -> tuple[SerialRange, ...] | str:
    """The serials `selection` names among the `free` blocks, or why they are not all there."""
    if selection.serials:
        taken: list[SerialRange] = []
        for wanted in selection.serials:
            pieces = _within(free, wanted)
            if sum(p.tonnes for p in pieces) != wanted.tonnes:
                return f"serials {wanted.start}-{wanted.end} are not all held free"
            taken.extend(pieces)
        for piece in taken:
            for part, origin in split_serials(origins, piece):
                if not _matches(origin, selection):
                    return f"serials {part.start}-{part.end} are not of {selection.describe()}"
        return tuple(taken)
    out: list[SerialRange] = []
    need = quantity
    for block in free:
        for part, origin in split_serials(origins, block):
            if need <= 0:
                break
            if _matches(origin, selection):
                piece = part if part.tonnes <= need else SerialRange(part.start, part.start + need - 1)
                out.append(piece)
                need -= piece.tonnes
    if need > 0:
        return f"{quantity - need} t of {selection.describe()} are held free, {quantity} t were asked for"
    return tuple(out)


def _within(free: Blocks, wanted: SerialRange) -> list[SerialRange]:
    """The parts of `wanted` lying in free blocks, each inside one block (so it can be removed)."""
    return [
        SerialRange(max(b.start, wanted.start), min(b.end, wanted.end))
        for b in free
        if b.start <= wanted.end and wanted.start <= b.end
    ]


def _matches(origin: Origin | None, selection: BlockSelection) -> bool:
    if origin is None:
        return not (selection.project or selection.vintage)
    return (not selection.project or origin.project == selection.project) and (
        not selection.vintage or origin.vintage == selection.vintage
    )
