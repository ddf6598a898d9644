"""The demo's compliance year: a Shenzhen-style scheme, allowances allocated for 2025, verified emissions,
surrenders of allowances and capped CCER offsets (docs/registry.md, "Compliance").

The demo runs on the real clock. Compliance year 2025 is over from 2026 on, so its emissions are verified
ex post; the scheme's deadline is December 31 of the following year (the national ETS's recent cycles)
rather than Shenzhen's June 30 of the 2014 Measures, so on 2026-12-01 the surrenders are in time. The
demo does not close the year (`greenex op close-compliance-year SZ 2025` is refused before the deadline).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from services.cli.demo_registry import OFFSET, VERIFIER, first_answer, first_report
from services.cli.venue import Venue
from shared.client import ExchangeClient

__all__ = ["ALLOWANCE", "COMPLIANCE_YEAR", "SCHEME", "run_compliance"]

ALLOWANCE = "SZEA-2025"
COMPLIANCE_YEAR = 2025
SCHEME: dict[str, Any] = {
    "scheme": "SZ", "name": "Shenzhen pilot ETS (demo)", "allowance_instruments": [ALLOWANCE],
    "offset_instruments": [OFFSET], "offset_standards": ["CCER"], "offset_cap_bps": 1000,
    "cap_basis": "emissions", "offset_min_vintage": 2021, "projects_started_from": "2020-09-22",
    "exclude_own_projects": True, "deadline": "12-31", "penalty_kind": "price_multiple",
    "penalty_multiple_bps": 30000, "deduct_shortfall": True,
}  # fmt: skip
# (entity, allowances allocated for 2025 as serials start..end, verified 2025 emissions,
#  allowances surrendered, CCER bought and surrendered): cementco surrenders everything due, exactly at
# the 10 % offset cap; szenergy is still short and has cap headroom left.
ENTITIES: tuple[tuple[str, tuple[int, int], int, int, int], ...] = (
    ("cementco", (1_000_001, 1_100_000), 110_000, 99_000, 11_000),
    ("szenergy", (1_100_001, 1_150_000), 52_000, 45_000, 3_000),
)


async def run_compliance(venue: Venue) -> None:
    """Define the scheme, allocate, verify the emissions, buy CCER and surrender, each step decided
    before the next (each sender has its own stream: only waiting orders them)."""
    op, scheme = venue.operator, SCHEME["scheme"]
    entities = {name: await venue.client(name).from_now() for name, *_ in ENTITIES}
    verifier = await venue.client(VERIFIER[0]).from_now()
    forest = await venue.client("sunforest").from_now()
    await op.operator("define_scheme", "op-scheme-sz", **SCHEME)
    for name, (start, end), *_ in ENTITIES:
        await op.operator("allocate_allowances", f"op-alloc-{name}-{COMPLIANCE_YEAR}", participant=name,
                          scheme=scheme, year=COMPLIANCE_YEAR, instrument=ALLOWANCE, serial_start=start,
                          serial_end=end)  # fmt: skip
        await _event(entities[name], "allocated")
    for name, _, emissions, *_ in ENTITIES:
        cid = f"em-{name}-{COMPLIANCE_YEAR}"
        statement = f"{name} {COMPLIANCE_YEAR} GHG emissions report, ISO 14064-3 verification statement"
        await verifier.send("registry", client_order_id=cid, action="record_emissions", args={
            "entity": name, "scheme": scheme, "year": COMPLIANCE_YEAR, "tonnes": emissions,
            "report_hash": hashlib.sha256(statement.encode()).hexdigest()})  # fmt: skip
        await _expect(verifier, cid, "emissions_verified")
    # The offsets are bought on the exchange: Sunforest offers at the reference, the emitters lift it.
    bought = sum(offsets for *_, offsets in ENTITIES)
    await forest.send("new_order", client_order_id="primary-ccer-compliance", instrument=OFFSET, side="sell",
                      order_type="limit", price="78.00", quantity=bought)  # fmt: skip
    await first_answer(forest, "primary-ccer-compliance")
    for name, *_, offsets in ENTITIES:
        await entities[name].send("new_order", client_order_id=f"buy-ccer-{name}", instrument=OFFSET,
                                  side="buy", order_type="limit", price="85.80", quantity=offsets,
                                  time_in_force="IOC")  # fmt: skip
    for name, _, _, allowances, offsets in ENTITIES:
        await _surrender(entities[name], f"sur-{name}-allowances", ALLOWANCE, allowances)
        await _surrender(entities[name], f"sur-{name}-offsets", OFFSET, offsets)


async def _event(client: ExchangeClient, event: str, timeout: float = 30.0) -> dict[str, Any]:
    missing = f"no {event} report for {client.participant}"
    return await first_report(client, lambda r: r.get("event") == event, missing, timeout)


async def _expect(client: ExchangeClient, cid: str, event: str) -> dict[str, Any]:
    answer = await first_answer(client, cid)
    if answer.get("event") != event:
        raise RuntimeError(f"{cid} refused: {answer}")
    return answer


async def _surrender(client: ExchangeClient, stem: str, instrument: str, quantity: int) -> None:
    """Surrender, retried while the bought offsets are still being settled (insufficient_credits)."""
    answer: dict[str, Any] = {}
    for attempt in range(40):
        cid = f"{stem}-{attempt}"
        await client.send("surrender", client_order_id=cid, scheme=SCHEME["scheme"], year=COMPLIANCE_YEAR,
                          instrument=instrument, quantity=quantity)  # fmt: skip
        answer = await first_answer(client, cid)
        if answer.get("event") == "surrendered":
            return
        if answer.get("reason", {}).get("code") != "insufficient_credits":
            break
        await asyncio.sleep(0.25)
    raise RuntimeError(f"surrender refused: {answer}")
