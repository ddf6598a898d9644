"""The registry core and the retirement rules of verification and settlement, one rule per test."""

from __future__ import annotations

import hashlib
import itertools

import msgspec
import pytest

from services.registry.core import Registry
from services.runtime.processor import restored
from services.settlement.core import Settlement
from services.verification.core import Verification
from shared.attestation import new_verifier_key, sign_report
from shared.domain.certificates import SerialOrigins, certificate, certificate_hash
from shared.domain.codec import Event
from shared.domain.events import InstrumentListed
from shared.domain.footprint import factor_table, grams_co2e
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.integrity import VerifierAccredited
from shared.domain.labels import CutOffDeclared, published
from shared.domain.ledger import BUFFER_ACCOUNT, CreditsIssued, ParticipantRegistered, SerialRange
from shared.domain.reasons import Reason
from shared.domain.registry import (
    ActivityRecorded,
    CreditsRetired,
    IssuanceRequested,
    LabelIssued,
    LabelRequested,
    NeutralityClaimed,
    NeutralityClaimSubmitted,
    ProductRegistered,
    ProjectRegistered,
    RegistryRejected,
    RetirementApproved,
    RetirementKind,
    RetirementRejected,
    RetirementRequested,
    VerificationAccepted,
    VerificationSubmitted,
)
from tests.support import SEALED_KEY

CCER = "CCER-2024"
HASH = hashlib.sha256(b"report").hexdigest()
PRIVATE, PUBLIC = new_verifier_key()
NOW_NS = 1_780_000_000_000_000_000  # 2026-05-28: every period below is over


def accredited(verifier: str) -> VerifierAccredited:
    return VerifierAccredited(
        verifier=verifier, scopes=("forestry", "product_footprint"), expires="2030-12-31", public_key=PUBLIC
    )


class Desk:
    """A registry core fed by hand, with a sequence counter standing in for the log."""

    def __init__(self, min_vintage: int = 0) -> None:
        self.r = Registry()
        self.seq = itertools.count(1)
        inst = Instrument(
            symbol=CCER,
            kind=InstrumentKind.OFFSET,
            standard="CCER",
            registry="CCER",
            vintage=2024,
            reference_price=7_800,
            min_vintage=min_vintage,
        )
        self.feed(InstrumentListed(instrument=inst))
        self.feed(published(factor_table()))
        for p, roles in (("forest", ("trader",)), ("cqc", ("verifier",)), ("drones", ("trader",))):
            self.feed(ParticipantRegistered(participant=p, name=p, key=SEALED_KEY, roles=roles))
        self.feed(accredited("cqc"))
        self.feed(
            ProjectRegistered(
                project="SF1",
                owner="forest",
                instrument=CCER,
                standard="CCER",
                methodology="m",
                country="CN",
                project_type="afforestation",
                sector="forestry",
            )
        )

    def feed(self, event: Event) -> list[Event]:
        return self.r.decide(next(self.seq), NOW_NS, event)

    def verify(
        self,
        tonnes: int = 1000,
        who: str = "cqc",
        period: tuple[str, str] = ("2024-01-01", "2024-12-31"),
        vintage: int = 2024,
        project: str = "SF1",
    ) -> Event:
        (out,) = self.feed(
            VerificationSubmitted(
                participant=who,
                client_order_id="v",
                project=project,
                vintage=vintage,
                period_start=period[0],
                period_end=period[1],
                tonnes=tonnes,
                report_hash=HASH,
                signature=sign_report(PRIVATE, project, period[0], period[1], vintage, tonnes, HASH),
            )
        )
        return out

    def issue(self, report_id: str, tonnes: int) -> list[Event]:
        return self.feed(
            IssuanceRequested(participant="operator", client_order_id="i", report_id=report_id, tonnes=tonnes)
        )


def reason(events: list[Event] | Event) -> Reason:
    event = events[0] if isinstance(events, list) else events
    assert isinstance(event, RegistryRejected), event
    return event.reason


