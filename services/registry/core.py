"""The registry core: verified issuance, retirement certificates, product footprint labels and claims."""

from __future__ import annotations

import hashlib

from services.registry.integrity import Reversal, check_submission, reversal_outcome, reviewed
from services.registry.snapshot import decode_registry, encode_registry
from services.registry.state import Certificate, RegistryState, Totals
from shared.domain.base import Refused
from shared.domain.codec import Event, tags
from shared.domain.differences import first_key_difference
from shared.domain.events import InstrumentListed
from shared.domain.integrity import ProjectReviewed, ReversalReported, VerifierAccredited
from shared.domain.ledger import BUFFER_ACCOUNT, CreditsIssued, ParticipantRegistered, SerialRange
from shared.domain.reasons import Reason
from shared.domain.registry import (
    CRADLE_TO_GATE_STAGES,
    STAGES,
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
    RetirementKind,
    RetirementRejected,
    StageFootprint,
    VerificationAccepted,
    VerificationSubmitted,
)

__all__ = ["VERIFIER_ROLE", "Registry"]

VERIFIER_ROLE = "verifier"
GRAMS_PER_TONNE = 1_000_000


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
                    answers = [self._claim(seq, event)]
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
                s.labels[event.product] = event
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
        activities = s.activities.get(req.product, [])
        if not activities:
            raise Refused(Reason.NO_ACTIVITY_DATA, f"no activity data recorded for {req.product}")
        grams = dict.fromkeys(STAGES, 0)
        for activity in activities:
            grams[activity.stage] += activity.grams
        gate_only = product.boundary == "cradle-to-gate"
        stages = tuple(
            StageFootprint(stage, grams[stage], not gate_only or stage in CRADLE_TO_GATE_STAGES)
            for stage in STAGES
        )
        return LabelIssued(
            label_id=f"LB-{seq}", product=product.product, owner=product.participant,
            verifier=req.participant, client_order_id=req.client_order_id, model=product.model,
            functional_unit=product.functional_unit, boundary=product.boundary, stages=stages,
            total_grams=sum(st.grams for st in stages if st.included),
            factor_tables=tuple(sorted({a.factor_table for a in activities})), issued_ns=event_ns,
        )  # fmt: skip

    def _claim(self, seq: int, req: NeutralityClaimSubmitted) -> NeutralityClaimed:
        s = self.state
        product = s.products.get(req.product)
        if product is None:
            raise Refused(Reason.UNKNOWN_PRODUCT, f"no product {req.product!r}")
        if product.participant != req.participant:
            raise Refused(Reason.NOT_OWNER, f"{req.product} is not yours")
        label = s.labels.get(req.product)
        if label is None:
            raise Refused(Reason.UNLABELLED_PRODUCT, f"{req.product} has no verified footprint label")
        covered = 0
        serials: list[str] = []
        for cert_id in req.certificates:
            cert = s.certificates.get(cert_id)
            problem = _unusable(cert, cert_id, req.participant, s.claimed.get(cert_id))
            if problem is not None:
                raise Refused(Reason.CERTIFICATE_UNUSABLE, problem)
            assert cert is not None
            covered += cert.retired.tonnes
            serials.extend(s.origins.labels(cert.retired.instrument, cert.retired.serials))
        footprint = label.total_grams * req.units
        required = -(-footprint // GRAMS_PER_TONNE)
        if covered < required:
            raise Refused(
                Reason.INSUFFICIENT_RETIREMENTS,
                f"{req.units} x {label.total_grams} g = {footprint} g needs {required} t retired, "
                f"the certificates cover {covered} t",
            )
        return NeutralityClaimed(
            claim_id=f"NC-{seq}", participant=req.participant, client_order_id=req.client_order_id,
            product=req.product, label_id=label.label_id, units=req.units, footprint_grams=footprint,
            required_tonnes=required, covered_tonnes=covered, certificates=req.certificates,
            serials=tuple(serials),
        )  # fmt: skip


def _unusable(cert: Certificate | None, cert_id: str, participant: str, claim: str | None) -> str | None:
    if cert is None:
        return f"no retirement certificate {cert_id!r}"
    if cert.retired.participant != participant or cert.retired.kind is not RetirementKind.RETIRE:
        return f"{cert_id} is not a retirement of yours"
    if claim is not None:
        return f"{cert_id} already backs claim {claim}"
    return None


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
