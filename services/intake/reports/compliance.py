"""`type = compliance` reports: allocations, verified emissions, surrenders with their certificates,
refusals and the close of a year, each to the participant it concerns."""

from __future__ import annotations

from services.intake.reports.delivery import Delivery
from shared.domain.certificates import SerialOrigins
from shared.domain.codec import Event, tags
from shared.domain.compliance import (
    AllowancesAllocated,
    ComplianceRejected,
    ComplianceShortfall,
    CreditsSurrendered,
    EmissionsVerified,
    SurrenderRejected,
    surrender_certificate,
)
from shared.domain.values import fen_to_price
from shared.reports import ComplianceEventKind, ComplianceReport, RejectReason

__all__ = ["COMPLIANCE_REPORTED_TYPES", "compliance_reports"]

COMPLIANCE_REPORTED_TYPES = tags(
    AllowancesAllocated, EmissionsVerified, ComplianceRejected, SurrenderRejected, CreditsSurrendered,
    ComplianceShortfall,
)  # fmt: skip


def compliance_reports(seq: int, event: Event, entry_hash: bytes, origins: SerialOrigins) -> list[Delivery]:
    kind = ComplianceEventKind
    match event:
        case AllowancesAllocated():
            return [Delivery(event.participant, ComplianceReport(
                event=kind.ALLOCATED, seq=seq, scheme=event.scheme, year=event.year,
                instrument=event.instrument, quantity=event.serials.tonnes,
                serials=origins.labels(event.instrument, (event.serials,)),
            ))]  # fmt: skip
        case EmissionsVerified():
            verified = ComplianceReport(
                event=kind.EMISSIONS_VERIFIED, seq=seq, scheme=event.scheme, year=event.year,
                client_order_id=event.client_order_id, entity=event.entity, tonnes=event.tonnes,
            )  # fmt: skip
            return [Delivery(event.verifier, verified), Delivery(event.entity, verified)]
        case SurrenderRejected():
            return [Delivery(event.participant, ComplianceReport(
                event=kind.REJECTED, seq=seq, scheme=event.scheme, year=event.year,
                client_order_id=event.client_order_id, instrument=event.instrument, quantity=event.quantity,
                action="surrender", reason=RejectReason(event.reason, event.text),
            ))]  # fmt: skip
        case ComplianceRejected():
            return [Delivery(event.participant, ComplianceReport(
                event=kind.REJECTED, seq=seq, scheme="", year=0, client_order_id=event.client_order_id,
                action=event.action, reason=RejectReason(event.reason, event.text),
            ))]  # fmt: skip
        case CreditsSurrendered():
            return [Delivery(event.participant, ComplianceReport(
                event=kind.SURRENDERED, seq=seq, scheme=event.scheme, year=event.year,
                client_order_id=event.client_order_id, instrument=event.instrument, quantity=event.tonnes,
                offset=event.offset, certificate=surrender_certificate(event, seq, entry_hash, origins),
            ))]  # fmt: skip
        case ComplianceShortfall():
            return [Delivery(event.participant, ComplianceReport(
                event=kind.YEAR_CLOSED, seq=seq, scheme=event.scheme, year=event.year,
                obligation=event.obligation, allowances=event.allowances, offsets=event.offsets,
                shortfall=event.shortfall, penalty=fen_to_price(event.penalty_fen), deduction=event.deduction,
            ))]  # fmt: skip
    return []
