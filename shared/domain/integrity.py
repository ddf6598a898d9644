"""Registry events of the integrity rules: project review, verifier accreditation, reversals."""

from __future__ import annotations

import enum

from shared.domain.base import DomainEvent, Refused
from shared.domain.reasons import Reason

__all__ = [
    "EMISSIONS_SCOPE",
    "PRODUCT_FOOTPRINT_SCOPE",
    "IntegrityEvent",
    "ProjectReviewed",
    "ProjectStatus",
    "ReversalReported",
    "VerifierAccredited",
    "check_accreditation",
    "emissions_scopes",
]

# Scopes beside the methodology table's sectors and methodology ids (docs/registry.md): product carbon
# footprints (ISO 14067, verifiers accredited under ISO 14065), and organisations' verified emissions
# (ISO 14064-3 verification of a GHG statement) under every scheme, or `emissions:<scheme>` under one.
PRODUCT_FOOTPRINT_SCOPE = "product_footprint"
EMISSIONS_SCOPE = "emissions"


class ProjectStatus(enum.StrEnum):
    REGISTERED = "registered"
    UNDER_REVIEW = "under_review"  # its location or origin id matches an existing project's
    REJECTED = "rejected"  # the operator's review found it a duplicate


class ProjectReviewed(DomainEvent, frozen=True):
    """The operator's decision on a project held under review: approved (registered) or rejected."""

    project: str
    approved: bool
    note: str = ""


class VerifierAccredited(DomainEvent, frozen=True):
    """A verifier's accreditation: its scopes (sectors or methodology ids), the last day it is valid,
    and the Ed25519 public key (hex) its reports are signed with. A later one replaces it."""

    verifier: str
    scopes: tuple[str, ...]
    expires: str  # ISO date, inclusive
    public_key: str
    accreditor: str = ""  # the accreditation body, e.g. CNAS


class ReversalReported(DomainEvent, frozen=True):
    """A loss of stored carbon (fire, pest, harvest...) on a project; intake logs the cancellation of as
    many BUFFER tonnes right after it, under the same client order id, which links the two."""

    participant: str  # the operator
    client_order_id: str
    project: str
    instrument: str
    tonnes: int
    description: str
    occurred_on: str = ""


IntegrityEvent = ProjectReviewed | VerifierAccredited | ReversalReported


def emissions_scopes(scheme: str) -> tuple[str, ...]:
    """The scopes that cover verified emissions under `scheme`: every scheme's, or that one's."""
    return EMISSIONS_SCOPE, f"{EMISSIONS_SCOPE}:{scheme}"


def check_accreditation(
    verifier: str, accreditation: VerifierAccredited | None, today: str, covering: tuple[str, ...], what: str
) -> VerifierAccredited:
    """The verifier's accreditation; refused unless it is current on `today` (ISO day, expiry inclusive)
    and has one of the scopes `covering` what it verifies (`what`, for the refusal's text)."""
    if accreditation is None:
        raise Refused(Reason.NOT_ACCREDITED, f"{verifier} holds no accreditation")
    if today > accreditation.expires:
        text = f"{verifier}'s accreditation ended {accreditation.expires}"
        raise Refused(Reason.ACCREDITATION_EXPIRED, text)
    if not set(covering) & set(accreditation.scopes):
        text = f"{verifier} is accredited for {', '.join(accreditation.scopes)}, not {what}"
        raise Refused(Reason.OUTSIDE_SCOPE, text)
    return accreditation
