"""`type = registry` reports: issuance, verification, retirement certificates, labels and claims."""

from __future__ import annotations

from typing import Any

from shared.domain.certificates import SerialOrigins, certificate
from shared.domain.codec import Event
from shared.domain.ledger import CreditsIssued
from shared.domain.registry import (
    ActivityRecorded,
    CreditsRetired,
    LabelIssued,
    NeutralityClaimed,
    ProductRegistered,
    RegistryRejected,
    RetirementRejected,
    VerificationAccepted,
)

__all__ = ["REGISTRY_REPORTED_TYPES", "RegistryReporter"]

REGISTRY_REPORTED_TYPES = frozenset(
    {
        "CreditsIssued",
        "VerificationAccepted",
        "RegistryRejected",
        "RetirementRejected",
        "CreditsRetired",
        "LabelIssued",
        "NeutralityClaimed",
        "ProductRegistered",
        "ActivityRecorded",
    }
)

Report = tuple[str, dict[str, Any]]


def _to(participant: str, seq: int, event: str, **fields: Any) -> Report:
    return f"out:{participant}", {"type": "registry", "event": event, "seq": seq, **fields}


class RegistryReporter:
    """Knows every issued block's origin, so certificates name their serials as labels."""

    def __init__(self) -> None:
        self.origins = SerialOrigins()

    def reports(self, seq: int, event: Event, entry_hash: bytes) -> list[Report]:
        match event:
            case CreditsIssued():
                self.origins.add(event)
                labels = self.origins.labels(event.instrument, (event.serials,))
                return [
                    _to(
                        event.participant,
                        seq,
                        "credits_issued",
                        instrument=event.instrument,
                        quantity=event.serials.tonnes,
                        serials=labels,
                        report_id=event.report_id,
                    )
                ]
            case VerificationAccepted():
                fields = {
                    "report_id": event.report_id,
                    "project": event.project,
                    "vintage": event.vintage,
                    "tonnes": event.tonnes,
                    "client_order_id": event.client_order_id,
                }
                return [
                    _to(event.verifier, seq, "verification_accepted", **fields),
                    _to(event.owner, seq, "verification_accepted", **fields),
                ]
            case RegistryRejected() | RetirementRejected():
                action = event.action if isinstance(event, RegistryRejected) else event.kind
                return [
                    _to(
                        event.participant,
                        seq,
                        "rejected",
                        client_order_id=event.client_order_id,
                        action=action,
                        reason={"code": event.reason, "text": event.text},
                    )
                ]
            case CreditsRetired():
                cert = certificate(event, seq, entry_hash, self.origins)
                return [
                    _to(
                        event.participant,
                        seq,
                        "retired" if event.kind == "retire" else "cancelled",
                        client_order_id=event.client_order_id,
                        certificate=cert,
                    )
                ]
            case LabelIssued():
                fields = {
                    "label_id": event.label_id,
                    "product": event.product,
                    "total_grams": event.total_grams,
                    "client_order_id": event.client_order_id,
                }
                return [
                    _to(event.owner, seq, "label_issued", **fields),
                    _to(event.verifier, seq, "label_issued", **fields),
                ]
            case NeutralityClaimed():
                return [
                    _to(
                        event.participant,
                        seq,
                        "neutrality_claimed",
                        client_order_id=event.client_order_id,
                        claim_id=event.claim_id,
                        product=event.product,
                        units=event.units,
                        required_tonnes=event.required_tonnes,
                        certificates=list(event.certificates),
                    )
                ]
            case ProductRegistered():
                return [
                    _to(
                        event.participant,
                        seq,
                        "product_registered",
                        client_order_id=event.client_order_id,
                        product=event.product,
                    )
                ]
            case ActivityRecorded():
                return [
                    _to(
                        event.participant,
                        seq,
                        "activity_recorded",
                        client_order_id=event.client_order_id,
                        product=event.product,
                        stage=event.stage,
                        factor=event.factor_key,
                        grams=event.grams,
                    )
                ]
        return []