def test_accepted_report_then_issuance_splits_owner_and_buffer_blocks() -> None:
    """1000 t verified, 995 t issued: the buffer takes ceil(10 %) = 100 t after the owner's 895 t."""
    d = Desk()
    accepted = d.verify()
    assert isinstance(accepted, VerificationAccepted)
    owner, buffer = d.issue(accepted.report_id, 995)
    assert isinstance(owner, CreditsIssued)
    assert isinstance(buffer, CreditsIssued)
    assert (owner.participant, owner.serials, owner.project, owner.vintage) == (
        "forest",
        SerialRange(1, 895),
        "SF1",
        2024,
    )
    assert (buffer.participant, buffer.serials, buffer.buffer) == (
        BUFFER_ACCOUNT,
        SerialRange(896, 995),
        True,
    )
    assert d.r.state.origins.labels(CCER, (SerialRange(890, 900),)) == [
        "CCER-SF1-2024-890-895",  # labels follow issued blocks: owner's, then the buffer's
        "CCER-SF1-2024-896-900",
    ]


def test_issuance_without_a_report_or_beyond_it_is_refused() -> None:
    """Unverified issuance and over-issuance are both refused; what was issued stays countable."""
    d = Desk()
    assert reason(d.issue("VR-404", 10)) is Reason.UNVERIFIED_ISSUANCE
    accepted = d.verify(100)
    assert isinstance(accepted, VerificationAccepted)
    assert reason(d.issue(accepted.report_id, 101)) is Reason.OVER_ISSUANCE
    assert len(d.issue(accepted.report_id, 60)) == 2
    assert reason(d.issue(accepted.report_id, 41)) is Reason.OVER_ISSUANCE
    assert d.r.state.report_issued[accepted.report_id] == 60


def test_serials_continue_after_the_highest_issued_of_the_instrument() -> None:
    """A second report's credits are numbered after every earlier block, allowances included."""
    d = Desk()
    d.feed(CreditsIssued(participant="drones", instrument=CCER, serials=SerialRange(1, 50)))
    first = d.verify(10)
    assert isinstance(first, VerificationAccepted)
    owner, _ = d.issue(first.report_id, 10)
    assert isinstance(owner, CreditsIssued)
    assert owner.serials == SerialRange(51, 59)


@pytest.mark.parametrize(
    ("who", "project", "period", "vintage", "expected"),
    [
        ("drones", "SF1", ("2024-01-01", "2024-12-31"), 2024, Reason.NOT_A_VERIFIER),
        ("cqc", "NOPE", ("2024-01-01", "2024-12-31"), 2024, Reason.UNKNOWN_PROJECT),
        ("cqc", "SF1", ("2016-01-01", "2016-12-31"), 2016, Reason.INELIGIBLE_CREDITS),
        ("cqc", "SF1", ("2024-12-31", "2025-06-30"), 2025, Reason.OVERLAPPING_PERIOD),
    ],
)
def test_verification_rejections(
    who: str, project: str, period: tuple[str, str], vintage: int, expected: Reason
) -> None:
    """Non-verifiers, unknown projects, vintages outside the window and overlapping periods."""
    d = Desk(min_vintage=2017)
    assert isinstance(d.verify(), VerificationAccepted)
    assert reason(d.verify(who=who, project=project, period=period, vintage=vintage)) is expected


def test_a_verifier_cannot_verify_its_own_project() -> None:
    """Conflict of interest: the project owner is a verifier too, and still may not verify it."""
    d = Desk()
    d.feed(ParticipantRegistered(participant="v2", name="v2", key=SEALED_KEY, roles=("verifier",)))
    d.feed(accredited("v2"))
    d.feed(
        ProjectRegistered(
            project="OWN",
            owner="v2",
            instrument=CCER,
            standard="CCER",
            methodology="m",
            country="CN",
            project_type="x",
            sector="forestry",
        )
    )
    assert reason(d.verify(who="v2", project="OWN")) is Reason.CONFLICT_OF_INTEREST


