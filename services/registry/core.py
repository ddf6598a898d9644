"""The registry core: verified issuance, retirement certificates, product footprint labels and claims."""

from __future__ import annotations

import hashlib

from services.registry.claims import decide_claim, decide_label
from services.registry.integrity import Reversal, check_submission, reversal_outcome, reviewed
from services.registry.snapshot import decode_registry, encode_registry
from services.registry.state import Certificate, RegistryState, Totals
from shared.domain.base import Refused
from shared.domain.codec import Event, tags
from shared.domain.differences import first_key_difference
from shared.domain.events import InstrumentListed
from shared.domain.integrity import (
    PRODUCT_FOOTPRINT_SCOPE,
    ProjectReviewed,
    ReversalReported,
    VerifierAccredited,
    check_accreditation,
)
from shared.domain.labels import ClaimRulesSet, CutOffDeclared, FactorTablePublished, FootprintRecalculated
from shared.domain.ledger import BUFFER_ACCOUNT, CreditsIssued, ParticipantRegistered, SerialRange
from shared.domain.methodologies import day_of
from shared.domain.reasons import Reason
from shared.domain.registry import (
    ActivityRecorded,
    CreditsRetired,
    EligibilityChanged,
    IssuanceRequested,
    LabelIssued,
    LabelRequested,
    NeutralityClaimed,
    NeutralityClaimSubmitted,
    ProductRegistered,
    ProjectRegistered,
    RegistryRejected,
    RetirementRejected,
    VerificationAccepted,
    VerificationSubmitted,
)

__all__ = ["VERIFIER_ROLE", "Registry"]

VERIFIER_ROLE = "verifier"


