"""Operator commands print the exchange's decision, not that intake took the command: accepted (0), or
refused with the reason (3) wherever the refusal comes from (intake, or a core answering intake's
entry); a retry with the same --client-order-id prints the first one's decision and does nothing twice."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.demo import seed_exchange
from tests.integration.exchange import provisioned, run_greenex
from tests.integration.load_support import log_entries, settled_exchange
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


async def test_op_commands_wait_for_the_decision_and_retry_safely(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    ex = provisioned(redis_server_factory, tmp_path, "opd")
    settings, venue, redis, env = ex.settings, ex.venue, ex.redis, ex.env
    sup = ex.supervisor()

    def op(*args: str) -> subprocess.CompletedProcess[str]:
        return run_greenex(env, "op", *args)

    await sup.start()
    try:
        await seed_exchange(venue)
        await settled_exchange(redis, settings, timeout=60)

        too_much = op("withdraw", "szenergy", "999999999.00")  # intake logs it; verification refuses it
        assert too_much.returncode == 3, too_much.stdout + too_much.stderr
        assert "rejected insufficient" in too_much.stdout
        assert "WithdrawalRequested seq" in too_much.stdout
        assert "WithdrawalRejected seq" in too_much.stdout

        unknown = op("halt", "NOPE-2099")  # refused by intake: nothing permanent for a missing instrument
        assert unknown.returncode == 3
        assert "rejected unknown_instrument" in unknown.stdout

        first = op("deposit", "szenergy", "10.00", "--client-order-id", "dep-retry-1")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "accepted deposit_cash: CashDeposited seq" in first.stdout
        again = op("deposit", "szenergy", "10.00", "--client-order-id", "dep-retry-1")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "dep-retry-1 was sent before" in again.stdout
        assert first.stdout.split("CashDeposited seq")[1] == again.stdout.split("CashDeposited seq")[1]
        entries = await log_entries(redis, settings)
        deposits = [e for e in entries if e.event_id.startswith("operator/dep-retry-1/")]
        assert len(deposits) == 1  # the retry did nothing twice

        made = op("deposit", "szenergy", "1.00")
        assert made.returncode == 0
        assert "client order id op-deposit_cash-" in made.stdout  # printed, for a safe retry

        # A participant's retirement, retried after (say) a lost answer: one retirement, one certificate.
        creds = venue.credentials["sunforest"]
        as_sunforest = {**env, "GREENEX_SIGNING_KEY": creds.signing_key, "GREENEX_REDIS_PASSWORD":
                        creds.redis_password}  # fmt: skip
        retire = ["retire", "CCER-2024", "3", "--participant", "sunforest", "--beneficiary", "Sun Co",
                  "--purpose", "voluntary", "--client-order-id", "ret-retry-1"]  # fmt: skip
        first_retire = run_greenex(as_sunforest, *retire)
        assert first_retire.returncode == 0, first_retire.stdout + first_retire.stderr
        again_retire = run_greenex(as_sunforest, *retire)
        assert again_retire.returncode == 0, again_retire.stdout + again_retire.stderr
        assert "ret-retry-1 was sent before" in again_retire.stdout
        certificate = first_retire.stdout[first_retire.stdout.index("{"):]
        assert certificate == again_retire.stdout[again_retire.stdout.index("{"):]  # the same certificate
        entries = await log_entries(redis, settings)
        assert len([e for e in entries if e.event_id.startswith("sunforest/ret-retry-1/")]) == 1
    finally:
        await sup.stop()
        await venue.aclose()

