"""Claims that tell the truth (issue 15, item 3): the hostile cases found on main, each a test that failed
there, driven through the whole exchange in one process."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from services.intake.footprints import MAX_ACTIVITIES
from services.registry.claims import decide_label
from services.registry.core import Registry
from shared.domain import footprint
from shared.domain.footprint import grams_co2e, load_table_file
from shared.domain.labels import table_sha256
from shared.domain.registry import ActivityRecorded, LabelRequested
from shared.reports import RegistryEventKind, RegistryReport
from tests.unit.registry_world import CCER, CEA, DRONE, DRONE_ACTIVITIES, START_NS, World, world

PER_DRONE = 313_583  # g CO2e: the demo drone's bill of activities under table v1
NEEDED_5000 = 1568  # ceil(313_583 g x 5000 / 10^6)


def registry(w: World) -> Registry:
    core = w.ex.core("registry").processor
    assert isinstance(core, Registry)
    return core


def code(report: RegistryReport) -> str:
    if report.event is not RegistryEventKind.REJECTED:
        return ""
    assert report.reason
    return str(report.reason.code)


async def labelled() -> tuple[World, str]:
    w = await world()
    await w.drone()
    label = await w.label()
    assert label.event is RegistryEventKind.LABEL_ISSUED, label
    assert label.total_grams == PER_DRONE
    assert isinstance(label.label_id, str)
    return w, label.label_id


async def test_a_claim_names_label_period_units_and_is_backed_by_product_claim_retirements() -> None:
    """The accepted claim records the label, the period, the units covered and shipped, the standard."""
    w, label = await labelled()
    cert = await w.retire_for(NEEDED_5000)
    claim = await w.claim(label, 5000, [cert], shipped=5000, period="2025")
    assert claim.event is RegistryEventKind.NEUTRALITY_CLAIMED, claim
    assert claim.required_tonnes == NEEDED_5000
    (stored,) = registry(w).state.claims.values()
    assert (stored.label_id, stored.period_start, stored.period_end, stored.units, stored.units_shipped) == (
        label, "2025-01-01", "2025-12-31", 5000, 5000
    )  # fmt: skip
    assert stored.standards == ("CCER",)


async def test_claims_backed_by_retired_allowances_are_refused() -> None:
    """Retired CEA allowances are not offsets: `not_offset_credits`."""
    w, label = await labelled()
    await w.buy("drones", CEA, 10)
    cid = await w.retire("drones", 10, instrument=CEA, purpose=f"product_claim:{DRONE}")
    cert = str(w.certificate("drones", cid)["id"])
    assert code(await w.claim(label, 1, [cert])) == "not_offset_credits"


@pytest.mark.parametrize(("vintage", "period", "expected"), [
    # Credits of a later vintage than the period (2031 credits of the issue cannot exist any more: an
    # ex-ante period is refused before issuance, tests/unit/test_registry_integrity.py).
    (2025, "2024", "vintage_outside_claim_window"),
    (2016, "2025", "vintage_outside_claim_window"),  # older than the 5-year window (VCMI)
    (2016, "2021", ""),  # 2021 - 5 = 2016: inside
])  # fmt: skip
async def test_claims_take_only_vintages_near_the_period(vintage: int, period: str, expected: str) -> None:
    """drones retires its own SF3 (2025) or SF4 (2016) credits for the product: the claim's period decides."""
    w, label = await labelled()
    cid = await w.retire("drones", 1, purpose=f"product_claim:{DRONE}", vintage=vintage)
    cert = str(w.certificate("drones", cid)["id"])
    assert code(await w.claim(label, 1, [cert], period=period)) == expected


async def test_the_vintage_window_is_the_operators_claim_rule() -> None:
    """set_claim_rules widens the window to 10 years: the 2016 credits now back a 2025 claim."""
    w, label = await labelled()
    cid = await w.retire("drones", 1, purpose=f"product_claim:{DRONE}", vintage=2016)
    cert = str(w.certificate("drones", cid)["id"])
    await w.op("set_claim_rules", max_vintage_age_years=10, label_validity_days=365)
    assert code(await w.claim(label, 1, [cert])) == ""


@pytest.mark.parametrize("purpose", ["corporate_inventory", "voluntary", "product_claim:OTHER", ""])
async def test_a_retirement_declared_for_another_purpose_backs_no_product_claim(purpose: str) -> None:
    """A retirement already declared for the company's own scope 1 (corporate inventory), a voluntary one,
    one for another product, or one without a declared purpose: `retirement_purpose_mismatch`."""
    w, label = await labelled()
    await w.buy("drones", CCER, 1)
    cid = await w.retire("drones", 1, **({"purpose": purpose} if purpose else {}))
    cert = str(w.certificate("drones", cid)["id"])
    assert code(await w.claim(label, 1, [cert])) == "retirement_purpose_mismatch"


