"""The demo's registry chain: verification -> issuance -> trade -> retirement -> product label -> claim."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

from services.cli.venue import Venue
from shared.attestation import new_verifier_key, sign_report
from shared.client import ExchangeClient
from shared.domain.footprint import CURRENT_TABLE, load_table_file
from shared.domain.labels import table_sha256

__all__ = [
    "DRONE",
    "DRONE_UNITS",
    "PROJECT",
    "VERIFIER",
    "all_answered",
    "first_answer",
    "first_report",
    "run_registry_chain",
    "seed_registry",
]

VERIFIER = ("cqc-verify", "Pearl Delta Verification Centre")  # an accredited verifier (fictional)
PROJECT = "SF001"  # Sunforest's afforestation project in Guangdong
OFFSET = "CCER-2024"
VERIFIED_TONNES = 600_000
DRONE = "SKY4"
DRONE_UNITS = 5_000
CLAIM_PERIOD = "2025"  # the drones were shipped in 2025; the CCER credits are of vintage 2024
# One Skyward S4 inspection drone over a 3-year service life (illustrative bill of activities):
# (stage, factor key in shared/data/emission_factors_v1.json, amount per functional unit)
DRONE_ACTIVITIES = (
    ("materials", "aluminium_primary", "1.2"),  # kg airframe
    ("materials", "plastic_abs", "0.8"),  # kg shell and props
    ("materials", "copper_cathode", "0.15"),  # kg motors and wiring
    ("materials", "battery_li_ion_capacity", "0.1"),  # kWh pack
    ("production", "electricity_cn_grid", "45"),  # kWh assembly and test in Shenzhen
    ("distribution", "sea_freight_container", "43.2"),  # t.km: 2.4 kg boxed x 18,000 km
    ("distribution", "road_freight_truck", "2.88"),  # t.km: 2.4 kg x 1,200 km
    ("use", "electricity_cn_grid", "450"),  # kWh charging over 3 years
    ("end_of_life", "weee_treatment", "2.4"),  # kg collected and treated
)


async def first_report(
    client: ExchangeClient, wanted: Callable[[dict[str, Any]], bool], missing: str, timeout: float = 30.0
) -> dict[str, Any]:
    """The first new report `wanted` accepts; TimeoutError naming what was `missing` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for report in await client.reports(block_ms=100):
            if wanted(report):
                return report
    raise TimeoutError(missing)


async def first_answer(client: ExchangeClient, cid: str, timeout: float = 30.0) -> dict[str, Any]:
    """The first report about `cid` (registry answers and edge rejections both carry it)."""
    about = f"no answer to {cid}"
    return await first_report(client, lambda r: r.get("client_order_id") == cid, about, timeout)


async def all_answered(client: ExchangeClient, cids: set[str], timeout: float = 30.0) -> None:
    """Read reports until every one of `cids` has been answered."""
    waiting = set(cids)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while waiting:
        if loop.time() > deadline:
            raise TimeoutError(f"no answer to {sorted(waiting)}")
        waiting -= {report.get("client_order_id") for report in await client.reports(block_ms=100)}


# Sunforest's project as the 2023 CCER rules want it: a listed methodology, started after 2012-11-08,
# crediting after 2020-09-22, located (Zhaoqing, Guangdong; illustrative coordinates) and validated.
PROJECT_ARGS: dict[str, Any] = {
    "project": PROJECT, "owner": "sunforest", "instrument": OFFSET, "standard": "CCER",
    "methodology": "CCER-14-001-V01", "country": "CN", "project_type": "afforestation",
    "name": "Sunforest Guangdong afforestation", "buffer_bps": 1000, "start_date": "2021-03-01",
    "crediting_start": "2021-03-01", "crediting_end": "2040-12-31", "admin_code": "441200",
    "latitude": "23.046900", "longitude": "112.465100", "origin_registry": "CCER",
    "origin_id": "CCER-44-2024-0001", "validator": "South China Validation Co. (fictional)",
}  # fmt: skip


