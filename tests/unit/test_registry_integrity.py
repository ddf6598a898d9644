"""Only tonnes that deserve to exist: the hostile cases of issue 15 driven through the whole exchange in
one process (intake's edge checks, the registry and verification cores), one rule per test."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import msgspec
from rich.console import Console

from services.cli.readmodel import replay_entries
from services.cli.registry_projects import print_projects, project_rows
from services.harness import InProcessExchange
from services.registry.core import Registry
from services.runtime.processor import restored
from shared.attestation import new_verifier_key, report_message, sign_report, verify_report
from shared.domain.codec import Event, decode_event
from shared.domain.integrity import ProjectStatus, VerifierAccredited
from shared.domain.ledger import BUFFER_ACCOUNT, CommandRejected, CreditsIssued
from shared.domain.registry import (
    CreditsRetired,
    ProjectRegistered,
    RegistryRejected,
    RetirementKind,
    VerificationAccepted,
    VerificationSubmitted,
)
from tests.support import FakeClock

NOW_NS = 1_780_000_000_000_000_000  # 2026-05-28 (UTC): the harness clock starts here
CCER = "CCER-T"
HASH = hashlib.sha256(b"monitoring report").hexdigest()
KEYS = {"forest": "forest-key-0123456789", "cqc": "cqc-key-0123456789", "buyer": "buyer-key-0123456789",
        "gdv": "gdv-key-0123456789"}  # fmt: skip
SITE = {"admin_code": "441200", "latitude": "23.046900", "longitude": "112.465100"}
PROJECT = {
    "owner": "forest", "instrument": CCER, "standard": "CCER", "methodology": "CCER-14-001-V01",
    "country": "CN", "project_type": "afforestation", "start_date": "2021-03-01",
    "crediting_start": "2021-03-01", "crediting_end": "2040-12-31", **SITE, "origin_registry": "CCER",
    "validator": "South China Validation Co.",
}  # fmt: skip


class Desk:
    """An exchange with a CCER pool, a forest owner, an accredited verifier (cqc) and a buyer."""

    def __init__(self, ex: InProcessExchange) -> None:
        self.ex = ex
        self.private, self.public = new_verifier_key()
        self.n = 0

    @classmethod
    async def make(cls) -> Desk:
        desk = cls(InProcessExchange(clock=FakeClock(start=NOW_NS)))
        ex = desk.ex
        await ex.submit([ex.operator_command("list", "list_instrument", symbol=CCER, kind="offset",
                                             standard="CCER", registry="CCER", vintage=2024,
                                             reference_price="78.00")])  # fmt: skip
        roles = {"cqc": ["verifier", "trader"], "gdv": ["verifier", "trader"]}
        await ex.submit([ex.register(p, key, roles=roles.get(p, ["trader"])) for p, key in KEYS.items()])
        await ex.submit([ex.operator_command("dep", "deposit_cash", participant="cqc", amount="100000.00")])
        await desk.op("accredit_verifier", verifier="cqc", scopes=["forestry"], expires="2030-12-31",
                      public_key=desk.public, accreditor="CNAS")  # fmt: skip
        return desk

    def cid(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    async def op(self, action: str, **args: Any) -> list[Event]:
        """An operator command: intake's events for it and the cores' answers to them."""
        cid = self.cid(action)
        await self.ex.submit([self.ex.operator_command(cid, action, **args)])
        return await self.decision("operator", cid)

    async def decision(self, sender: str, cid: str) -> list[Event]:
        entries = await self.ex.log.read(0, 10**9)
        mine = {
            e.seq for e in entries if e.producer == "intake" and e.event_id.startswith(f"{sender}/{cid}/")
        }
        return [
            decode_event(e.body)
            for e in entries
            if e.seq in mine or e.causation in {f"log:{s}" for s in mine}
        ]

    async def project(self, project: str, origin_id: str | None = None, **extra: Any) -> list[Event]:
        args = {**PROJECT, "origin_id": origin_id or project, **extra}
        return await self.op("register_project", project=project, **args)

    async def verify(
        self, project: str, start: str, end: str, vintage: int, tonnes: int = 1000, *, who: str = "cqc",
        key: str | None = None, signed_tonnes: int | None = None,
    ) -> Event:  # fmt: skip
        """The registry's answer (or the edge's refusal) to a signed report."""
        signature = sign_report(
            key or self.private, project, start, end, vintage, signed_tonnes or tonnes, HASH
        )
        cid = self.cid("vr")
        args = {"project": project, "vintage": vintage, "period_start": start, "period_end": end,
                "tonnes": tonnes, "report_hash": HASH, "signature": signature}  # fmt: skip
        await self.ex.submit([(who, self.ex.command(who, KEYS[who], type="registry", client_order_id=cid,
                                                    action="submit_verification", args=args))])  # fmt: skip
        return (await self.decision(who, cid))[-1]

    async def issue(self, project: str, start: str, end: str, vintage: int, tonnes: int) -> list[Event]:
        accepted = await self.verify(project, start, end, vintage, tonnes)
        assert isinstance(accepted, VerificationAccepted), accepted
        return await self.op("issue_verified", report_id=accepted.report_id, tonnes=tonnes)

    async def issued(self) -> list[CreditsIssued]:
        return [e for e in map(decode_event, (x.body for x in await self.ex.log.read(0, 10**9)))
                if isinstance(e, CreditsIssued)]  # fmt: skip


def refused(event: Event) -> str:
    assert isinstance(event, RegistryRejected | CommandRejected), event
    return str(event.reason)


def last(events: list[Event]) -> Event:
    assert events, "no decision in the log"
    return events[-1]


async def test_an_ex_ante_period_is_refused_and_nothing_is_issued() -> None:
    """Hostile case: a verifier verified 2031 and 50,000 t were issued. Only periods over by the day of
    submission (the entry's log time) are verified: one ending today is not over either."""
    d = await Desk.make()
    await d.project("SF1")
    assert refused(await d.verify("SF1", "2031-01-01", "2031-12-31", 2031, 50_000)) == "ex_ante_period"
    assert refused(await d.verify("SF1", "2026-01-01", "2026-05-28", 2026)) == "ex_ante_period"
    assert (
        refused(last(await d.op("issue_verified", report_id="VR-1", tonnes=50_000))) == "unverified_issuance"
    )
    assert await d.issued() == []
    assert isinstance(await d.verify("SF1", "2026-01-01", "2026-05-27", 2026), VerificationAccepted)


async def test_the_same_forest_under_a_second_id_is_held_for_review() -> None:
    """Hostile case: the same forest registered again was verified and issued for the same 2024 period.
    A new project at the same site (within 0.01 degree) or of the same origin id is held under review;
    its reports are refused until the operator decides, and a rejected one stays refused."""
    d = await Desk.make()
    await d.project("SF1", origin_id="CCER-44-0001")
    assert len(await d.issue("SF1", "2024-01-01", "2024-12-31", 2024, 1000)) == 3
    (twin,) = await d.project("SF2", origin_id="CCER-44-0002", latitude="23.049000")  # 230 m north
    assert isinstance(twin, ProjectRegistered)
    assert (twin.status, twin.duplicate_of) == (ProjectStatus.UNDER_REVIEW, ("SF1",))
    (same_origin,) = await d.project("SF3", origin_id="ccer-44-0001", latitude="30.0", longitude="120.0")
    assert isinstance(same_origin, ProjectRegistered)
    assert same_origin.status is ProjectStatus.UNDER_REVIEW
    (elsewhere,) = await d.project("SF4", origin_id="CCER-44-0004", latitude="25.0", longitude="110.0")
    assert isinstance(elsewhere, ProjectRegistered)
    assert elsewhere.status is ProjectStatus.REGISTERED
    assert refused(await d.verify("SF2", "2024-01-01", "2024-12-31", 2024)) == "project_under_review"
    await d.op("review_project", project="SF2", decision="reject", note="same forest as SF1")
    assert refused(await d.verify("SF2", "2024-01-01", "2024-12-31", 2024)) == "project_rejected"
    assert (
        refused(last(await d.op("review_project", project="SF2", decision="approve"))) == "not_under_review"
    )
    assert (
        refused(last(await d.op("review_project", project="NOPE", decision="approve"))) == "unknown_project"
    )
    await d.op("review_project", project="SF3", decision="approve", note="a second phase, other stands")
    assert isinstance(await d.verify("SF3", "2024-01-01", "2024-12-31", 2024), VerificationAccepted)
    assert [(e.project, e.participant) for e in await d.issued()] == [
        ("SF1", "forest"),
        ("SF1", BUFFER_ACCOUNT),
    ]


async def test_reductions_before_the_ccer_cutoff_date_are_refused() -> None:
    """Hostile case: 2019 reductions entered the CCER pool. The 2023 CCER rules admit reductions
    generated after 2020-09-22: the cut-off is a date, so a 2020 period starting before it is refused too."""
    d = await Desk.make()
    await d.project("OLD", start_date="2018-01-01", crediting_start="2018-01-01")
    assert refused(await d.verify("OLD", "2019-01-01", "2019-12-31", 2019)) == "before_cutoff"
    assert refused(await d.verify("OLD", "2020-01-01", "2020-12-31", 2020)) == "before_cutoff"
    assert refused(await d.verify("OLD", "2020-09-22", "2020-12-31", 2020)) == "before_cutoff"
    assert isinstance(await d.verify("OLD", "2020-09-23", "2020-12-31", 2020), VerificationAccepted)
    (early,) = await d.project("EARLY", start_date="2012-11-08", crediting_start="2013-01-01")
    assert refused(early) == "before_cutoff"  # construction must start after 2012-11-08
    (spent,) = await d.project("SPENT", start_date="2014-01-01", crediting_start="2014-01-01",
                               crediting_end="2020-09-22")  # fmt: skip
    assert refused(spent) == "before_cutoff"


async def test_a_period_outside_the_crediting_period_is_refused() -> None:
    d = await Desk.make()
    await d.project("SHORT", crediting_end="2023-12-31")
    assert refused(await d.verify("SHORT", "2024-01-01", "2024-12-31", 2024)) == "outside_crediting_period"
    assert refused(await d.verify("SHORT", "2021-01-01", "2021-12-31", 2021)) == "outside_crediting_period"
    assert isinstance(await d.verify("SHORT", "2022-01-01", "2022-12-31", 2022), VerificationAccepted)


async def test_projects_must_be_complete_and_on_a_listed_active_methodology() -> None:
    """Hostile case: a project was registered with empty methodology and country."""
    d = await Desk.make()
    (empty,) = await d.project("E1", methodology="", country="")
    assert refused(empty) == "incomplete_project"
    assert isinstance(empty, CommandRejected)
    assert "methodology, country" in empty.text
    cid = d.cid("bare")
    bare = {"project": "E2", "owner": "forest", "instrument": CCER, "standard": "CCER"}
    await d.ex.submit([d.ex.operator_command(cid, "register_project", **bare)])
    assert refused(last(await d.decision("operator", cid))) == "incomplete_project"
    assert refused(last(await d.project("M1", methodology="m"))) == "unknown_methodology"
    assert refused(last(await d.project("M2", methodology="VM0047"))) == "unknown_methodology"  # a VCS one
    assert refused(last(await d.project("M3", methodology="AR-CM-001-V01"))) == "withdrawn_methodology"
    (ok,) = await d.project("M4", methodology="CCER-14-002-V01")
    assert isinstance(ok, ProjectRegistered)
    assert (ok.methodology_version, ok.sector, ok.reduction_cutoff, ok.lat_e6) == (
        "V01", "forestry", "2020-09-22", 23_046_900,
    )  # fmt: skip


async def test_the_operator_cannot_own_a_project() -> None:
    """Hostile case: the operator registered a project it owns; the exchange's other accounts neither."""
    d = await Desk.make()
    for owner in ("operator", BUFFER_ACCOUNT, "EXCHANGE"):
        args = {**PROJECT, "owner": owner, "origin_id": "X"}
        assert refused(last(await d.op("register_project", project="OWN", **args))) == "reserved_owner"


async def test_a_verifier_cannot_trade_an_instrument_pooling_a_project_it_verified() -> None:
    """Hostile case: a verifier also traded units of projects it verified. Its orders (and amendments)
    on the pool are refused once a report of its is accepted there; before that they were not."""
    d = await Desk.make()
    await d.project("SF1")
    order = {"type": "new_order", "instrument": CCER, "side": "buy", "order_type": "limit", "price": "75.00",
             "quantity": 10}  # fmt: skip
    await d.ex.submit([("cqc", d.ex.command("cqc", KEYS["cqc"], client_order_id="b-before", **order))])
    before = last(await d.decision("cqc", "b-before"))
    assert type(before).__name__ == "OrderVerified", before
    assert isinstance(await d.verify("SF1", "2024-01-01", "2024-12-31", 2024), VerificationAccepted)
    await d.ex.submit([("cqc", d.ex.command("cqc", KEYS["cqc"], client_order_id="b-after", **order))])
    rejected: Any = last(await d.decision("cqc", "b-after"))
    assert (type(rejected).__name__, str(rejected.reason)) == ("OrderRejected", "conflict_of_interest")
    await d.ex.submit([("cqc", d.ex.command("cqc", KEYS["cqc"], type="replace_order", client_order_id="r-1",
                                            instrument=CCER, orig_client_order_id="b-before", price="76.00",
                                            quantity=20))])  # fmt: skip
    rejected = last(await d.decision("cqc", "r-1"))
    assert str(rejected.reason) == "conflict_of_interest"


async def test_accreditation_scope_expiry_and_report_signatures() -> None:
    """Verifiers verify only with a current accreditation covering the project's sector or methodology,
    and only reports signed with the key the accreditation recorded: anyone can check that signature
    from the public key in the log."""
    d = await Desk.make()
    await d.project("SF1")
    period = ("SF1", "2024-01-01", "2024-12-31", 2024)
    assert refused(await d.verify(*period, who="gdv")) == "not_accredited"
    await d.op(
        "accredit_verifier", verifier="gdv", scopes=["energy"], expires="2030-12-31", public_key=d.public
    )
    assert refused(await d.verify(*period, who="gdv")) == "outside_scope"
    await d.op("accredit_verifier", verifier="gdv", scopes=["CCER-14-001-V01"], expires="2026-05-27",
               public_key=d.public)  # fmt: skip
    assert refused(await d.verify(*period, who="gdv")) == "accreditation_expired"
    other, _ = new_verifier_key()
    assert refused(await d.verify(*period, key=other)) == "bad_report_signature"
    assert refused(await d.verify(*period, tonnes=2000, signed_tonnes=1000)) == "bad_report_signature"
    accepted = await d.verify(*period)
    assert isinstance(accepted, VerificationAccepted)
    entries = [decode_event(e.body) for e in await d.ex.log.read(0, 10**9)]
    key = next(e.public_key for e in entries if isinstance(e, VerifierAccredited) and e.verifier == "cqc")
    cid = accepted.client_order_id
    (submitted,) = [e for e in entries if isinstance(e, VerificationSubmitted) and e.client_order_id == cid]
    assert verify_report(key, submitted.signature, "SF1", "2024-01-01", "2024-12-31", 2024, 1000, HASH)
    assert not verify_report(key, submitted.signature, "SF1", "2024-01-01", "2024-12-31", 2024, 1001, HASH)
    assert report_message("SF1", "2024-01-01", "2024-12-31", 2024, 1000, HASH).startswith(
        b"greenex-verification-v1|"
    )
    bad_key = await d.op("accredit_verifier", verifier="gdv", scopes=["forestry"], expires="2030-12-31",
                         public_key="00" * 31)  # fmt: skip
    assert refused(last(bad_key)) == "malformed"


async def test_footprint_and_emissions_scopes_do_not_cover_project_reports() -> None:
    """`product_footprint` (ISO 14067) and `emissions` / `emissions:<scheme>` (ISO 14064-3 GHG statements)
    are scopes of their own: a verifier holding only those verifies no project's reductions. Intake
    refuses scopes it does not know."""
    d = await Desk.make()
    await d.project("SF1")
    await d.op("accredit_verifier", verifier="gdv", scopes=["product_footprint", "emissions", "emissions:SZ"],
               expires="2030-12-31", public_key=d.public)  # fmt: skip
    assert refused(await d.verify("SF1", "2024-01-01", "2024-12-31", 2024, who="gdv")) == "outside_scope"
    for bad in ("footprints", "emissions:", "emissions:S-Z", "emissions:SZ:x"):
        made = await d.op("accredit_verifier", verifier="gdv", scopes=[bad], expires="2030-12-31",
                          public_key=d.public)  # fmt: skip
        assert refused(last(made)) == "malformed", bad


async def test_a_reversal_cancels_buffer_tonnes_linked_to_the_loss_event() -> None:
    """A reported loss cancels as many BUFFER tonnes (the instrument's pooled buffer), under the report's
    client order id; the project's record shows the reversal and its certificate. A reversal beyond the
    buffer is recorded with the refusal."""
    d = await Desk.make()
    await d.project("SF1")
    await d.issue("SF1", "2024-01-01", "2024-12-31", 2024, 1000)  # 100 t to BUFFER
    events = await d.op("report_reversal", project="SF1", tonnes=40, description="2025 wildfire, 12 ha burnt",
                        occurred_on="2025-11-02")  # fmt: skip
    assert [type(e).__name__ for e in events] == [
        "ReversalReported",
        "RetirementRequested",
        "RetirementApproved",
    ]
    retired = [e for e in map(decode_event, (x.body for x in await d.ex.log.read(0, 10**9)))
               if isinstance(e, CreditsRetired)]  # fmt: skip
    assert [(r.participant, r.kind, r.tonnes, r.client_order_id) for r in retired] == [
        (BUFFER_ACCOUNT, RetirementKind.CANCEL, 40, getattr(events[0], "client_order_id", None))
    ]
    registry = d.ex.core("registry").processor
    assert isinstance(registry, Registry)
    (reversal,) = registry.state.reversals.values()
    assert (reversal.reported.project, reversal.cancelled, reversal.certificate) == (
        "SF1", 40, retired[0].certificate_id,
    )  # fmt: skip
    assert registry.totals()[(CCER, "SF1", 2024)].cancelled == 40
    short = await d.op("report_reversal", project="SF1", tonnes=61, description="storm")
    assert refused_retirement(last(short)) == "insufficient_credits"
    assert [r.refused != "" for r in registry.state.reversals.values()] == [False, True]
    (row,) = project_rows(registry)  # what `greenex registry` shows
    assert (row.status, row.reversed_tonnes, row.cancelled_tonnes) == ("registered, reversed", 101, 40)
    assert row.reversals[0].endswith(f"-> {retired[0].certificate_id}")
    assert "refused: needs 61 t" in row.reversals[1]
    assert refused(last(await d.op("report_reversal", project="NOPE", tonnes=1, description="x"))) == (
        "unknown_project"
    )


def refused_retirement(event: Event) -> str:
    assert type(event).__name__ == "RetirementRejected", event
    return str(getattr(event, "reason", ""))


async def test_replay_of_the_new_events_gives_the_same_cores_and_snapshots_restore_them() -> None:
    """Replaying the log (reviews, accreditations, signed reports, reversals) through fresh cores gives
    the live cores' digests; the registry's snapshot restores an equal core."""
    d = await Desk.make()
    await d.project("SF1")
    await d.project("SF2", origin_id="CCER-44-0002")
    await d.op("review_project", project="SF2", decision="approve")
    await d.issue("SF1", "2024-01-01", "2024-12-31", 2024, 1000)
    await d.op("report_reversal", project="SF1", tonnes=10, description="pest outbreak")
    state = replay_entries(await d.ex.log.read(0, 10**9))
    for name, core in state.cores.items():
        assert core.digest() == d.ex.core(name).processor.digest(), name
    live = d.ex.core("registry").processor
    assert isinstance(live, Registry)
    assert restored(Registry(), live.snapshot()).digest() == live.digest()
    assert msgspec.structs.asdict(live.state.projects["SF2"])["status"] is ProjectStatus.REGISTERED


def test_entries_written_before_the_rules_still_decode_with_defaults() -> None:
    """A ProjectRegistered and a VerificationSubmitted as logged before the new fields existed decode,
    the project as registered, the report unsigned (the registry then refuses it)."""
    old_project = {"type": "ProjectRegistered", "project": "P", "owner": "o", "instrument": CCER,
                   "standard": "CCER", "methodology": "m", "country": "CN", "project_type": "x",
                   "name": "", "buffer_bps": 1000}  # fmt: skip
    old_report = {"type": "VerificationSubmitted", "participant": "v", "client_order_id": "c", "project": "P",
                  "vintage": 2024, "period_start": "2024-01-01", "period_end": "2024-12-31", "tonnes": 1,
                  "report_hash": HASH}  # fmt: skip
    project = decode_event(msgspec.msgpack.encode(old_project))
    report = decode_event(msgspec.msgpack.encode(old_report))
    assert isinstance(project, ProjectRegistered)
    assert (project.status, project.crediting_start, project.duplicate_of) == ("registered", "", ())
    assert isinstance(report, VerificationSubmitted)
    assert report.signature == ""


async def test_greenex_registry_prints_the_projects_table() -> None:
    d = await Desk.make()
    await d.project("SF1")
    await d.project("SF2", origin_id="CCER-44-0002")
    registry = d.ex.core("registry").processor
    assert isinstance(registry, Registry)
    out = Console(file=io.StringIO(), width=300)
    print_projects(out, registry)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "under_review (matches SF1)" in text
    assert "CN 441200 23.046900,112.465100" in text


async def test_a_key_of_small_order_is_never_accredited_and_signs_nothing() -> None:
    """Under a small-order public key one signature verifies for every report (security review F7): it
    is refused at accreditation, and no signature under it verifies; nor does an upper-case spelling of a
    genuine signature (a logged signature has one form)."""
    identity = "01" + "00" * 31
    forged = "01" + "00" * 63  # R = identity, S = 0: valid for any message under that key
    assert not verify_report(identity, forged, "SF1", "2024-01-01", "2024-12-31", 2024, 1000, HASH)
    d = await Desk.make()
    refused_key = await d.op("accredit_verifier", verifier="gdv", scopes=["forestry"], expires="2030-12-31",
                             public_key=identity)  # fmt: skip
    assert refused(last(refused_key)) == "malformed"
    genuine = sign_report(d.private, "SF1", "2024-01-01", "2024-12-31", 2024, 1000, HASH)
    args = ("SF1", "2024-01-01", "2024-12-31", 2024, 1000, HASH)
    assert verify_report(d.public, genuine, *args)
    assert not verify_report(d.public, genuine.upper(), *args)