def activity(product: str, stage: str, factor: str, amount: str, who: str = "drones") -> ActivityRecorded:
    f = factor_table().factors[factor]
    return ActivityRecorded(
        participant=who,
        client_order_id="a",
        product=product,
        stage=stage,
        factor_key=factor,
        factor_table="v1",
        amount=amount,
        unit=f.unit,
        factor=f.kg_co2e,
        grams=grams_co2e(amount, f.kg_co2e),
    )


def retired(cert: str, who: str, tonnes: int, kind: RetirementKind = RetirementKind.RETIRE) -> CreditsRetired:
    return CreditsRetired(
        purpose="product_claim:SKY",
        certificate_id=cert,
        participant=who,
        beneficiary="b",
        reason="r",
        instrument=CCER,
        serials=(SerialRange(1, tonnes),),
        tonnes=tonnes,
        kind=kind,
        client_order_id="x",
        request_seq=1,
    )


def labelled(boundary: str = "cradle-to-grave") -> Desk:
    d = Desk()
    d.feed(
        ProductRegistered(
            participant="drones",
            client_order_id="p",
            product="SKY",
            model="S4",
            functional_unit="one drone",
            boundary=boundary,
        )
    )
    d.feed(activity("SKY", "materials", "aluminium_primary", "1.2"))  # 19.32 kg
    d.feed(activity("SKY", "use", "electricity_cn_grid", "1000"))  # 570.3 kg
    for stage in ("production", "distribution", "end_of_life"):
        d.feed(CutOffDeclared(participant="drones", client_order_id="k", product="SKY", stage=stage,
                              justification="below 1 % of the total by the supplier's data"))  # fmt: skip
    # Verified offsets of SF1 2024 held by the maker, so its certificates name a project and vintage.
    d.feed(CreditsIssued(participant="drones", instrument=CCER, serials=SerialRange(1, 100), project="SF1",
                         vintage=2024, report_id="VR-1", standard="CCER"))  # fmt: skip
    return d


def test_label_sums_stages_within_the_declared_boundary() -> None:
    """Cradle-to-grave counts the use stage; cradle-to-gate reports it but leaves it out of the total."""
    for boundary, total in (("cradle-to-grave", 589_620), ("cradle-to-gate", 19_320)):
        d = labelled(boundary)
        (label,) = d.feed(LabelRequested(participant="cqc", client_order_id="l", product="SKY"))
        assert isinstance(label, LabelIssued)
        assert label.total_grams == total
        assert [(s.stage, s.grams) for s in label.stages if s.grams] == [
            ("materials", 19_320),
            ("use", 570_300),
        ]


def test_label_rejections() -> None:
    """Only verifiers label, never their own product, never a product without activity data."""
    d = labelled()
    assert reason(d.feed(LabelRequested(participant="forest", client_order_id="l", product="SKY"))) is (
        Reason.NOT_A_VERIFIER
    )
    d.feed(ParticipantRegistered(participant="v2", name="v2", key=SEALED_KEY, roles=("verifier", "trader")))
    d.feed(
        ProductRegistered(
            participant="v2",
            client_order_id="p",
            product="MINE",
            model="m",
            functional_unit="u",
            boundary="cradle-to-gate",
        )
    )
    d.feed(activity("MINE", "production", "electricity_cn_grid", "5", who="v2"))
    assert reason(d.feed(LabelRequested(participant="v2", client_order_id="l", product="MINE"))) is (
        Reason.CONFLICT_OF_INTEREST
    )
    d.feed(
        ProductRegistered(
            participant="drones",
            client_order_id="p",
            product="EMPTY",
            model="m",
            functional_unit="u",
            boundary="cradle-to-gate",
        )
    )
    assert reason(d.feed(LabelRequested(participant="cqc", client_order_id="l", product="EMPTY"))) is (
        Reason.NO_ACTIVITY_DATA
    )


