"""Each partition's log is tagged with keys of its own: an entry copied from one partition's log into
another's (by someone holding a service's Redis password, not the log master key) does not verify there,
so neither its followers nor the transfers process take it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.transfers.credits import Credits
from shared.domain.codec import Event, encode_event, event_type
from shared.domain.ledger import CashDeposited, CashTransferredOut
from shared.eventlog.entry import Entry, NewEntry
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.port import LogCorrupt
from shared.eventlog.verify import ChainVerifier
from shared.keyring import KeyRing


def _logged(ring: KeyRing, partition: int, producer: str, causation: str, event: Event) -> Entry:
    log = InMemoryEventLog(producer_keys=ring.producer_keys(partition))
    new = NewEntry(event_id=f"{producer}:5:0", causation=causation, type=event_type(event),
                   event_ns=1, body=encode_event(event))  # fmt: skip
    return asyncio.run(log.append(producer, [new]))[0]


def test_partition_keys_differ_and_partition_one_keeps_the_master_keys(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "keys")
    deposit = _logged(ring, 1, "operator", "in:operator:1-0", CashDeposited(participant="a", amount=100))
    assert ring.producer_keys(1).authentic(deposit)
    assert not ring.producer_keys(2).authentic(deposit)
    assert not ring.producer_keys(3).authentic(deposit)
    assert ring.producer_keys(2).authentic(_logged(ring, 2, "operator", "in:operator:1-0", deposit_event()))
    # The same log master key is all every partition needs: a second ring from the same file agrees.
    assert KeyRing(tmp_path / "keys").producer_keys(2).authentic(
        _logged(ring, 2, "operator", "in:operator:1-0", deposit_event())
    )


def deposit_event() -> CashDeposited:
    return CashDeposited(participant="a", amount=100)


def test_a_debit_copied_from_another_partition_is_not_credited(tmp_path: Path) -> None:
    """Partition 1's genuine debit to partition 3, appended into partition 2's log: partition 3's relay
    for source 2 checks it with partition 2's keys and refuses it; partition 2's own debit passes."""
    ring = KeyRing.create(tmp_path / "keys")
    out = CashTransferredOut(participant="a", amount=100, to_partition=3, request_seq=5)
    from_one = _logged(ring, 1, "verification", "log:5", out)
    from_two = _logged(ring, 2, "verification", "log:5", out)
    relay = Credits(own=3, source=2, source_keys=ring.producer_keys(2), credited_up_to=0)
    assert relay.due([from_one]) == []
    assert [ref for ref, _ in relay.due([from_two])] == [(2, 5)]
    # The partition's own followers refuse the copy too (its tag is another partition's).
    verifier = ChainVerifier(producer_keys=ring.producer_keys(2))
    with pytest.raises(LogCorrupt, match="not written by 'verification'"):
        verifier.check(from_one)
