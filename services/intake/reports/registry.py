"""`type = registry` reports: issuance, verification, retirement certificates, labels and claims."""

from __future__ import annotations

from services.intake.reports.delivery import Delivery
from shared.domain.certificates import SerialOrigins, certificate
from shared.domain.codec import Event, tags
from shared.domain.labels import CutOffDeclared, FootprintRecalculated
from shared.domain.ledger import CreditsIssued
from shared.domain.registry import (
    ActivityRecorded,
    CreditsRetired,
    LabelIssued,
    NeutralityClaimed,
    ProductRegistered,
    RegistryRejected,
    RetirementKind,
    RetirementRejected,
    VerificationAccepted,
)
from shared.reports import RegistryEventKind, RegistryReport, RejectReason

__all__ = ["REGISTRY_REPORTED_TYPES", "RegistryReporter"]

REGISTRY_REPORTED_TYPES = tags(
    CreditsIssued,
    VerificationAccepted,
    RegistryRejected,
    RetirementRejected,
    CreditsRetired,
    LabelIssued,
    NeutralityClaimed,
    ProductRegistered,
    ActivityRecorded,
    CutOffDeclared,
    FootprintRecalculated,
)


class RegistryReporter:
    """Knows every issued block's origin, so certificates name their serials as labels."""

    def __init__(self) -> None:
        self.origins = SerialOrigins()

    def reports(self, seq: int, event: Event, entry_hash: bytes) -> list[Delivery]:
        kind = RegistryEventKind
        match event:
            case CreditsIssued():
                self.origins.add(event)
                labels = self.origins.labels(event.instrument, (event.serials,))
                return [Delivery(event.participant, RegistryReport(
                    event=kind.CREDITS_ISSUED, seq=seq, instrument=event.instrument,
                    quantity=event.serials.tonnes, serials=labels, report_id=event.report_id,
                ))]  # fmt: skip
            case VerificationAccepted():
                accepted = RegistryReport(
                    event=kind.VERIFICATION_ACCEPTED, seq=seq, report_id=event.report_id,
                    project=event.project, vintage=event.vintage, tonnes=event.tonnes,
                    client_order_id=event.client_order_id,
                )  # fmt: skip
                return [Delivery(event.verifier, accepted), Delivery(event.owner, accepted)]
            case RegistryRejected() | RetirementRejected():
                action = event.action if isinstance(event, RegistryRejected) else str(event.kind)
                return [Delivery(event.participant, RegistryReport(
                    event=kind.REJECTED, seq=seq, client_order_id=event.client_order_id, action=action,
                    reason=RejectReason(event.reason, event.text),
                ))]  # fmt: skip
            case CreditsRetired():
                retired = event.kind is RetirementKind.RETIRE
                return [Delivery(event.participant, RegistryReport(
                    event=kind.RETIRED if retired else kind.CANCELLED, seq=seq,
                    client_order_id=event.client_order_id, instrument=event.instrument, quantity=event.tonnes,
                    certificate=certificate(event, seq, entry_hash, self.origins),
                ))]  # fmt: skip
            case LabelIssued():
                issued = RegistryReport(
                    event=kind.LABEL_ISSUED, seq=seq, label_id=event.label_id, product=event.product,
                    total_grams=event.total_grams, client_order_id=event.client_order_id,
                )  # fmt: skip
                return [Delivery(event.owner, issued), Delivery(event.verifier, issued)]
            case NeutralityClaimed():
                return [Delivery(event.participant, RegistryReport(
                    event=kind.NEUTRALITY_CLAIMED, seq=seq, client_order_id=event.client_order_id,
                    claim_id=event.claim_id, product=event.product, units=event.units,
                    required_tonnes=event.required_tonnes, certificates=list(event.certificates),
                ))]  # fmt: skip
            case ProductRegistered():
                return [Delivery(event.participant, RegistryReport(
                    event=kind.PRODUCT_REGISTERED, seq=seq, client_order_id=event.client_order_id,
                    product=event.product,
                ))]  # fmt: skip
            case ActivityRecorded():
                return [Delivery(event.participant, RegistryReport(
                    event=kind.ACTIVITY_RECORDED, seq=seq, client_order_id=event.client_order_id,
                    product=event.product, stage=event.stage, factor=event.factor_key, grams=event.grams,
                ))]  # fmt: skip
            case CutOffDeclared():
                return [Delivery(event.participant, RegistryReport(
                    event=kind.CUT_OFF_DECLARED, seq=seq, client_order_id=event.client_order_id,
                    product=event.product, stage=event.stage,
                ))]  # fmt: skip
            case FootprintRecalculated():
                return [Delivery(event.participant, RegistryReport(
                    event=kind.FOOTPRINT_RECALCULATED, seq=seq, client_order_id=event.client_order_id,
                    product=event.product, factor=event.to_table,
                    grams=sum(a.grams for a in event.activities),
                ))]  # fmt: skip
        return []
