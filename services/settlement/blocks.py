"""Serial blocks of one holding, oldest first, and the per-instrument index of issued serials."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable

from shared.domain.ledger import SerialRange

__all__ = [
    "Blocks",
    "IssuedIndex",
    "append_block",
    "coalesce",
    "first_overlap",
    "plan_fifo",
    "plan_preferring",
    "remove_front",
    "remove_pieces",
]

Blocks = deque[SerialRange]
"""One holding: non-overlapping blocks in the order received, so delivery pops from the left."""

IssuedIndex = list[tuple[int, int]]
"""Every (start, end) issued for one instrument, sorted by start and pairwise disjoint."""


def append_block(blocks: Blocks, block: SerialRange) -> None:
    """Receive `block` as the newest block, merged into the tail when it continues it.

    Only the tail may absorb it: merging into an older block would let new serials jump the queue.
    """
    if blocks and blocks[-1].end + 1 == block.start:
        blocks[-1] = SerialRange(blocks[-1].start, block.end)
    else:
        blocks.append(block)


def plan_fifo(blocks: Blocks, quantity: int) -> tuple[SerialRange, ...] | None:
    """The ranges that delivering `quantity` tonnes takes, oldest block first and lowest serials first.

    Reads only the blocks it touches; None when the holding is short.
    """
    taken: list[SerialRange] = []
    need = quantity
    for block in blocks:
        if need <= 0:
            break
        if block.tonnes <= need:
            taken.append(block)
            need -= block.tonnes
        else:
            taken.append(SerialRange(block.start, block.start + need - 1))
            need = 0
    return None if need > 0 else tuple(taken)


Split = Callable[[SerialRange], list[tuple[SerialRange, bool]]]
"""A block cut into pieces, each flagged (eligible or not), in serial order."""


def plan_preferring(
    blocks: Iterable[SerialRange], quantity: int, split: Split, prefer: bool
) -> tuple[SerialRange, ...] | None:
    """Like plan_fifo, but first the oldest pieces flagged `prefer`, then, only if those are short, the
    oldest of the others; None when the holding is short. Reads only the blocks it needs when the
    preferred pieces suffice, so a holding that is eligible throughout costs what plan_fifo does."""
    taken: list[SerialRange] = []
    need = quantity
    for wanted in (prefer, not prefer):
        for block in blocks:
            if need <= 0:
                break
            for piece, flag in split(block):
                if flag is not wanted or need <= 0:
                    continue
                part = piece if piece.tonnes <= need else SerialRange(piece.start, piece.start + need - 1)
                taken.append(part)
                need -= part.tonnes
        if need <= 0:
            break
    return None if need > 0 else tuple(taken)


def remove_pieces(blocks: Blocks, taken: Iterable[SerialRange]) -> bool:
    """Remove `taken` from wherever it lies in the holding, keeping the order of what stays (a block
    cut in the middle leaves its two ends in its place); False (holding partly changed) if a piece is
    not held. O(1) per piece at the front, O(blocks) elsewhere."""
    for piece in taken:
        at = next((i for i, b in enumerate(blocks) if b.start <= piece.start and piece.end <= b.end), None)
        if at is None:
            return False
        block = blocks[at]
        rest = [
            r
            for r in (SerialRange(block.start, piece.start - 1), SerialRange(piece.end + 1, block.end))
            if r.start <= r.end
        ]
        if at == 0 and len(rest) <= 1:
            if rest:
                blocks[0] = rest[0]
            else:
                blocks.popleft()
            continue
        del blocks[at]
        for r in reversed(rest):
            blocks.insert(at, r)
    return True


def remove_front(blocks: Blocks, taken: Iterable[SerialRange]) -> bool:
    """Remove `taken` from the front of the holding; False (holding partly changed) if it is not there."""
    for piece in taken:
        if not blocks:
            return False
        head = blocks[0]
        if piece == head:
            blocks.popleft()
        elif piece.start == head.start and piece.end < head.end:
            blocks[0] = SerialRange(piece.end + 1, head.end)
        else:
            return False
    return True


def first_overlap(index: IssuedIndex, block: SerialRange) -> tuple[int, int] | None:
    """The issued range that shares a serial with `block`, if any, in O(log n).

    Disjoint ranges sorted by start also have sorted ends, so the last range starting at or before
    `block.end` is the only one that can reach back to `block.start`.
    """
    i = bisect.bisect_left(index, (block.end + 1, -1)) - 1
    if i >= 0 and index[i][1] >= block.start:
        return index[i]
    return None


def coalesce(ranges: Iterable[tuple[int, int]]) -> tuple[list[tuple[int, int]], int | None]:
    """Sort and join touching ranges; also the lowest serial found in two of them, if any."""
    merged: list[tuple[int, int]] = []
    clash: int | None = None
    for start, end in sorted(ranges):
        if clash is None and merged and start <= merged[-1][1]:
            clash = start
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged, clash
