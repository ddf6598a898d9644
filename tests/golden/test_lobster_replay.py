"""Golden replay: real NASDAQ order flow (LOBSTER AAPL sample) through the matching core, row by row.

The data stays outside the repository (third-party files): `../shared/data/lobster` from the repository root,
or the folder named by GREENEX_LOBSTER_DIR. Its README defines the format and the rules applied here.
"""

from __future__ import annotations

import copy
import csv
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.matching.book import Level, RestingOrder
from services.matching.engine import MatchingEngine
from shared.domain.commands import CancelOrder, PlaceOrder, ReplaceOrder
from shared.domain.events import EngineEvent, OrderAccepted, OrderCancelled, OrderReplaced, TradeExecuted
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.values import OrderType, Side, TimeInForce

__all__: list[str] = []

REPO_ROOT = Path(__file__).resolve().parents[2]
LOBSTER_DIR = Path(os.environ.get("GREENEX_LOBSTER_DIR") or REPO_ROOT.parent / "shared" / "data" / "lobster")
SYMBOL = "AAPL"
TICK = 100  # one cent on LOBSTER's dollars x 10000 grid
DEPTH = 10
EMPTY_ASK, EMPTY_BID = 9_999_999_999, -9_999_999_999
BOOK, AGGRESSOR = "book", "aggressor"  # every resting order, every synthetic incoming order: never one owner

Depth = list[tuple[int, int]]  # (price, size) best first
Fill = tuple[object, int, int]  # (LOBSTER order id or "seed", price, size)

pytestmark = pytest.mark.skipif(
    not LOBSTER_DIR.is_dir(), reason=f"LOBSTER sample folder absent: {LOBSTER_DIR}"
)


@dataclass(frozen=True)
class Message:
    row: int
    time: str  # kept as text: executions group on the exact timestamp
    kind: int
    order_id: int
    size: int
    price: int
    side: Side  # for executions, the side of the resting order that was hit


def load() -> tuple[list[Message], list[tuple[Depth, Depth]]]:
    """(messages, book rows); row k is (bids, asks) after message k."""
    [message_file] = LOBSTER_DIR.glob("*_message_10.csv")
    [book_file] = LOBSTER_DIR.glob("*_orderbook_10.csv")
    with message_file.open(newline="") as f:
        messages = [
            Message(
                row, r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), Side.BUY if r[5] == "1" else Side.SELL
            )
            for row, r in enumerate(csv.reader(f))
        ]
    rows = []
    with book_file.open(newline="") as f:
        for r in csv.reader(f):
            v = [int(x) for x in r]
            asks = [(v[i], v[i + 1]) for i in range(0, 4 * DEPTH, 4) if v[i] != EMPTY_ASK and v[i + 1]]
            bids = [(v[i], v[i + 1]) for i in range(2, 4 * DEPTH, 4) if v[i] != EMPTY_BID and v[i + 1]]
            rows.append((bids, asks))
    assert len(messages) == len(rows), (len(messages), len(rows))
    return messages, rows


def execution_groups(messages: list[Message]) -> dict[int, list[Message]]:
    """First row -> the run of consecutive executions (type 4) sharing its timestamp: one incoming order."""
    groups: dict[int, list[Message]] = {}
    current: list[Message] = []
    for m in messages:
        if current and (m.kind != 4 or m.time != current[0].time):
            groups[current[0].row], current = current, []
        if m.kind == 4:
            current.append(m)
    if current:
        groups[current[0].row] = current
    return groups


def better_or_equal(side: Side, price: int, limit: int | None) -> bool:
    """Is `price` at or inside `limit` (None: no limit) on this side of the book?"""
    if limit is None:
        return True
    return price >= limit if side is Side.BUY else price <= limit


def merge(fills: list[Fill]) -> list[Fill]:
    """Join consecutive fills of one order: one seed order stands for many pre-existing ones at its price."""
    out: list[Fill] = []
    for who, price, size in fills:
        if out and out[-1][:2] == (who, price):
            out[-1] = (who, price, out[-1][2] + size)
        else:
            out.append((who, price, size))
    return out


class ReplayMismatchError(AssertionError):
    """The engine and the real book disagree; the message names the row and shows both depths."""


