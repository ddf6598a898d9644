"""The transfers core, pure: which entries of a source partition's log are transfers to credit here.

A transfer's id is (source partition, seq of the TransferRequested there), which the source's
CashTransferredOut names as its causation (`log:<n>`). Verification answers requests in log order, so
those seqs rise along the source log: a credit is due only past the last one credited, and a byte-copy of
a genuine CashTransferredOut appended later (by someone holding a service's Redis password: the tag still
verifies) names a request already credited, and is skipped. A debit copied from another partition's log
does not verify at all: each partition's producer keys are its own (KeyRing.producer_keys), and the
source's entries are checked with the source's.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from shared.domain.codec import decode_event, encode_event, event_type
from shared.domain.ledger import CashTransferredIn, CashTransferredOut
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import Entry, NewEntry
from shared.partitions import TransferRef, transfer_causation, transfer_event_id, transfer_producer

__all__ = ["DECIDED_BY", "OUT", "Credits"]

log = structlog.get_logger("greenex.transfers")

OUT = CashTransferredOut.__name__  # the entry type the source writes (an event's tag is its class name)
DECIDED_BY = "verification"  # the only producer that grants a transfer
_MAX_DIGITS = 20  # a seq has at most 20 digits (int() of a huge string is slow)


class Credits:
    """Credits in partition `own` the transfers out of partition `source`, once each. `source_keys`: the
    source partition's producer keys, which its debits must verify under."""

    def __init__(self, own: int, source: int, source_keys: ProducerKeys, credited_up_to: int) -> None:
        self.own, self.source, self.source_keys = own, source, source_keys
        self.producer = transfer_producer(source)
        self.credited_up_to = credited_up_to  # the highest request seq of `source` credited here

    def due(self, entries: Iterable[Entry]) -> list[tuple[TransferRef, NewEntry]]:
        """The credits these source entries call for, in order, advancing `credited_up_to` past them (a
        failed append stops the process: it starts again from what the log holds).

        A participant not registered here yet (onboarding registers partition by partition) is credited
        all the same: the cash waits in its account here (settlement opens it), and holding the credit
        back would hold every later transfer from the source behind it."""
        due: list[tuple[TransferRef, NewEntry]] = []
        for entry in entries:
            if entry.type != OUT:
                continue
            if entry.producer != DECIDED_BY or not self.source_keys.authentic(entry):
                log.error("transfer_not_genuine", source=self.source, seq=entry.seq, producer=entry.producer)
                continue
            kind, _, cause = entry.causation.partition(":")
            digits = kind == "log" and cause.isascii() and cause.isdigit() and len(cause) <= _MAX_DIGITS
            request = int(cause) if digits else 0
            out = decode_event(entry.body)
            if request == 0 or not isinstance(out, CashTransferredOut) or out.request_seq != request:
                log.error("transfer_malformed", source=self.source, seq=entry.seq)
                continue
            if out.to_partition != self.own:
                continue
            if request <= self.credited_up_to:
                log.warning("transfer_copy_skipped", source=self.source, seq=entry.seq, request=request)
                continue
            ref = TransferRef(self.source, request)
            credit = CashTransferredIn(
                participant=out.participant, amount=out.amount, from_partition=self.source, from_seq=request
            )
            due.append((ref, NewEntry(
                event_id=transfer_event_id(self.producer, ref), causation=transfer_causation(ref),
                type=event_type(credit), event_ns=entry.event_ns, body=encode_event(credit),
            )))  # fmt: skip
            self.credited_up_to = request
        return due