def test_labels_need_a_current_accreditation_for_product_footprints() -> None:
    """A verifier labels only with an accreditation that is current and names `product_footprint` (ISO
    14067 verification, accredited under ISO 14065): none, one for forestry only, or one that ended is
    refused with its own code; a re-accreditation that covers footprints labels."""
    d = labelled()
    d.feed(ParticipantRegistered(participant="v2", name="v2", key=SEALED_KEY, roles=("verifier",)))

    def label() -> list[Event]:
        return d.feed(LabelRequested(participant="v2", client_order_id="l", product="SKY"))

    assert reason(label()) is Reason.NOT_ACCREDITED
    d.feed(VerifierAccredited(verifier="v2", scopes=("forestry",), expires="2030-12-31", public_key=PUBLIC))
    assert reason(label()) is Reason.OUTSIDE_SCOPE
    ended = VerifierAccredited(verifier="v2", scopes=("product_footprint",), expires="2026-05-27",
                               public_key=PUBLIC)  # fmt: skip
    d.feed(ended)  # NOW_NS is 2026-05-28
    assert reason(label()) is Reason.ACCREDITATION_EXPIRED
    d.feed(msgspec.structs.replace(ended, expires="2026-05-28"))  # the last day still counts
    (issued,) = label()
    assert isinstance(issued, LabelIssued)
    assert issued.verifier == "v2"


def test_neutrality_claim_needs_enough_unused_own_retirements() -> None:
    """589.62 kg x 10 units = 5.8962 t -> 6 t; 5 t is too few, someone else's or a cancellation does not
    count, and a certificate backs one claim only."""
    d = labelled()
    (label,) = d.feed(LabelRequested(participant="cqc", client_order_id="l", product="SKY"))
    assert isinstance(label, LabelIssued)
    d.feed(retired("RC-1", "drones", 5))
    d.feed(retired("RC-2", "forest", 50))
    d.feed(retired("RC-3", "drones", 1))
    d.feed(retired("RC-4", "drones", 9, kind=RetirementKind.CANCEL))

    def claim(*certs: str, units: int = 10) -> list[Event]:
        return d.feed(
            NeutralityClaimSubmitted(
                participant="drones", client_order_id="c", product="SKY", units=units, certificates=certs,
                label_id=label.label_id, period_start="2025-01-01", period_end="2025-12-31", units_shipped=10,
            )
        )

    assert reason(claim("RC-1")) is Reason.INSUFFICIENT_RETIREMENTS
    assert reason(claim("RC-1", "RC-2")) is Reason.CERTIFICATE_UNUSABLE
    assert reason(claim("RC-1", "RC-4")) is Reason.CERTIFICATE_UNUSABLE
    assert reason(claim("RC-9")) is Reason.CERTIFICATE_UNUSABLE
    (ok,) = claim("RC-1", "RC-3")
    assert isinstance(ok, NeutralityClaimed)
    assert (ok.required_tonnes, ok.covered_tonnes, ok.footprint_grams) == (6, 6, 5_896_200)
    assert reason(claim("RC-3", units=1)) is Reason.CERTIFICATE_UNUSABLE


def test_verification_freezes_retirements_and_refuses_what_is_not_free() -> None:
    """Retiring needs free (held - frozen) tonnes; the approval freezes them until settlement retires."""
    v = Verification()
    v.decide(1, 0, CreditsIssued(participant="a", instrument=CCER, serials=SerialRange(1, 10)))
    req = RetirementRequested(
        participant="a", client_order_id="r1", instrument=CCER, quantity=8, beneficiary="b", reason="r"
    )
    (ok,) = v.decide(2, 0, req)
    assert isinstance(ok, RetirementApproved)
    assert v.account("a")[2][CCER] == (10, 8)
    (no,) = v.decide(
        3,
        0,
        RetirementRequested(
            participant="a", client_order_id="r2", instrument=CCER, quantity=3, beneficiary="b", reason="r"
        ),
    )
    assert isinstance(no, RetirementRejected)
    assert no.reason is Reason.INSUFFICIENT_CREDITS
    v.decide(5, 0, msgspec.structs.replace(retired("RC-4", "a", 8), request_seq=2))
    assert v.account("a")[2][CCER] == (2, 0)
    v.check_invariants()


