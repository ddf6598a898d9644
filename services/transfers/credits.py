"""The transfers core, pure: which entries of a source partition's log are transfers to credit here.

A transfer's id is (source partition, seq of the TransferRequested there), which the source's
CashTransferredOut names as its causation (`log:<n>`). Verification answers requests in log order, so
those seqs rise along the source log: a credit is due only past the last one credited, and a byte-copy of
a genuine CashTransferredOut appended later (by someone holding a service's Redis password: the tag still
verifies) names a request already credited, and is skipped.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

import structlog

from shared.domain.codec import decode_event, encode_event, event_type
from shared.domain.ledger import CashTransferredIn, CashTransferredOut, ParticipantRegistered
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import Entry, NewEntry
from shared.partitions import TRANSFERS, TransferRef, transfer_causation, transfer_event_id

__all__ = ["DECIDED_BY", "OUT", "Credits", "Registered", "producer_for"]

log = structlog.get_logger("greenex.transfers")

_REGISTERED = ParticipantRegistered.__name__
INTAKE = "intake"  # the producer of registrations
OUT = CashTransferredOut.__name__  # the entry type the source writes (an event's tag is its class name)
DECIDED_BY = "verification"  # the only producer that grants a transfer


def producer_for(source: int) -> str:
    """The producer crediting one source partition's transfers: its position is that source's request
    seq, kept by the append script with each credit (one position per producer)."""
    return f"{TRANSFERS}.p{source}"


class Credits:
    """Credits in partition `own` the transfers out of partition `source`, once each."""

    def __init__(self, own: int, source: int, keys: ProducerKeys, credited_up_to: int) -> None:
        self.own, self.source, self.keys = own, source, keys
        self.producer = producer_for(source)
        self.credited_up_to = credited_up_to  # the highest request seq of `source` credited here

    def due(
        self, entries: Iterable[Entry], registered: Container[str]
    ) -> tuple[list[tuple[TransferRef, NewEntry]], int | None]:
        """The credits these source entries call for, in order, advancing `credited_up_to` past them (a
        failed append stops the process: it starts again from what the log holds), and the seq of the
        first debit held back, if any: its participant is not `registered` here yet (onboarding registers
        in every partition, but partition by partition). A credit for a participant this partition does
        not know would stop its settlement; the transfer stays in flight until the registration is in."""
        due: list[tuple[TransferRef, NewEntry]] = []
        for entry in entries:
            if entry.type != OUT:
                continue
            kind, _, cause = entry.causation.partition(":")
            request = int(cause) if kind == "log" and cause.isascii() and cause.isdigit() else 0
            if entry.producer != DECIDED_BY or request == 0 or not self.keys.authentic(entry):
                log.error("transfer_not_genuine", source=self.source, seq=entry.seq, producer=entry.producer)
                continue
            if request <= self.credited_up_to:
                log.warning("transfer_copy_skipped", source=self.source, seq=entry.seq, request=request)
                continue
            out = decode_event(entry.body)
            if not isinstance(out, CashTransferredOut) or out.request_seq != request:
                log.error("transfer_malformed", source=self.source, seq=entry.seq)
                continue
            if out.to_partition != self.own:
                continue
            if out.participant not in registered:
                return due, entry.seq
            ref = TransferRef(self.source, request)
            credit = CashTransferredIn(
                participant=out.participant, amount=out.amount, from_partition=self.source, from_seq=request
            )
            due.append((ref, NewEntry(
                event_id=transfer_event_id(self.producer, ref), causation=transfer_causation(ref),
                type=event_type(credit), event_ns=entry.event_ns, body=encode_event(credit),
            )))  # fmt: skip
            self.credited_up_to = request
        return due, None


class Registered:
    """The participants registered in this partition's log, as far as it has been read (`after`)."""

    def __init__(self, keys: ProducerKeys) -> None:
        self.keys, self.after, self.participants = keys, 0, set[str]()

    def fold(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self.after = entry.seq
            if entry.type == _REGISTERED and entry.producer == INTAKE and self.keys.authentic(entry):
                registration = decode_event(entry.body)
                assert isinstance(registration, ParticipantRegistered), type(registration)
                self.participants.add(registration.participant)