async def seed_registry(venue: Venue) -> None:
    """An accredited verifier, Sunforest's project, its verified 2024 report and the issuance against it.

    The verifier's report signing key is made here and used once: the demo signs one report with it.
    """
    verifier, name = VERIFIER
    op = venue.operator
    await venue.onboard(verifier, name, roles=("verifier",))
    private_key, public_key = new_verifier_key()
    # Footprints use factor tables published into the log, under their SHA-256 (docs/registry.md).
    sha = table_sha256(load_table_file(CURRENT_TABLE))
    await op.operator(
        "publish_factor_table", f"op-factors-{CURRENT_TABLE}", version=CURRENT_TABLE, sha256=sha
    )
    # Forestry reports (CCER), product footprints (ISO 14067) and organisations' verified emissions under
    # any scheme (ISO 14064-3): the three things the demo's verifier does.
    await op.operator(
        "accredit_verifier", f"op-acc-{verifier}", verifier=verifier,
        scopes=["forestry", "product_footprint", "emissions"], expires="2030-12-31", public_key=public_key,
        accreditor="CNAS (illustrative)",
    )  # fmt: skip
    await op.operator("register_project", f"op-proj-{PROJECT}", **PROJECT_ARGS)
    client = venue.client(verifier)
    report = b"Sunforest SF001 monitoring report 2024, verification statement"
    report_hash = hashlib.sha256(report).hexdigest()
    period = ("2024-01-01", "2024-12-31")
    await client.send(
        "registry",
        client_order_id="vr-sf001-2024",
        action="submit_verification",
        args={
            "project": PROJECT,
            "vintage": 2024,
            "period_start": period[0],
            "period_end": period[1],
            "tonnes": VERIFIED_TONNES,
            "report_hash": report_hash,
            "signature": sign_report(private_key, PROJECT, *period, 2024, VERIFIED_TONNES, report_hash),
        },
    )
    accepted = await first_answer(client, "vr-sf001-2024")
    if accepted.get("event") != "verification_accepted":
        raise RuntimeError(f"verification refused: {accepted}")
    await op.operator(
        "issue_verified", "op-iss-sf001-2024", report_id=accepted["report_id"], tonnes=VERIFIED_TONNES
    )


async def run_registry_chain(venue: Venue) -> None:
    """Skyward Drones buys CCER, gets its drone's footprint labelled, retires and claims neutrality."""
    maker, forest, verifier = [
        await venue.client(p).from_now() for p in ("dronemaker", "sunforest", VERIFIER[0])
    ]
    await maker.send(
        "registry",
        client_order_id="p-sky4",
        action="register_product",
        args={
            "product": DRONE,
            "model": "Skyward S4 inspection drone",
            "boundary": "cradle-to-grave",
            "functional_unit": "one drone over a 3-year service life",
            "category": "drones",
        },
    )
    await first_answer(maker, "p-sky4")
    for n, (stage, factor, amount) in enumerate(DRONE_ACTIVITIES):
        await maker.send(
            "registry",
            client_order_id=f"a-sky4-{n}",
            action="record_activity",
            args={"product": DRONE, "stage": stage, "factor": factor, "amount": amount},
        )
    # Each sender has its own stream, so nothing orders the verifier's request after the maker's
    # activities but waiting for them: the label covers what is recorded when it is asked for.
    await all_answered(maker, {f"a-sky4-{n}" for n in range(len(DRONE_ACTIVITIES))})
    await verifier.send("registry", client_order_id="l-sky4", action="issue_label", args={"product": DRONE})
    label = await first_answer(verifier, "l-sky4")
    if label.get("event") != "label_issued":
        raise RuntimeError(f"label refused: {label}")
    needed = -(-label["total_grams"] * DRONE_UNITS // 1_000_000)
    # Buy the tonnes on the exchange: Sunforest offers at the reference, the maker lifts the offers.
    await forest.send(
        "new_order",
        client_order_id="primary-ccer",
        instrument=OFFSET,
        side="sell",
        order_type="limit",
        price="78.00",
        quantity=needed,
    )
    await first_answer(forest, "primary-ccer")
    await maker.send(
        "new_order",
        client_order_id="buy-ccer",
        instrument=OFFSET,
        side="buy",
        order_type="limit",
        price="85.80",
        quantity=needed,
        time_in_force="IOC",
    )
    retired: dict[str, Any] = {}
    for attempt in range(20):  # settlement delivers the bought tonnes a moment after the trades
        await maker.send(
            "retire_credits",
            client_order_id=f"retire-sky4-{attempt}",
            instrument=OFFSET,
            quantity=needed,
            beneficiary=f"Skyward Drones: {DRONE_UNITS} SKY4 drones shipped in 2025",
            reason="carbon-neutral product claim",
            purpose=f"product_claim:{DRONE}",
            identifier=f"SKY4-{CLAIM_PERIOD}",
        )
        retired = await first_answer(maker, f"retire-sky4-{attempt}")
        if retired.get("event") == "retired":
            break
        await asyncio.sleep(0.25)
    else:
        raise RuntimeError(f"retirement refused: {retired}")
    await maker.send(
        "registry",
        client_order_id="claim-sky4",
        action="claim_neutral",
        args={"product": DRONE, "label": label["label_id"], "period": CLAIM_PERIOD, "units": DRONE_UNITS,
              "units_shipped": DRONE_UNITS, "certificates": [retired["certificate"]["id"]]},
    )
    claim = await first_answer(maker, "claim-sky4")
    if claim.get("event") != "neutrality_claimed":
        raise RuntimeError(f"claim refused: {claim}")