async def test_a_relabel_supersedes_the_claims_and_the_old_tonnes_fall_short() -> None:
    """313.6 -> 332.7 kg per drone (10 kg of steel added): the claim on LB-old is superseded, a claim
    naming the old label is refused (`stale_label`), the same certificate is 96 t short for the new one,
    and 96 t more retired make the claim stand again."""
    w, old_label = await labelled()
    cert = await w.retire_for(NEEDED_5000)
    first = await w.claim(old_label, 5000, [cert])
    assert first.event is RegistryEventKind.NEUTRALITY_CLAIMED
    await w.act("drones", "record_activity", product=DRONE, stage="materials", factor="steel_crude",
                amount="10")  # fmt: skip
    relabel = await w.label()
    assert relabel.total_grams == PER_DRONE + 19_100
    state = registry(w).state
    assert state.superseded == {first.claim_id: relabel.label_id}
    assert state.labels[DRONE].supersedes == old_label
    assert code(await w.claim(old_label, 5000, [cert])) == "stale_label"
    assert isinstance(relabel.label_id, str)
    short = await w.claim(relabel.label_id, 5000, [cert])
    assert code(short) == "insufficient_retirements"
    assert "needs 1664 t retired, the certificates cover 1568 t" in str(short.reason)
    more = await w.retire_for(96)
    assert code(await w.claim(relabel.label_id, 5000, [cert, more])) == ""


async def test_a_cradle_to_grave_label_needs_every_stage_or_a_justified_cut_off() -> None:
    """One materials line is no cradle-to-grave footprint: `incomplete_boundary`; declared, justified
    cut-offs for the other stages let the verifier issue it, and the label lists them."""
    w = await world()
    await w.drone(activities=(("materials", "aluminium_primary", "1.2"),))
    refused = await w.label()
    assert code(refused) == "incomplete_boundary"
    assert "production, distribution, use, end_of_life" in str(refused.reason)
    why = "measured below 0.5 % of the total in the 2024 screening study"
    for stage in ("production", "distribution", "use", "end_of_life"):
        cid = await w.act("drones", "declare_cutoff", product=DRONE, stage=stage, justification=why)
        assert w.registry("drones", cid).event is RegistryEventKind.CUT_OFF_DECLARED
    assert code(await w.label()) == ""
    assert [c.stage for c in registry(w).state.labels[DRONE].cut_offs] == [
        "production", "distribution", "use", "end_of_life"
    ]  # fmt: skip
    short = await w.act("drones", "declare_cutoff", product=DRONE, stage="use", justification="small")
    assert w.refused("drones", short) == "malformed"


async def test_a_cradle_to_gate_label_needs_only_materials_and_production() -> None:
    w = await world()
    await w.drone("cradle-to-gate", (("materials", "aluminium_primary", "1.2"),
                                     ("production", "electricity_cn_grid", "45")))  # fmt: skip
    assert code(await w.label()) == ""


def _edited_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data directory where v1 was edited in place (aluminium 17.3) and v2 is a new table."""
    for version in ("v1", "v2"):
        shipped = Path(footprint.__file__).parents[1] / "data" / "emission_factors_v1.json"
        table = json.loads(shipped.read_text())
        table["version"] = version
        table["factors"]["aluminium_primary"]["kg_co2e"] = "17.3" if version == "v1" else "15.1"
        (tmp_path / f"emission_factors_{version}.json").write_text(json.dumps(table))
    monkeypatch.setattr(footprint, "_DATA", tmp_path)


async def test_a_published_factor_table_never_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v1 edited in place after publication: publishing it again is refused (`factor_table_exists`), and
    activities keep being recorded at v1's published factor, whatever the file says now."""
    w = await world()
    original = table_sha256(load_table_file("v1"))
    _edited_tables(tmp_path, monkeypatch)
    assert table_sha256(load_table_file("v1")) != original
    assert w.refused("operator", await w.publish("v1")) == "factor_table_exists"
    tables = registry(w).state.factor_tables
    assert tables["v1"].sha256 == original
    assert tables["v1"].factor("aluminium_primary").kg_co2e == "16.1"  # type: ignore[union-attr]
    await w.drone()
    assert {a.factor for a in registry(w).state.activities[DRONE] if a.factor_key == "aluminium_primary"} == {
        "16.1"
    }  # fmt: skip


