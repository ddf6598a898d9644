"""Compliance surrender end to end in one process: each rule of docs/registry.md "Compliance" and each
refusal with its reason code."""

from __future__ import annotations

import pytest
from rich.console import Console

from services.cli.compliance_cli import print_compliance
from services.cli.compliance_view import compliance_rows, surrendered_by_scheme
from services.cli.readmodel import ExchangeState, replay_entries
from services.cli.registry_view import registry_rows, serial_states
from services.cli.views import conservation_problems
from services.verification.compliance_state import ComplianceAccount, account_key
from services.verification.core import Verification
from shared.attestation import new_verifier_key
from shared.domain.registry import UnitState
from shared.reports import ComplianceEventKind, ComplianceReport, ExecutionReport, RejectReason
from tests.unit.compliance_support import CCER, CEA, HASH, SCHEME, SZEA, Market, market


async def _state(m: Market) -> ExchangeState:
    return replay_entries(await m.ex.log.read(0, 10**9))


def _account(m: Market, year: int = 2022, entity: str = "acme") -> ComplianceAccount:
    core = m.ex.core("verification").processor
    assert isinstance(core, Verification)
    return core.state.compliance.accounts[account_key("SZ", year, entity)]


def _refusal(m: Market, cid: str, who: str = "acme") -> str:
    report = m.compliance(cid, who)
    assert report.event is ComplianceEventKind.REJECTED
    assert isinstance(report.reason, RejectReason)
    return str(report.reason.code)


async def test_surrendered_serials_leave_the_market_with_a_certificate() -> None:
    """Allowances and offsets move to `surrendered`; the invariant issued = held + frozen + retired +
    cancelled + buffer + surrendered holds per project and vintage, and conservation still adds up."""
    m = await market()
    allowances = m.compliance(await m.surrender(SZEA, 800))
    offsets = m.compliance(await m.surrender(CCER, 100))
    assert allowances.event is offsets.event is ComplianceEventKind.SURRENDERED
    assert isinstance(offsets.certificate, dict)
    assert offsets.certificate["id"].startswith("SC-")
    assert offsets.offset is True
    # The bought SF1 credits are surrendered; acme's own project's credits (older in its holding) are not.
    assert {s["project"] for s in offsets.certificate["serials"]} == {"SF1"}
    account = _account(m)
    assert (account.allowances, account.offsets, account.remaining) == (800, 100, 100)
    state = await _state(m)
    assert conservation_problems(state) == []
    rows = {(r.instrument, r.project): r for r in registry_rows(state)}
    assert rows[(SZEA, "")].surrendered == 800
    assert rows[(CCER, "SF1")].surrendered == 100
    assert all(r.issued == r.accounted for r in rows.values())
    states = {p.state for p in serial_states(state) if p.instrument == SZEA}
    assert states == {UnitState.SURRENDERED}


async def test_offsets_exactly_at_the_cap_pass_and_one_tonne_more_fails() -> None:
    """10 % of 1000 t verified emissions: 100 t of offsets pass, 101 t fail; after 100 t, 1 t more fails."""
    m = await market()
    assert _refusal(m, await m.surrender(CCER, 101)) == "offset_cap_exceeded"
    assert m.compliance(await m.surrender(CCER, 100)).event is ComplianceEventKind.SURRENDERED
    assert _refusal(m, await m.surrender(CCER, 1)) == "offset_cap_exceeded"


async def test_cap_rounds_down() -> None:
    """1009 t of emissions at 10 % allow floor(100.9) = 100 t of offsets: the share is never exceeded."""
    m = await market(emissions=1009)
    assert _refusal(m, await m.surrender(CCER, 101)) == "offset_cap_exceeded"
    assert m.compliance(await m.surrender(CCER, 100)).event is ComplianceEventKind.SURRENDERED


async def test_own_projects_do_not_count_as_offsets() -> None:
    """Only acme's own project's credits are held: none qualify, whatever the cap allows."""
    m = await market(offsets_bought=0)
    assert _refusal(m, await m.surrender(CCER, 50)) == "ineligible_credits"


@pytest.mark.parametrize(
    ("instrument", "quantity", "year", "scheme", "expected"),
    [
        (SZEA, 10, 2022, "NOPE", "unknown_scheme"),
        (SZEA, 10, 2021, "SZ", "no_obligation"),
        (CEA, 10, 2022, "SZ", "not_eligible_for_scheme"),
        (SZEA, 1001, 2022, "SZ", "over_surrender"),
        (SZEA, 801, 2022, "SZ", "insufficient_credits"),
    ],
)
async def test_surrender_refusals(
    instrument: str, quantity: int, year: int, scheme: str, expected: str
) -> None:
    """Unknown scheme, no verified emissions, an instrument the scheme does not count, more than is
    due, more than is held."""
    m = await market()
    assert _refusal(m, await m.surrender(instrument, quantity, year, scheme)) == expected


