"""The compliance operator commands print the exchange's decision (0 accepted, 3 refused with the
reason, wherever it comes from), `greenex surrender` prints the certificate or the refusal, and `greenex
compliance` shows the accounts, against a private Redis."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from services.cli.compliance_view import compliance_lines, compliance_rows
from services.cli.demo import seed_exchange
from services.cli.demo_compliance import run_compliance
from services.cli.demo_registry import VERIFIER, run_registry_chain
from services.cli.history import history
from services.cli.readmodel import replay_log
from services.cli.registry_view import registry_rows
from services.cli.venue import Venue
from services.cli.views import conservation_problems
from tests.integration.exchange import Provisioned, provisioned, run_greenex
from tests.integration.load_support import log_entries, settled_exchange
from tests.redis_server import RedisServer
from tests.support import eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.asyncio(loop_scope="module"),
]

SCHEME = {
    "scheme": "SZ", "name": "Shenzhen pilot ETS", "allowance_instruments": ["SZEA-2025"],
    "offset_instruments": ["CCER-2024"], "offset_standards": ["CCER"], "offset_cap_bps": 1000,
    "deadline": "06-30", "penalty_kind": "price_multiple", "penalty_multiple_bps": 30000,
}  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scheme_exchange(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Provisioned]:
    """One exchange for the operator and surrender commands: seeded, with the scheme SZ defined."""
    home = tmp_path_factory.mktemp("compliance")
    servers: list[RedisServer] = []

    def server(*, extra_args: tuple[str, ...] = ()) -> RedisServer:
        servers.append(RedisServer(home / "redis", extra_args=extra_args))
        (home / "redis").mkdir()
        return servers[-1]

    ex = provisioned(server, home, "cmp")
    sup = ex.supervisor()
    (home / "sz.json").write_text(json.dumps(SCHEME))
    await sup.start()
    try:
        await seed_exchange(ex.venue)
        await settled_exchange(ex.redis, ex.settings, timeout=60)
        defined = run_greenex(ex.env, "op", "define-scheme", str(home / "sz.json"))
        assert defined.returncode == 0, defined.stdout + defined.stderr
        assert "accepted define_scheme: SchemeDefined seq" in defined.stdout
        yield ex
    finally:
        await sup.stop()
        await ex.venue.aclose()
        for running in servers:
            running.kill()


async def test_compliance_operator_commands_wait_for_the_decision(
    scheme_exchange: Provisioned, tmp_path: Path
) -> None:
    """Accepted (0) and refused (3, with the reason code wherever it was decided) operator commands."""
    env = scheme_exchange.env
    (tmp_path / "sz.json").write_text(json.dumps(SCHEME))
    again = run_greenex(env, "op", "define-scheme", str(tmp_path / "sz.json"))  # the fixture defined it
    assert again.returncode == 3
    assert "rejected duplicate_scheme" in again.stdout

    allocated = run_greenex(env, "op", "allocate", "szenergy", "SZ", "2024", "SZEA-2025", "900000001",
                            "900000100")  # fmt: skip
    assert allocated.returncode == 0, allocated.stdout + allocated.stderr
    assert "AllowancesAllocated seq" in allocated.stdout
    assert "CreditsIssued seq" in allocated.stdout

    early = run_greenex(env, "op", "close-compliance-year", "SZ", "2099")  # verification refuses it
    assert early.returncode == 3, early.stdout + early.stderr
    assert "rejected before_deadline" in early.stdout
    assert "ComplianceRejected seq" in early.stdout
    for finished in (again, allocated, early):  # the read left waiting is ended before the CLI closes
        assert "Traceback" not in finished.stderr, finished.stderr
    closed = run_greenex(env, "op", "close-compliance-year", "SZ", "2020")
    assert closed.returncode == 0, closed.stdout + closed.stderr
    assert "ComplianceYearClosed seq" in closed.stdout

    shown = run_greenex(env, "compliance", "--scheme", "SZ")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "szenergy" in shown.stdout
    nobody = run_greenex(env, "compliance", "nobody")
    assert nobody.returncode == 1


async def _emissions_verified(venue: Venue, entity: str, year: int, tonnes: int) -> None:
    """The demo's accredited verifier records the entity's verified emissions (its obligation)."""
    verifier = venue.client(VERIFIER[0])
    args = {"entity": entity, "scheme": "SZ", "year": year, "tonnes": tonnes,
            "report_hash": hashlib.sha256(b"cementco 2025 GHG statement").hexdigest()}  # fmt: skip
    cid = f"em-{entity}-{year}"
    await verifier.send("registry", client_order_id=cid, action="record_emissions", args=args)

    async def answered() -> bool:
        mine = [r for r in await verifier.reports(block_ms=100) if r.get("client_order_id") == cid]
        assert all(r.get("event") == "emissions_verified" for r in mine), mine
        return bool(mine)

    await eventually(answered, timeout=30)


async def test_greenex_surrender_prints_the_certificate_or_the_refusal(scheme_exchange: Provisioned) -> None:
    """A covered entity surrenders as its own user (credentials from the environment): the SC- certificate
    (0), a retry with the same id prints the same one and surrenders nothing twice, refusals exit 3 with
    the reason code (more than is due, offsets it does not hold)."""
    ex = scheme_exchange
    settings, venue, redis, env = ex.settings, ex.venue, ex.redis, ex.env
    allocated = run_greenex(env, "op", "allocate", "cementco", "SZ", "2025", "SZEA-2025", "900001001",
                            "900002000")  # fmt: skip (above the first test's 900000001-900000100)
    assert allocated.returncode == 0, allocated.stdout + allocated.stderr
    await _emissions_verified(venue, "cementco", 2025, 1000)

    creds = venue.credentials["cementco"]
    as_cementco = {**env, "GREENEX_SIGNING_KEY": creds.signing_key,
                   "GREENEX_REDIS_PASSWORD": creds.redis_password}  # fmt: skip
    surrender = ["surrender", "SZ", "2025", "SZEA-2025", "600", "--participant", "cementco",
                 "--client-order-id", "sur-retry-1"]  # fmt: skip
    first = run_greenex(as_cementco, *surrender)
    assert first.returncode == 0, first.stdout + first.stderr
    certificate = json.loads(first.stdout[first.stdout.index("{"):])
    assert certificate["kind"] == "surrender"
    assert certificate["id"].startswith("SC-")
    assert (certificate["participant"], certificate["tonnes"]) == ("cementco", 600)
    assert certificate["offset"] is False
    again = run_greenex(as_cementco, *surrender)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sur-retry-1 was sent before" in again.stdout
    assert json.loads(again.stdout[again.stdout.index("{"):]) == certificate
    entries = await log_entries(redis, settings)
    assert len([e for e in entries if e.type == "CreditsSurrendered"]) == 1
    looked_up = run_greenex({**env, "COLUMNS": "200"}, "registry", "certificate", certificate["id"])
    assert looked_up.returncode == 0, looked_up.stdout + looked_up.stderr
    assert json.loads(looked_up.stdout) == certificate  # anyone can look it up, hash and all
    unknown = run_greenex(env, "registry", "certificate", "SC-999999")
    assert unknown.returncode == 2
    assert "no certificate SC-999999" in unknown.stderr

    over = run_greenex(as_cementco, "surrender", "SZ", "2025", "SZEA-2025", "401", "--participant",
                       "cementco")  # fmt: skip
    assert over.returncode == 3, over.stdout + over.stderr
    assert "rejected over_surrender" in over.stdout
    assert "client order id surrender-" in over.stdout  # made and printed, for a safe retry
    no_offsets = run_greenex(as_cementco, "surrender", "SZ", "2025", "CCER-2024", "10", "--participant",
                             "cementco")  # fmt: skip
    assert no_offsets.returncode == 3, no_offsets.stdout + no_offsets.stderr
    assert "rejected insufficient_credits" in no_offsets.stdout

    shown = run_greenex({**env, "COLUMNS": "200"}, "compliance", "cementco")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    row = next(line for line in shown.stdout.splitlines() if "cementco" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[4:12] == ["1,000", "0", "1,000", "1,000", "600", "0", "400", "100"], cells


async def test_the_demo_runs_a_compliance_year_that_adds_up(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """`greenex demo`'s compliance step on today's clock: allowances allocated for 2025, verified
    emissions, surrenders of allowances and CCER up to the cap; each entity's account and the summary line
    say so, and every tonne is still accounted for (surrendered is the sixth state)."""
    ex = provisioned(redis_server_factory, tmp_path, "dcmp")
    settings, venue, redis = ex.settings, ex.venue, ex.redis
    sup = ex.supervisor()
    await sup.start()
    try:
        await seed_exchange(venue)
        await run_registry_chain(venue)
        await run_compliance(venue)
        await settled_exchange(redis, settings, timeout=60)
        state = await replay_log(history(settings, redis))
    finally:
        await sup.stop()
        await venue.aclose()
    rows = {r.entity: r for r in compliance_rows(state, scheme="SZ")}
    assert sorted(rows) == ["cementco", "szenergy"]
    cement, energy = rows["cementco"], rows["szenergy"]
    assert (cement.obligation, cement.allowances, cement.offsets, cement.remaining) == (
        110_000, 99_000, 11_000, 0
    )
    assert (cement.offset_cap, cement.headroom) == (11_000, 0)  # exactly at the cap
    assert (energy.obligation, energy.allowances, energy.offsets, energy.remaining) == (
        52_000, 45_000, 3_000, 4_000
    )
    assert (energy.offset_cap, energy.headroom) == (5_200, 2_200)
    assert compliance_lines(state)[0] == (
        "compliance SZ 2025 cementco: obligation 110,000 t; surrendered 99,000 t allowances + 11,000 t "
        "offsets (cap 11,000 t); remaining 0 t; offset headroom 0 t; due by 2026-12-31; open"
    )
    assert conservation_problems(state) == []
    rows_now = registry_rows(state)
    assert sum(r.surrendered for r in rows_now) == 99_000 + 11_000 + 45_000 + 3_000
    assert sum(r.surrendered for r in rows_now if r.project) == 11_000 + 3_000  # the CCER of SF001