class Replay:
    """One engine fed the LOBSTER messages; seed orders stand in for orders placed before the slice began."""

    def __init__(self, messages: list[Message], rows: list[tuple[Depth, Depth]]) -> None:
        self.messages, self.rows = messages, rows
        bids, asks = rows[0]
        mid = (bids[0][0] + asks[0][0]) // 2 // TICK * TICK
        # +-20 %: real prices sit within a fraction of a percent of the mid; the band only guards typos.
        self.instrument = Instrument(
            symbol=SYMBOL,
            kind=InstrumentKind.ALLOWANCE,
            standard="NASDAQ",
            registry="LOBSTER",
            vintage=2012,
            tick_size=TICK,
            lot_size=1,
            reference_price=mid,
            band_bps=2000,
        )
        assert all(self.instrument.band_low <= m.price <= self.instrument.band_high for m in messages)
        self.engine = MatchingEngine([self.instrument])
        self.book = self.engine.book(SYMBOL)
        # Synthetic orders (seeds, incoming aggressors) number above every LOBSTER id: never a collision.
        self.ids = itertools.count(max(m.order_id for m in messages) + 1)
        self.clids = itertools.count(1)
        self.clid: dict[int, str] = {}  # resting order id -> its current client order id
        self.seeds: set[int] = set()
        self.known: set[int] = set()  # LOBSTER ids added by a message of the slice
        # Per side: the deepest price of the previous row's 10 levels; None if that row showed the whole side.
        self.boundary: dict[Side, int | None] = {}
        self.rows_checked = 0
        self.groups_verified = 0
        self.reseeded_levels = 0
        self.silently_changed: set[int] = set()  # real orders changed beyond the window, with no message

    # ------------------------------------------------------------ engine plumbing

    def fail(self, row: int, what: str) -> ReplayMismatchError:
        bids, asks = self.rows[row]
        engine_bids, engine_asks = self.book.depth(DEPTH + 5)
        return ReplayMismatchError(
            f"row {row} {self.messages[row]}: {what}\n"
            f"  engine bids {engine_bids}\n  file   bids {bids}\n"
            f"  engine asks {engine_asks}\n  file   asks {asks}"
        )

    def next_clid(self, prefix: str) -> str:
        return f"{prefix}{next(self.clids)}"

    def rest(self, row: int, order_id: int, side: Side, price: int, size: int) -> None:
        """Place a GTC limit order that must rest without trading."""
        clid = self.next_clid("L" if order_id in self.known else "S")
        events = self.engine.decide(
            PlaceOrder(
                order_id=order_id,
                participant=BOOK,
                client_order_id=clid,
                instrument=SYMBOL,
                side=side,
                order_type=OrderType.LIMIT,
                price=price,
                quantity=size,
                time_in_force=TimeInForce.GTC,
            )
        )
        if [type(e) for e in events] != [OrderAccepted]:
            raise self.fail(row, f"order {order_id} {side} {size}@{price} did not simply rest: {events}")
        self.clid[order_id] = clid

    def seed(self, row: int, side: Side, price: int, size: int) -> None:
        order_id = next(self.ids)
        self.seeds.add(order_id)
        self.rest(row, order_id, side, price, size)

    def reduce(self, row: int, order: RestingOrder, size: int) -> None:
        """Take `size` off a resting order: cancel if that is all of it, else amend it keeping priority."""
        orig = self.clid[order.order_id]
        if size == order.leaves:
            events: list[EngineEvent] = self.engine.decide(
                CancelOrder(
                    participant=BOOK,
                    client_order_id=self.next_clid("X"),
                    instrument=SYMBOL,
                    orig_client_order_id=orig,
                )
            )
            ok = [type(e) for e in events] == [OrderCancelled]
        else:
            clid = self.next_clid("A")
            events = self.engine.decide(
                ReplaceOrder(
                    participant=BOOK,
                    client_order_id=clid,
                    instrument=SYMBOL,
                    orig_client_order_id=orig,
                    price=order.price,
                    quantity=order.cum + order.leaves - size,
                )
            )
            ok = len(events) == 1 and isinstance(events[0], OrderReplaced) and events[0].priority_kept
            self.clid[order.order_id] = clid
        if not ok:
            raise self.fail(row, f"taking {size} off order {order.order_id} gave {events}")

    def level(self, side: Side, price: int) -> Level | None:
        level: Level | None = self.book.side_map(side).get(-price if side is Side.BUY else price)
        return level

    def levels(self, side: Side) -> Depth:
        return [(lv.price, lv.qty) for lv in self.book.side_map(side).values()]

    def reduce_seeds(self, row: int, side: Side, price: int, size: int, *, newest_first: bool = False) -> int:
        """Take up to `size` off the seed orders at a price; return what could not be taken."""
        level = self.level(side, price)
        seeds = [o for o in level.live_orders() if o.order_id in self.seeds] if level is not None else []
        for order in reversed(seeds) if newest_first else seeds:
            take = min(size, order.leaves)
            if take:
                self.reduce(row, order, take)
                size -= take
        return size

    # ------------------------------------------------------------ the opening book

    def open_book(self) -> None:
        """Seed one order per level of row 0 with message 0 undone; the window is row 0's ten levels."""
        first = self.messages[0]
        before = {side: dict(depth) for side, depth in zip((Side.BUY, Side.SELL), self.rows[0], strict=True)}
        undo = {1: -first.size, 2: first.size, 3: first.size, 4: first.size}.get(first.kind, 0)
        level = before[first.side]
        level[first.price] = level.get(first.price, 0) + undo
        if level[first.price] < 0:
            raise self.fail(0, "message 0 cannot be undone on row 0")
        for side, sizes in before.items():
            for price, size in sizes.items():
                if size:
                    self.seed(0, side, price, size)
        for side, depth in zip((Side.BUY, Side.SELL), self.rows[0], strict=True):
            self.boundary[side] = depth[-1][0] if len(depth) == DEPTH else None

    # ------------------------------------------------------------ messages

    def apply(self, m: Message, group: list[Message] | None) -> None:
        if m.kind == 1:
            if m.order_id in self.known:
                raise self.fail(m.row, f"LOBSTER id {m.order_id} added twice")
            self.known.add(m.order_id)
            self.rest(m.row, m.order_id, m.side, m.price, m.size)
        elif m.kind in (2, 3):
            self.remove(m)
        elif m.kind == 4:
            if group is not None:
                self.verify_group(group)
            self.execute(m)
        elif m.kind == 5:
            self.check_hidden_unchanged(m.row)  # and nothing goes to the engine
        else:
            raise self.fail(m.row, f"message type {m.kind} is not in this slice (README: 1, 3, 4, 5)")

    def remove(self, m: Message) -> None:
        """Type 2 (partial cancel, size cancelled) or 3 (delete, size deleted)."""
        order = self.book.orders.get(m.order_id)
        self.check_not_silently_changed(m)
        if m.order_id in self.known:
            if order is None:
                raise self.fail(m.row, f"order {m.order_id} is not on the engine's book")
            if (order.price, order.side) != (m.price, m.side) or (m.kind == 3 and m.size != order.leaves):
                raise self.fail(m.row, f"order {m.order_id} is {order.leaves}@{order.price} {order.side}")
            self.reduce(m.row, order, m.size)
        elif self.reduce_seeds(m.row, m.side, m.price, m.size):
            raise self.fail(m.row, f"seed orders at {m.price} hold less than the {m.size} removed")

    def check_not_silently_changed(self, m: Message) -> None:
        if m.order_id in self.silently_changed:
            raise self.fail(
                m.row,
                f"order {m.order_id} was taken off when its level was re-read beyond the "
                "window, yet a later message names it",
            )

    def expected_fill(self, m: Message) -> Fill:
        return (m.order_id if m.order_id in self.known else "seed", m.price, m.size)

    def incoming(self, side: Side, price: int, size: int) -> PlaceOrder:
        """The aggressor the file never shows: an IOC limit order on the other side of the resting ones."""
        return PlaceOrder(
            order_id=next(self.ids),
            participant=AGGRESSOR,
            client_order_id=self.next_clid("T"),
            instrument=SYMBOL,
            side=Side.SELL if side is Side.BUY else Side.BUY,
            order_type=OrderType.LIMIT,
            price=price,
            quantity=size,
            time_in_force=TimeInForce.IOC,
        )

    def fills(self, events: list[EngineEvent]) -> list[Fill]:
        return [
            ("seed" if e.maker_order_id in self.seeds else e.maker_order_id, e.price, e.quantity)
            for e in events
            if isinstance(e, TradeExecuted)
        ]

    def verify_group(self, group: list[Message]) -> None:
        """One incoming IOC at the group's worst price for its total size, sent to a copy of the engine,
        must fill the named resting orders in the file's order and sizes."""
        side = group[0].side
        worst = min(m.price for m in group) if side is Side.BUY else max(m.price for m in group)
        trial = copy.deepcopy(self.engine)
        events = trial.decide(self.incoming(side, worst, sum(m.size for m in group)))
        got, want = merge(self.fills(events)), merge([self.expected_fill(m) for m in group])
        if got != want:
            raise self.fail(
                group[0].row,
                f"execution group rows {group[0].row}..{group[-1].row}: "
                f"engine fills {got} != file fills {want}",
            )
        self.groups_verified += 1

    def execute(self, m: Message) -> None:
        """Each execution row on the real engine: an IOC of its size at its price fills just that order."""
        self.check_not_silently_changed(m)
        events = self.engine.decide(self.incoming(m.side, m.price, m.size))
        got = self.fills(events)
        if got != [self.expected_fill(m)]:
            raise self.fail(m.row, f"engine fills {got} != file fill {self.expected_fill(m)}")

    def check_hidden_unchanged(self, row: int) -> None:
        """A hidden execution leaves the visible book alone: in the window the file row equals the last."""
        if row == 0:
            return
        for side, now, then in zip((Side.BUY, Side.SELL), self.rows[row], self.rows[row - 1], strict=True):
            limit = self.boundary[side]
            if [lv for lv in now if better_or_equal(side, lv[0], limit)] != [
                lv for lv in then if better_or_equal(side, lv[0], limit)
            ]:
                raise self.fail(row, f"hidden execution changed the visible {side} side in the file")

    # ------------------------------------------------------------ the trusted window

    def check_row(self, row: int) -> None:
        """Compare inside the trusted window, then re-read the levels the file reveals beyond it."""
        for side, file_depth in zip((Side.BUY, Side.SELL), self.rows[row], strict=True):
            boundary = self.boundary[side]
            file_last = file_depth[-1][0] if len(file_depth) == DEPTH else None
            # Compare down to the shallower of the window edge and the file's tenth level.
            if boundary is None:
                cut = file_last
            elif file_last is None:
                cut = boundary
            else:
                cut = max(boundary, file_last) if side is Side.BUY else min(boundary, file_last)
            engine_depth = self.levels(side)
            inside_engine = [lv for lv in engine_depth if better_or_equal(side, lv[0], cut)]
            inside_file = [lv for lv in file_depth if better_or_equal(side, lv[0], cut)]
            if inside_engine != inside_file:
                raise self.fail(row, f"{side} depth differs inside the trusted window (down to {cut})")
            # Beyond the window edge and up to the file's tenth level the file is the only truth: adopt it.
            revealed = dict(lv for lv in file_depth if not better_or_equal(side, lv[0], boundary))
            for price, qty in engine_depth:
                if not better_or_equal(side, price, boundary) and better_or_equal(side, price, file_last):
                    revealed.setdefault(price, 0)
                    if revealed[price] != qty:
                        self.adjust(row, side, price, qty, revealed[price])
                    del revealed[price]
            for price, size in revealed.items():
                self.reseeded_levels += 1
                self.seed(row, side, price, size)
        engine_bids, engine_asks = self.book.depth(DEPTH)
        if (engine_bids, engine_asks) != self.rows[row]:
            raise self.fail(row, "engine L1..L10 differs from the file after re-reading the revealed levels")
        if self.book.is_crossed():
            raise self.fail(row, "engine book is crossed")
        for side, file_depth in zip((Side.BUY, Side.SELL), self.rows[row], strict=True):
            self.boundary[side] = file_depth[-1][0] if len(file_depth) == DEPTH else None
        self.rows_checked += 1

    def adjust(self, row: int, side: Side, price: int, have: int, want: int) -> None:
        """A revealed level the engine knew (before it left the window) but the file shows otherwise.

        More: seed the difference at the back. Less: cancel a real order of exactly the missing size if
        there is one, else take it off the seed orders, then off real orders newest first. Real orders
        touched here changed out of sight, so no later message may name them.
        """
        self.reseeded_levels += 1
        if want > have:
            self.seed(row, side, price, want - have)
            return
        excess = have - want
        level = self.level(side, price)
        real = [o for o in level.live_orders() if o.order_id not in self.seeds] if level is not None else []
        # The simplest story first: one real order of exactly the missing size was deleted out of sight.
        exact = [o for o in real if o.leaves == excess]
        if not exact:
            excess = self.reduce_seeds(row, side, price, excess, newest_first=True)
        for order in reversed(exact[-1:] or real) if excess else []:
            take = min(excess, order.leaves)
            self.silently_changed.add(order.order_id)
            self.reduce(row, order, take)
            excess -= take
            if not excess:
                break

    def run(self) -> None:
        groups = execution_groups(self.messages)
        self.open_book()
        for m in self.messages:
            self.apply(m, groups.get(m.row))
            self.check_row(m.row)
        assert self.groups_verified == len(groups), (self.groups_verified, len(groups))


def test_lobster_replay_matches_the_real_book_row_by_row() -> None:
    """999 real messages replay with the file's L1..L10 after every one (inside the trusted window) and
    every execution group filling the same resting orders, in the same order, as on NASDAQ."""
    messages, rows = load()
    replay = Replay(messages, rows)
    replay.run()
    print(
        f"lobster replay: {replay.rows_checked} rows checked, {replay.groups_verified} execution groups "
        f"verified, {replay.reseeded_levels} revealed levels re-read, "
        f"{len(replay.silently_changed)} real orders changed beyond the window"
    )
    assert replay.rows_checked == len(messages) == 999
    assert replay.groups_verified == 66