async def test_allowances_of_a_later_year_cannot_be_borrowed() -> None:
    """2023 allowances do not count for 2022 (banking forward is allowed, borrowing back is not)."""
    m = await market()
    await m.op("allocate_allowances", participant="acme", scheme="SZ", year=2023, instrument=SZEA,
               serial_start=801, serial_end=900)  # fmt: skip
    assert _refusal(m, await m.surrender(SZEA, 850)) == "ineligible_credits"
    assert m.compliance(await m.surrender(SZEA, 800)).event is ComplianceEventKind.SURRENDERED


async def test_emissions_refusals() -> None:
    """Only a verifier records emissions, never its own, once per entity and year."""
    m = await market()
    assert _refusal(m, await m.emissions(10, entity="forest", who="acme"), "acme") == "not_a_verifier"
    assert _refusal(m, await m.emissions(10, entity="cqc"), "cqc") == "conflict_of_interest"
    assert _refusal(m, await m.emissions(10), "cqc") == "emissions_already_verified"
    assert _refusal(m, await m.emissions(10, entity="ghost"), "cqc") == "unknown_participant"


async def test_emissions_need_a_current_accreditation_for_emissions() -> None:
    """Recording verified emissions (ISO 14064-3) needs an accreditation current on the day that names
    `emissions` (every scheme) or `emissions:<scheme>`; without one it is not_accredited, with one for
    forestry or another scheme outside_scope, after its last day accreditation_expired."""
    m = await market(emissions=0)
    public = new_verifier_key()[1]

    async def accredit(*scopes: str, expires: str = "2030-12-31") -> None:
        await m.op("accredit_verifier", verifier="cqc", scopes=list(scopes), expires=expires,
                   public_key=public)  # fmt: skip

    await accredit("forestry")
    assert _refusal(m, await m.emissions(1000), "cqc") == "outside_scope"
    await accredit("forestry", "emissions:BJ")
    assert _refusal(m, await m.emissions(1000), "cqc") == "outside_scope"
    await accredit("emissions", expires="2023-11-13")  # the market's clock is at 2023-11-14
    assert _refusal(m, await m.emissions(1000), "cqc") == "accreditation_expired"
    await accredit("emissions:SZ", expires="2023-11-14")
    assert m.compliance(await m.emissions(1000), "cqc").event is ComplianceEventKind.EMISSIONS_VERIFIED
    # a verifier never accredited at all
    await m.ex.submit([m.ex.register("gdv", "gdv-key-0123456789", roles=["verifier"])])
    args = {"entity": "forest", "scheme": "SZ", "year": 2022, "tonnes": 10, "report_hash": HASH}
    command = m.ex.command("gdv", "gdv-key-0123456789", client_order_id="gdv-1", type="registry",
                           action="record_emissions", args=args)  # fmt: skip
    await m.ex.submit([("gdv", command)])
    assert _refusal(m, "gdv-1", "gdv") == "not_accredited"


async def test_closing_a_year_records_shortfall_penalty_and_next_years_deduction() -> None:
    """1000 t due, 800 + 100 surrendered: 100 t short, penalty 3 x 100 t x 50.00 CNY, carried to 2023."""
    m = await market()
    await m.surrender(SZEA, 800)
    await m.surrender(CCER, 100)
    await m.op("close_compliance_year", scheme="SZ", year=2022)
    closed = [d.report for d in m.ex.reports
              if d.participant == "acme" and isinstance(d.report, ComplianceReport)
              and d.report.event is ComplianceEventKind.YEAR_CLOSED]  # fmt: skip
    assert len(closed) == 1
    report = closed[0]
    assert (report.obligation, report.allowances, report.offsets, report.shortfall) == (1000, 800, 100, 100)
    assert (report.penalty, report.deduction) == ("15000.00", 100)
    assert _account(m, 2023).carried_in == 100
    assert _refusal(m, await m.surrender(SZEA, 1)) == "compliance_year_closed"
    # 2023's emissions come after 2023 (the clock says 2023-11): the deduction waits in carried_in.
    assert _refusal(m, await m.emissions(500, year=2023), "cqc") == "ex_ante_period"


async def test_close_refusals() -> None:
    """Not before the deadline (2023's is 2024-06-30, the clock says 2023-11), never twice."""
    m = await market()
    cid = f"op-{m.n + 1}"
    await m.op("close_compliance_year", scheme="SZ", year=2023)
    assert _refusal(m, cid, "operator") == "before_deadline"
    await m.op("close_compliance_year", scheme="SZ", year=2022)
    cid = f"op-{m.n + 1}"
    await m.op("close_compliance_year", scheme="SZ", year=2022)
    assert _refusal(m, cid, "operator") == "compliance_year_closed"


