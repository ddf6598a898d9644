"""The registry's integrity rules for verification reports, and its record of reviews, accreditations
and reversals (docs/registry.md, "Only tonnes that deserve to exist")."""

from __future__ import annotations

import msgspec

from shared.attestation import verify_report
from shared.domain.base import Refused
from shared.domain.integrity import (
    ProjectReviewed,
    ProjectStatus,
    ReversalReported,
    VerifierAccredited,
    check_accreditation,
)
from shared.domain.ledger import BUFFER_ACCOUNT
from shared.domain.methodologies import day_of
from shared.domain.reasons import Reason
from shared.domain.registry import (
    CreditsRetired,
    ProjectRegistered,
    RetirementKind,
    RetirementRejected,
    VerificationSubmitted,
)

__all__ = ["Reversal", "check_submission", "reviewed", "reversal_outcome"]


class Reversal(msgspec.Struct, array_like=True):
    """A reported loss and what became of the buffer cancellation logged with it."""

    reported: ReversalReported
    seq: int
    certificate: str = ""  # RC-... of the BUFFER cancellation, once settled
    cancelled: int = 0
    refused: str = ""  # why verification refused the cancellation (the pooled buffer was short)


def reviewed(project: ProjectRegistered, review: ProjectReviewed) -> ProjectRegistered:
    status = ProjectStatus.REGISTERED if review.approved else ProjectStatus.REJECTED
    return msgspec.structs.replace(project, status=status)


def reversal_outcome(reversal: Reversal, event: CreditsRetired | RetirementRejected) -> None:
    """Link the BUFFER cancellation (same client order id) to its reversal."""
    if event.participant != BUFFER_ACCOUNT or event.kind is not RetirementKind.CANCEL:
        return
    if isinstance(event, CreditsRetired):
        reversal.certificate, reversal.cancelled = event.certificate_id, event.tonnes
    else:
        reversal.refused = event.text


def check_submission(
    sub: VerificationSubmitted,
    project: ProjectRegistered,
    accreditation: VerifierAccredited | None,
    event_ns: int,
) -> None:
    """Refuse a report of a project not (yet) admitted, by a verifier not accredited for it, unsigned,
    or for a period not over, outside the crediting period or before the programme's cut-off."""
    if project.status is ProjectStatus.UNDER_REVIEW:
        text = f"{project.project} matches {', '.join(project.duplicate_of)}: held for review"
        raise Refused(Reason.PROJECT_UNDER_REVIEW, text)
    if project.status is ProjectStatus.REJECTED:
        raise Refused(Reason.PROJECT_REJECTED, f"{project.project} was rejected on review")
    today = day_of(event_ns)
    _accredited(sub, project, accreditation, today)
    if sub.period_end >= today:
        # Ex-post only: a monitoring period is verified once it is over, never a forecast.
        raise Refused(Reason.EX_ANTE_PERIOD, f"the period ends {sub.period_end}, not before today ({today})")
    if project.crediting_start and not project.crediting_start <= sub.period_start <= sub.period_end <= (
        project.crediting_end
    ):
        text = f"{sub.period_start}..{sub.period_end} is outside the crediting period "
        raise Refused(
            Reason.OUTSIDE_CREDITING_PERIOD, text + f"{project.crediting_start}..{project.crediting_end}"
        )
    if project.reduction_cutoff and sub.period_start <= project.reduction_cutoff:
        text = f"{project.standard} admits reductions generated after {project.reduction_cutoff} only"
        raise Refused(Reason.BEFORE_CUTOFF, f"{text}; the period starts {sub.period_start}")


def _accredited(
    sub: VerificationSubmitted, project: ProjectRegistered, acc: VerifierAccredited | None, today: str
) -> None:
    what = f"{project.sector or '?'} ({project.methodology})"
    acc = check_accreditation(sub.participant, acc, today, (project.sector, project.methodology), what)
    signed = verify_report(
        acc.public_key, sub.signature, sub.project, sub.period_start, sub.period_end, sub.vintage,
        sub.tonnes, sub.report_hash,
    )  # fmt: skip
    if not signed:
        text = "signature is not the verifier's Ed25519 over the report (shared/attestation.py)"
        raise Refused(Reason.BAD_REPORT_SIGNATURE, text)
