"""Registry events of the integrity rules: project review, verifier accreditation, reversals."""

from __future__ import annotations

import enum

from shared.domain.base import DomainEvent

__all__ = [
    "IntegrityEvent",
    "ProjectReviewed",
    "ProjectStatus",
    "ReversalReported",
    "VerifierAccredited",
]


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