def test_settlement_retires_the_oldest_serials_for_good() -> None:
    """The certificate is named after the approval's seq; retired serials leave every holding."""
    s = Settlement()
    s.decide(1, 0, ParticipantRegistered(participant="a", name="a", key=SEALED_KEY))
    s.decide(2, 0, CreditsIssued(participant="a", instrument=CCER, serials=SerialRange(1, 10)))
    s.decide(3, 0, CreditsIssued(participant=BUFFER_ACCOUNT, instrument=CCER, serials=SerialRange(11, 12)))
    ok = RetirementApproved(
        participant="a",
        client_order_id="r",
        instrument=CCER,
        quantity=4,
        beneficiary="b",
        reason="r",
        kind=RetirementKind.RETIRE,
        request_seq=3,
    )
    (done,) = s.decide(7, 0, ok)
    assert isinstance(done, CreditsRetired)
    assert (done.certificate_id, done.serials, done.tonnes) == ("RC-7", (SerialRange(1, 4),), 4)
    assert s.holdings("a") == {CCER: [SerialRange(5, 10)]}
    assert s.retired(CCER) == [SerialRange(1, 4)]
    s.check_invariants()
    assert restored(Settlement(), s.snapshot()) == s


def test_certificate_hash_covers_serials_seq_and_chain_hash() -> None:
    """Labels split at issued-block boundaries; any change to the body changes the hash."""
    origins = SerialOrigins()
    origins.add(
        CreditsIssued(
            participant="f",
            instrument=CCER,
            serials=SerialRange(1, 5),
            project="SF1",
            vintage=2023,
            standard="CCER",
        )
    )
    origins.add(
        CreditsIssued(
            participant="f",
            instrument=CCER,
            serials=SerialRange(6, 9),
            project="SF2",
            vintage=2024,
            standard="CCER",
        )
    )
    ev = CreditsRetired(
        certificate_id="RC-9",
        participant="d",
        beneficiary="b",
        reason="r",
        instrument=CCER,
        serials=(SerialRange(4, 7),),
        tonnes=4,
        kind=RetirementKind.RETIRE,
        client_order_id="x",
        request_seq=8,
    )
    cert = certificate(ev, 10, b"\x01" * 32, origins)
    assert [p["label"] for p in cert["serials"]] == ["CCER-SF1-2023-4-5", "CCER-SF2-2024-6-7"]
    assert cert["vintages"] == [2023, 2024]
    assert cert["hash"] == certificate_hash(cert)
    assert certificate(ev, 11, b"\x01" * 32, origins)["hash"] != cert["hash"]


def test_registry_snapshot_restores_an_equal_core_that_decides_the_same() -> None:
    """Issuance, retirements, a label and a claim: the restored core has the same digest and then
    answers the next requests exactly as the original (snapshot + tail = full replay)."""
    d = labelled()
    report = d.verify(1000)
    assert isinstance(report, VerificationAccepted)
    d.issue(report.report_id, 600)
    d.feed(LabelRequested(participant="cqc", client_order_id="l", product="SKY"))
    d.feed(retired("RC-1", "drones", 6))
    copy = restored(Registry(), d.r.snapshot())
    assert copy.digest() == d.r.digest()
    assert copy.snapshot() == d.r.snapshot()
    tail: list[Event] = [
        NeutralityClaimSubmitted(
            participant="drones", client_order_id="c", product="SKY", units=10, certificates=("RC-1",),
            label_id="LB-1", period_start="2025-01-01", period_end="2025-12-31", units_shipped=10,
        ),
        IssuanceRequested(
            participant="operator", client_order_id="i2", report_id=report.report_id, tonnes=500
        ),
    ]
    for event in tail:
        assert copy.decide(99, 1, event) == d.r.decide(99, 1, event)
    assert copy.digest() == d.r.digest()
    assert Registry().digest() != d.r.digest()