async def test_edge_refusals_of_scheme_and_allocation() -> None:
    """A scheme id is defined once; allocations name a scheme and one of its allowance instruments."""
    m = await market()
    cid = f"op-{m.n + 1}"
    await m.op("define_scheme", scheme="SZ", name="again", allowance_instruments=[SZEA])
    assert m.refused_at_intake(cid) == "duplicate_scheme"
    cases = (("NOPE", SZEA, "unknown_scheme"), ("SZ", CEA, "not_eligible_for_scheme"))
    for scheme, instrument, expected in cases:
        cid = f"op-{m.n + 1}"
        await m.op("allocate_allowances", participant="acme", scheme=scheme, year=2022, instrument=instrument,
                   serial_start=5000, serial_end=5001)  # fmt: skip
        assert m.refused_at_intake(cid) == expected


async def test_a_surrender_freezes_nothing_once_settled_and_sells_cannot_spend_surrendered_tonnes() -> None:
    """After the surrender the holding is 0 t held and 0 t frozen; a sell of the same tonnes is refused."""
    m = await market()
    await m.surrender(SZEA, 800)
    core = m.ex.core("verification").processor
    assert isinstance(core, Verification)
    assert core.account("acme")[2][SZEA] == (0, 0)
    assert core.state.compliance.surrendering == []
    cid = await m.send("acme", type="new_order", instrument=SZEA, side="sell", order_type="limit",
                       price="50.00", quantity=1)  # fmt: skip
    refused = [d.report for d in m.ex.reports
               if isinstance(d.report, ExecutionReport) and d.report.client_order_id == cid]  # fmt: skip
    assert [r.reason.code for r in refused if isinstance(r.reason, RejectReason)] == ["insufficient_credits"]


async def test_replay_of_a_compliance_log_is_deterministic() -> None:
    """Replaying the log (schemes, allocations, emissions, surrenders, a close) twice gives one state, equal
    to the live cores' own, and a core restored from a snapshot midway folds the tail to the same state."""
    m = await market()
    await m.surrender(SZEA, 800)
    await m.surrender(CCER, 100)
    await m.op("close_compliance_year", scheme="SZ", year=2022)
    entries = await m.ex.log.read(0, 10**9)
    types = {e.type for e in entries}
    assert {"SchemeDefined", "AllowancesAllocated", "EmissionsVerified", "SurrenderApproved",
            "CreditsSurrendered", "ComplianceShortfall", "ComplianceYearClosed"} <= types  # fmt: skip
    first, second = replay_entries(entries), replay_entries(entries)
    assert first.digest() == second.digest()
    live = {f.processor.name: f.processor.digest() for f in m.ex.followers}
    assert first.core_digests() == live
    half = len(entries) // 2
    early = replay_entries(entries[:half])
    restored = ExchangeState()
    for name, core in restored.cores.items():
        core.restore(early.cores[name].snapshot())
    restored.seq, restored.head_hash = early.seq, early.head_hash
    assert replay_entries(entries[half:], state=restored).core_digests() == first.core_digests()


async def test_compliance_view_shows_obligation_surrendered_remaining_and_headroom() -> None:
    """`greenex compliance acme`: 1000 t due, 300 t allowances and 40 t offsets surrendered, 660 t
    remaining, 60 t of the 100 t offset cap left."""
    m = await market()
    await m.surrender(SZEA, 300)
    await m.surrender(CCER, 40)
    state = await _state(m)
    (row,) = compliance_rows(state, "acme")
    assert (row.obligation, row.allocated, row.allowances, row.offsets) == (1000, 800, 300, 40)
    assert (row.remaining, row.offset_cap, row.headroom, row.status) == (660, 100, 60, "open")
    assert compliance_rows(state, scheme="NOPE") == []
    console = Console(record=True, width=200)
    assert print_compliance(console, state, None, "SZ") == 1
    assert "660" in console.export_text()
    by_scheme = surrendered_by_scheme(state)
    assert by_scheme == {("SZ", SZEA, 2022): 300, ("SZ", CCER, 2022): 40}


@pytest.mark.parametrize("field", [{"deadline": "W01-1"}, {"projects_started_from": "20250101"}])
async def test_scheme_dates_take_one_spelling(field: dict[str, str]) -> None:
    """ISO week dates and basic forms parse as dates but mean nothing to the rules that read them
    (security review F6): a scheme names MM-DD and YYYY-MM-DD, or is refused at the edge."""
    m = await market(emissions=0)
    cid = f"op-bad-{next(iter(field))}"
    await m.ex.submit([m.ex.operator_command(cid, "define_scheme", **{**SCHEME, "scheme": "SZ2", **field})])
    assert m.refused_at_intake(cid) == "malformed"
