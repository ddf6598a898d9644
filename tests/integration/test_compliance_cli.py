"""The compliance operator commands print the exchange's decision (0 accepted, 3 refused with the
reason, wherever it comes from), and `greenex compliance` shows the accounts, against a private Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.demo import seed_exchange
from tests.integration.exchange import provisioned, run_greenex
from tests.integration.load_support import settled_exchange
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

SCHEME = {
    "scheme": "SZ", "name": "Shenzhen pilot ETS", "allowance_instruments": ["SZEA-2025"],
    "offset_instruments": ["CCER-2024"], "offset_standards": ["CCER"], "offset_cap_bps": 1000,
    "deadline": "06-30", "penalty_kind": "price_multiple", "penalty_multiple_bps": 30000,
}  # fmt: skip


async def test_compliance_operator_commands_wait_for_the_decision(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    ex = provisioned(redis_server_factory, tmp_path, "cmp")
    settings, venue, redis, env = ex.settings, ex.venue, ex.redis, ex.env
    sup = ex.supervisor()
    scheme_file = tmp_path / "sz.json"
    scheme_file.write_text(json.dumps(SCHEME))
    await sup.start()
    try:
        await seed_exchange(venue)
        await settled_exchange(redis, settings, timeout=60)

        defined = run_greenex(env, "op", "define-scheme", str(scheme_file))
        assert defined.returncode == 0, defined.stdout + defined.stderr
        assert "accepted define_scheme: SchemeDefined seq" in defined.stdout
        again = run_greenex(env, "op", "define-scheme", str(scheme_file))
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
        closed = run_greenex(env, "op", "close-compliance-year", "SZ", "2020")
        assert closed.returncode == 0, closed.stdout + closed.stderr
        assert "ComplianceYearClosed seq" in closed.stdout

        shown = run_greenex(env, "compliance", "--scheme", "SZ")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "szenergy" in shown.stdout
        nobody = run_greenex(env, "compliance", "nobody")
        assert nobody.returncode == 1
    finally:
        await sup.stop()
        await venue.aclose()
