"""The seeded hostile payloads of tests/property/test_intake_fuzz.py, this time written by a participant's
own Redis user onto its own stream and read by the real intake process, with every service running:
intake never restarts, every payload gets exactly one refusal on the sender's report stream, and no cash
or tonne moves."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shared.config import Settings
from shared.protocol import signed
from tests.integration.exchange import provisioned
from tests.integration.load_support import exchange_problems, settled_exchange
from tests.property.test_intake_fuzz import KEY, _payloads
from tests.redis_server import RedisServer
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

COUNT = 10_000
SPEC = {"symbol": "SZEA-T", "kind": "allowance", "standard": "SZEA", "registry": "SZ", "vintage": 2025,
        "reference_price": "50.00"}  # fmt: skip


class _Signer:
    """What the payload generators call to sign a command as `ann` for this venue."""

    def __init__(self, settings: Settings) -> None:
        self.venue = settings.venue

    def command(self, sender: str, secret: str, **fields: Any) -> bytes:
        stamp = {"participant": sender, "venue": self.venue, "sent_ms": time.time_ns() // 1_000_000}
        return msgspec.json.encode(signed({**stamp, **fields}, secret))


async def test_ten_thousand_hostile_payloads_through_the_running_exchange(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    ex = provisioned(redis_server_factory, tmp_path, "fuzz")
    settings, venue, redis = ex.settings, ex.venue, ex.redis
    sup = ex.supervisor()
    await sup.start()
    try:
        op = venue.operator
        await op.operator("list_instrument", "op-1", **SPEC)
        await venue.onboard("ann", "Ann", signing_key=KEY)
        await op.operator("deposit_cash", "op-2", participant="ann", amount="100000.00")
        await op.operator("set_limits", "op-3", participant="ann", commands_per_s=1_000_000, burst=1_000_000)
        before = await settled_exchange(redis, settings, timeout=60, senders=("ann",))
        intake = sup.procs["intake"]
        ann = venue.client("ann")
        payloads = _payloads(_Signer(settings), random.Random(20261202))  # type: ignore[arg-type]
        started = time.perf_counter()
        for start in range(0, COUNT, 500):
            pipe = ann.redis.pipeline(transaction=False)
            for data in payloads[start : start + 500]:
                pipe.xadd(settings.keys.commands("ann"), {"data": data})
            await pipe.execute()

        async def all_answered() -> bool:
            return int(await redis.xlen(settings.keys.reports("ann"))) >= COUNT

        await eventually(all_answered, timeout=180, interval=0.5)
        print(f"{COUNT} payloads answered in {time.perf_counter() - started:.1f} s")
        entries = await settled_exchange(redis, settings, timeout=60, senders=("ann",))
        assert sup.procs["intake"] is intake
        assert intake.returncode is None  # not one crash
        rows: Any = await redis.xrange(settings.keys.reports("ann"))
        reports = [msgspec.json.decode(fields[b"data"]) for _, fields in rows]
        refusals = [r for r in reports if r.get("exec_type") == "rejected"]
        assert len(refusals) == COUNT == len(reports) - _non_refusals(reports)
        codes = Counter(r["reason"]["code"] for r in refusals)
        print(dict(codes))
        assert {"malformed", "bad_signature", "sender_mismatch"} <= set(codes)
        moved = [e.type for e in entries[len(before) :] if e.type not in ("CommandRejected", "LogCheckpoint")]
        assert moved == []  # nothing but refusals (of the authenticated ones) entered the log
        assert await exchange_problems(redis, settings, entries) == []
        assert int(await redis.xlen(settings.keys.dead_letters)) == 0
    finally:
        await sup.stop()
        await venue.aclose()


def _non_refusals(reports: list[dict[str, Any]]) -> int:
    """Reports ann had before the payloads (none expected: registration and deposit report nothing)."""
    return sum(1 for r in reports if r.get("exec_type") != "rejected")