async def test_a_label_refuses_activities_whose_factor_is_not_the_published_one() -> None:
    """On main, v1 edited in place gave one label two aluminium factors under one version: an activity
    logged at 17.3 under v1 (as main's intake recorded it) now makes the label `mixed_factor_tables`."""
    w = await world()
    await w.drone()
    edited = ActivityRecorded(
        participant="drones", client_order_id="a-edited", product=DRONE, stage="materials",
        factor_key="aluminium_primary", factor_table="v1", amount="0.5", unit="kg", factor="17.3",
        grams=grams_co2e("0.5", "17.3"),
    )  # fmt: skip
    await w.ex.append_intake_events([edited])
    refused = await w.label()
    assert code(refused) == "mixed_factor_tables"
    assert "aluminium_primary was recorded at 17.3 kg/kg; v1 has 16.1 kg/kg" in str(refused.reason)


async def test_a_new_table_is_a_new_version_and_moving_to_it_is_a_recalculation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v2 publishes with its own hash; an activity under v2 for a product on v1 is refused
    (`mixed_factor_tables`); `recalculate` moves every activity to v2 in one event, and the next label
    uses v2 alone (aluminium 15.1: 1.2 kg x 1 kg less)."""
    w = await world()
    await w.drone()
    _edited_tables(tmp_path, monkeypatch)
    await w.publish("v2")
    assert registry(w).state.factor_tables["v2"].sha256 == table_sha256(load_table_file("v2"))
    mixed = await w.act("drones", "record_activity", product=DRONE, stage="materials", factor="steel_crude",
                        amount="1", factor_table="v2")  # fmt: skip
    assert w.refused("drones", mixed) == "mixed_factor_tables"
    moved = await w.act("drones", "recalculate", product=DRONE, factor_table="v2")
    assert w.registry("drones", moved).event is RegistryEventKind.FOOTPRINT_RECALCULATED
    label = await w.label()
    assert label.total_grams == PER_DRONE - 1_200
    assert registry(w).state.labels[DRONE].factor_tables == ("v2",)
    unpublished = await w.act("drones", "recalculate", product=DRONE, factor_table="v9")
    assert w.refused("drones", unpublished) == "unpublished_factor_table"


async def test_activities_need_a_published_table() -> None:
    """Before the operator publishes a table, nothing is recorded against it."""
    w = await world()
    cid = await w.act("drones", "register_product", product="P2", model="m", functional_unit="u",
                      boundary="cradle-to-gate")  # fmt: skip
    assert cid
    refused = await w.act("drones", "record_activity", product="P2", stage="materials", factor="steel_crude",
                          amount="1", factor_table="v3")  # fmt: skip
    assert w.refused("drones", refused) == "unpublished_factor_table"
    assert DRONE_ACTIVITIES


async def test_a_relabel_names_the_claims_it_supersedes_in_the_same_order_after_a_restore() -> None:
    """A restored registry decides a relabel exactly as the live one did (security review F2): the claims
    it supersedes are named in the order they were made, not in the order a snapshot's map came back in
    (NC-9 before NC-10, though "NC-10" sorts first)."""
    w, label = await labelled()
    certificates = [await w.retire_for(10) for _ in range(2)]
    for cert in certificates:
        made = await w.claim(label, 10, [cert], shipped=10, period="2025")
        assert made.claim_id
    core = registry(w)
    first, second = list(core.state.claims.values())
    core.state.claims = {"NC-9": msgspec.structs.replace(first, claim_id="NC-9"),
                         "NC-10": msgspec.structs.replace(second, claim_id="NC-10")}  # fmt: skip
    request = LabelRequested(participant="cqc", client_order_id="L2", product=DRONE)
    product = core.state.products[DRONE]
    live = decide_label(core.state, 11, START_NS, request, product)
    again = Registry()
    again.restore(core.snapshot())
    assert decide_label(again.state, 11, START_NS, request, product) == live
    assert live.superseded_claims == ("NC-9", "NC-10")


async def test_activity_data_is_bounded_per_product_and_per_line() -> None:
    """A recalculation logs every activity of a product in one entry (security review F4): a product
    takes at most MAX_ACTIVITIES lines, each amount at most MAX_AMOUNT_CHARS characters."""
    w = await world()
    await w.act("drones", "register_product", product="P2", model="m", functional_unit="one unit",
                boundary="cradle-to-gate")  # fmt: skip
    long = await w.act("drones", "record_activity", product="P2", stage="materials",
                       factor="aluminium_primary", amount="0" * 3500 + "1")  # fmt: skip
    assert w.refused("drones", long) == "malformed"
    for _ in range(MAX_ACTIVITIES):
        ok = await w.act("drones", "record_activity", product="P2", stage="materials",
                         factor="aluminium_primary", amount="0.1")  # fmt: skip
        assert not w.refused("drones", ok)
    one_more = await w.act("drones", "record_activity", product="P2", stage="materials",
                           factor="aluminium_primary", amount="0.1")  # fmt: skip
    assert w.refused("drones", one_more) == "malformed"
