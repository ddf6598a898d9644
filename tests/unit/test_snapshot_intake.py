"""Intake's and the report publisher's snapshots: snapshot at k + the tail equals the whole log."""

from __future__ import annotations

import asyncio

import pytest

from loadtests.replay_bench import intake_events
from services.harness import InProcessExchange
from services.intake.core import Intake
from services.intake.reports import REPORTED_TYPES, Delivery, Reporter
from services.intake.snapshot import intake_state, restore_intake
from shared.domain.codec import decode_event
from shared.domain.ledger import KeyRotated
from shared.eventlog.entry import Entry
from shared.protocol import sign
from tests.support import FakeClock

ORDERS, SEED = 1200, 3


@pytest.fixture(scope="module")
def exchange() -> tuple[InProcessExchange, list[Entry]]:
    """A log made by the harness: setup, a key rotation, then seeded orders through every core."""
    ex = InProcessExchange(clock=FakeClock())
    events = list(intake_events(ORDERS, SEED, ex.sealer))
    rotation = KeyRotated(participant="P001", key=ex.sealer.seal(b"rotated-secret-xyz", "P001", "k2"),
                          previous_valid_until_ns=0, requested_by="operator")  # fmt: skip
    events.insert(len(events) // 3, rotation)

    async def build() -> list[Entry]:
        for start in range(0, len(events), 50):
            await ex.append_intake_events(events[start : start + 50])
        return await ex.log.read(0, 10**9)

    return ex, asyncio.run(build())


def _fresh(ex: InProcessExchange) -> Intake:
    return Intake(ex.operator_secret, sealer=ex.sealer, box=ex.box, venue=ex.venue)


def _recalled(ex: InProcessExchange, entries: list[Entry], into: Intake | None = None) -> Intake:
    core = into or _fresh(ex)
    for entry in entries:
        if entry.producer == core.name:
            core.recall(entry)
    return core


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.7, 1.0])
def test_intake_from_a_snapshot_plus_the_tail_equals_intake_from_the_whole_log(
    exchange: tuple[InProcessExchange, list[Entry]], fraction: float
) -> None:
    ex, entries = exchange
    k = int(len(entries) * fraction)
    whole = _recalled(ex, entries)
    restored = _fresh(ex)
    restore_intake(restored, intake_state(_recalled(ex, entries[:k])))
    _recalled(ex, entries[k:], into=restored)
    assert intake_state(restored) == intake_state(whole)
    assert restored.state.orders_submitted == whole.state.orders_submitted > 0
    # The keys were opened again from their sealed form: the rotated key signs for P001 there too.
    command = {"participant": "P001", "type": "new_order", "client_order_id": "x"}
    good = command | {"sig": sign(command, "rotated-secret-xyz")}
    assert restored.keys.verifies("P001", good, 1)
    assert whole.keys.verifies("P001", good, 1)
    assert not restored.keys.verifies("P001", command | {"sig": sign(command, "s-P002")}, 1)


def test_an_intake_snapshot_holds_no_key_in_the_clear(
    exchange: tuple[InProcessExchange, list[Entry]],
) -> None:
    ex, _ = exchange
    data = intake_state(ex.intake)
    assert b"s-P001" not in data
    assert b"rotated-secret-xyz" not in data
    assert b"P001" in data  # it does hold the participant (a check that the search can find things)


def test_restoring_refuses_damaged_bytes_and_a_used_intake(
    exchange: tuple[InProcessExchange, list[Entry]],
) -> None:
    ex, _ = exchange
    with pytest.raises(ValueError, match="undecodable"):
        restore_intake(_fresh(ex), b"\x93\x01garbage")
    with pytest.raises(ValueError, match="fresh"):
        restore_intake(ex.intake, intake_state(ex.intake))


def _reports(reporter: Reporter, entries: list[Entry]) -> list[Delivery]:
    out: list[Delivery] = []
    for entry in entries:
        if entry.type in REPORTED_TYPES:
            out.extend(reporter.reports(entry.seq, decode_event(entry.body), entry.hash))
    return out


@pytest.mark.parametrize("fraction", [0.3, 0.8])
def test_the_reporter_from_a_snapshot_reports_the_tail_as_the_whole_run_does(
    exchange: tuple[InProcessExchange, list[Entry]], fraction: float
) -> None:
    """Fills name the order's limit price, which only the reporter's memory of open orders knows."""
    _, entries = exchange
    k = int(len(entries) * fraction)
    whole = Reporter()
    expected = _reports(whole, entries)[len(_reports(Reporter(), entries[:k])) :]
    prefix = Reporter()
    _reports(prefix, entries[:k])
    restored = Reporter()
    restored.restore(prefix.snapshot())
    tail = _reports(restored, entries[k:])
    assert tail == expected
    assert len(tail) > 100
    assert restored.snapshot() == whole.snapshot()
    with pytest.raises(ValueError, match="undecodable reporter snapshot"):
        Reporter().restore(b"\xc1")