class Registry:
    """Projects, verification reports, serial allocation, certificates, labels and claims as a fold over
    the log; implements the runtime's Processor. Every decision is applied to the state before it is
    returned, so the next request sees it before it lands in the log."""

    name = "registry"
    inputs = tags(
        ParticipantRegistered,
        InstrumentListed,
        EligibilityChanged,
        ProjectRegistered,
        VerificationSubmitted,
        IssuanceRequested,
        CreditsIssued,
        CreditsRetired,
        ProductRegistered,
        ActivityRecorded,
        LabelRequested,
        NeutralityClaimSubmitted,
        ProjectReviewed,
        VerifierAccredited,
        ReversalReported,
        RetirementRejected,
        FactorTablePublished,
        CutOffDeclared,
        FootprintRecalculated,
        ClaimRulesSet,
    )

    answers_to = tags(VerificationSubmitted, IssuanceRequested, LabelRequested, NeutralityClaimSubmitted)

    def __init__(self) -> None:
        self.state = RegistryState()

    def snapshot(self) -> bytes:
        """The whole state, canonically encoded (equal states give equal bytes)."""
        return encode_registry(self.state)

    def restore(self, data: bytes) -> None:
        self.state = decode_registry(data)

    def digest(self) -> str:
        return hashlib.sha256(self.snapshot()).hexdigest()

    def decide(self, seq: int, event_ns: int, event: Event) -> list[Event]:
        try:
            match event:
                case VerificationSubmitted():
                    answers: list[Event] = [self._verify(seq, event_ns, event)]
                case IssuanceRequested():
                    answers = list(self._issue(event))
                case LabelRequested():
                    answers = [self._label(seq, event_ns, event)]
                case NeutralityClaimSubmitted():
                    answers = [decide_claim(self.state, seq, event_ns, event)]
                case _:
                    self._evolve(seq, event)
                    return []
        except Refused as refused:
            return [_rejected(event, refused)]
        for answer in answers:
            self._evolve(seq, answer)
        return answers

    def first_difference(self, other: Registry) -> str | None:
        """The first totals row or certificate where two registry states differ, for an operator."""
        return first_key_difference(self.totals(), other.totals(), "registry totals") or first_key_difference(
            self.state.certificates, other.state.certificates, "certificate"
        )

    # ---------------------------------------------------------------- queries

    def totals(self) -> dict[tuple[str, str, int], Totals]:
        """(instrument, project, vintage) -> issued, buffer, retired and cancelled tonnes."""
        return dict(sorted(self.state.totals.items()))

    def certificates(self) -> list[Certificate]:
        return sorted(self.state.certificates.values(), key=lambda c: c.seq)

    # ---------------------------------------------------------------- evolve

    def _evolve(self, seq: int, event: Event) -> None:
        s = self.state
        match event:
            case ParticipantRegistered():
                s.roles[event.participant] = event.roles
            case InstrumentListed():
                s.instruments[event.instrument.symbol] = event.instrument
            case EligibilityChanged():
                s.change_eligibility(event)
            case ProjectRegistered():
                s.projects.setdefault(event.project, event)
            case VerificationAccepted():
                s.reports[event.report_id] = event
                s.periods.setdefault(event.project, []).append((event.period_start, event.period_end))
            case CreditsIssued():
                s.add_issued(event)
            case CreditsRetired() | RetirementRejected():
                if isinstance(event, CreditsRetired):
                    s.add_retired(seq, event)
                if event.client_order_id in s.reversals:
                    reversal_outcome(s.reversals[event.client_order_id], event)
            case ProjectReviewed() if event.project in s.projects:
                s.projects[event.project] = reviewed(s.projects[event.project], event)
            case VerifierAccredited():
                s.accreditations[event.verifier] = event
            case ReversalReported():
                s.reversals[event.client_order_id] = Reversal(event, seq)
            case ProductRegistered():
                s.products.setdefault(event.product, event)
            case ActivityRecorded():
                s.activities.setdefault(event.product, []).append(event)
            case LabelIssued():
                s.relabel(event)
            case FactorTablePublished():
                s.factor_tables.setdefault(event.version, event)
            case CutOffDeclared():
                s.cut_offs.setdefault(event.product, {})[event.stage] = event.justification
            case FootprintRecalculated():
                s.activities[event.product] = list(event.activities)
            case ClaimRulesSet():
                s.rules = event
            case NeutralityClaimed():
                s.claims[event.claim_id] = event
                for cert in event.certificates:
                    s.claimed[cert] = event.claim_id
            case _:
                pass

    # ---------------------------------------------------------------- decisions

    def _verifier(self, participant: str) -> None:
        if VERIFIER_ROLE not in self.state.roles.get(participant, ()):
            raise Refused(Reason.NOT_A_VERIFIER, f"{participant} is not an accredited verifier")

    def _verify(self, seq: int, event_ns: int, sub: VerificationSubmitted) -> VerificationAccepted:
        s = self.state
        self._verifier(sub.participant)
        project = s.projects.get(sub.project)
        if project is None:
            raise Refused(Reason.UNKNOWN_PROJECT, f"no project {sub.project!r}")
        if project.owner == sub.participant:
            raise Refused(Reason.CONFLICT_OF_INTEREST, f"{sub.participant} owns {sub.project}")
        check_submission(sub, project, s.accreditations.get(sub.participant), event_ns)
        inst = s.instruments[project.instrument]
        if not inst.accepts_vintage(sub.vintage):
            raise Refused(Reason.INELIGIBLE_CREDITS, f"{inst.symbol} does not accept vintage {sub.vintage}")
        for start, end in s.periods.get(sub.project, ()):
            if start <= sub.period_end and sub.period_start <= end:
                raise Refused(
                    Reason.OVERLAPPING_PERIOD,
                    f"{sub.period_start}..{sub.period_end} overlaps the verified period {start}..{end}",
                )
        return VerificationAccepted(
            report_id=f"VR-{seq}", verifier=sub.participant, client_order_id=sub.client_order_id,
            project=sub.project, owner=project.owner, instrument=project.instrument, vintage=sub.vintage,
            period_start=sub.period_start, period_end=sub.period_end, tonnes=sub.tonnes,
            report_hash=sub.report_hash,
        )  # fmt: skip

    def _issue(self, req: IssuanceRequested) -> list[CreditsIssued]:
        """The owner's block and the buffer's, numbered after the highest serial of the instrument.

        The buffer share is rounded up (ceil(tonnes x bps / 10000)): the pool that backs reversals is
        never short by a rounding, and the owner receives the rest.
        """
        s = self.state
        report = s.reports.get(req.report_id)
        if report is None:
            text = f"no accepted verification report {req.report_id!r}"
            raise Refused(Reason.UNVERIFIED_ISSUANCE, text)
        done = s.report_issued.get(req.report_id, 0)
        if req.tonnes <= 0 or done + req.tonnes > report.tonnes:
            raise Refused(
                Reason.OVER_ISSUANCE,
                f"{req.tonnes} t on top of {done} t issued exceeds the {report.tonnes} t verified",
            )
        project = s.projects[report.project]
        buffer = -(-req.tonnes * project.buffer_bps // 10_000)
        start = s.next_serial.get(report.instrument, 1)
        out: list[CreditsIssued] = []
        for holder, tonnes, is_buffer in (
            (report.owner, req.tonnes - buffer, False),
            (BUFFER_ACCOUNT, buffer, True),
        ):
            if tonnes <= 0:
                continue
            block = CreditsIssued(
                participant=holder, instrument=report.instrument,
                serials=SerialRange(start, start + tonnes - 1), project=report.project,
                vintage=report.vintage, report_id=report.report_id, buffer=is_buffer,
                standard=project.standard,
            )  # fmt: skip
            out.append(block)
            start += tonnes
        return out

    def _label(self, seq: int, event_ns: int, req: LabelRequested) -> LabelIssued:
        s = self.state
        self._verifier(req.participant)
        product = s.products.get(req.product)
        if product is None:
            raise Refused(Reason.UNKNOWN_PRODUCT, f"no product {req.product!r}")
        if product.participant == req.participant:
            raise Refused(Reason.CONFLICT_OF_INTEREST, f"{req.participant} makes {req.product}")
        # Product footprints are verified by bodies accredited for them (ISO 14067, under ISO 14065).
        check_accreditation(req.participant, s.accreditations.get(req.participant), day_of(event_ns),
                            (PRODUCT_FOOTPRINT_SCOPE,), "product footprints")  # fmt: skip
        return decide_label(s, seq, event_ns, req, product)


_ACTIONS = {
    "VerificationSubmitted": "submit_verification",
    "IssuanceRequested": "issue_verified",
    "LabelRequested": "issue_label",
    "NeutralityClaimSubmitted": "claim_neutral",
}


def _rejected(event: Event, refused: Refused) -> RegistryRejected:
    return RegistryRejected(
        participant=getattr(event, "participant", ""),
        client_order_id=getattr(event, "client_order_id", ""),
        action=_ACTIONS.get(type(event).__name__, type(event).__name__),
        reason=refused.reason,
        text=refused.text,
    )
