"""10,000 hostile payloads on a participant's own stream, through the real intake core and every
follower (the in-process exchange): none stops it, each gets exactly one refusal, nothing moves.

Seeded, so a failure reproduces: the seed is printed."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec

from services.harness import InProcessExchange, Input
from services.system import SYSTEM
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.verify import ChainVerifier
from shared.reports import ExecutionReport

SEED, COUNT = 20261201, 10_000
SECOND = 1_000_000_000
KEY = "ann-key-0123456789"

_NUMBERS: list[Any] = [
    "1e999999999", "1e999990", "-1e999999", "1e-999999999", "NaN", "nan", "Infinity", "-inf", "inf",
    "0", "-0.00", "-5", "58.005", "1" * 40, "0x10", "1_000", "٣", "²", "", " ", "58,00", None, True, [], {},
    10**30, -(10**30), 2**63, -1, 0, 1.5, float("1e308"), "5e-324",
]  # fmt: skip
_FIELDS = ["type", "participant", "venue", "sent_ms", "client_order_id", "instrument", "side", "order_type",
           "price", "quantity", "time_in_force", "orig_client_order_id", "sig"]  # fmt: skip


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice([50, 200, 1200, 5000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    return (opener * depth + "1" + closer * depth).encode()


def _junk_bytes(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))


def _unicode(rng: random.Random) -> bytes:
    text = "".join(chr(rng.choice([0x0, 0x7F, 0xE9, 0x202E, 0xFEFF, 0x1F4A9, 0xD7FF])) for _ in range(40))
    return json.dumps({"participant": "ann", "type": text, "sig": text}).encode()


def _oversize(rng: random.Random) -> bytes:
    return json.dumps({"participant": "ann", "pad": "x" * rng.randrange(4097, 20_000)}).encode()


def _wrong_fields(rng: random.Random) -> bytes:
    fields = {rng.choice(_FIELDS) + rng.choice(["", "_", "X"]): rng.choice(_NUMBERS) for _ in range(6)}
    return json.dumps({"participant": "ann", **fields}, default=str).encode()


def _hostile_number_order(exchange: InProcessExchange, rng: random.Random, n: int) -> bytes:
    """A correctly signed order whose price or quantity is hostile: refused in the log, id spent (or,
    when the number has no canonical form to sign, refused before that)."""
    fields: dict[str, Any] = {"instrument": "SZEA-T", "side": "buy", "order_type": "limit", "price": "49.00",
                              "quantity": 1}  # fmt: skip
    fields[rng.choice(["price", "quantity"])] = rng.choice(_NUMBERS)
    if fields["quantity"] == 1 and fields["price"] == "49.00":
        fields["quantity"] = -1
    try:
        return exchange.command("ann", KEY, type="new_order", client_order_id=f"fz-{n}", **fields)
    except ValueError:  # a number RFC 8785 cannot write (a float NaN, an integer beyond 2^53) has no
        # signed form: an attacker sends it anyway, with any sig
        body = {"participant": "ann", "type": "new_order", "client_order_id": f"fz-{n}", **fields}
        return json.dumps({**body, "sig": "0" * 64}, default=str).encode()


def _bad_signature(exchange: InProcessExchange, rng: random.Random, n: int) -> bytes:
    signed = json.loads(exchange.command("ann", KEY, type="cancel_order", client_order_id=f"bs-{n}",
                                         instrument="SZEA-T", orig_client_order_id="x"))  # fmt: skip
    signed["sig"] = rng.choice(["", "00" * 32, "é" * 64, "G" * 64, 12, None, ["a"], signed["sig"][::-1]])
    return json.dumps(signed).encode()


def _payloads(exchange: InProcessExchange, rng: random.Random) -> list[bytes]:
    plain: list[Callable[[random.Random], bytes]] = [_nested, _junk_bytes, _unicode, _oversize, _wrong_fields]
    out = []
    for n in range(COUNT):
        kind = n % 7
        if kind < len(plain):
            out.append(plain[kind](rng))
        elif kind == 5:
            out.append(_hostile_number_order(exchange, rng, n))
        else:
            out.append(_bad_signature(exchange, rng, n))
    return out


async def test_ten_thousand_hostile_payloads_each_get_one_refusal_and_change_nothing() -> None:
    print(f"seed={SEED} count={COUNT}")
    rng = random.Random(SEED)
    exchange = InProcessExchange()
    spec = {"symbol": "SZEA-T", "kind": "allowance", "standard": "SZEA", "registry": "SZ", "vintage": 2025,
            "reference_price": "50.00"}  # fmt: skip
    await exchange.submit([
        exchange.operator_command("op-1", "list_instrument", **spec),
        exchange.register("ann", KEY),
        exchange.operator_command("op-2", "deposit_cash", participant="ann", amount="100000.00"),
        exchange.operator_command("op-3", "set_limits", participant="ann", commands_per_s=1_000_000,
                                  burst=1_000_000),
    ])  # fmt: skip
    settlement_before = exchange.core("settlement").processor.digest()
    reports_before = len(exchange.reports)
    payloads = _payloads(exchange, rng)
    for start in range(0, COUNT, 500):  # intake's batch size
        batch: list[Input] = [("ann", data) for data in payloads[start : start + 500]]
        await exchange.submit(batch)
    reports = exchange.reports[reports_before:]
    executions = [d.report for d in reports if isinstance(d.report, ExecutionReport)]
    assert len(executions) == COUNT  # one answer per payload, none lost, none doubled
    assert {r.exec_type for r in executions} == {"rejected"}
    assert all(d.participant == "ann" for d in reports)  # refusals only to the stream's owner
    assert exchange.core("settlement").processor.digest() == settlement_before  # no cash or tonne moved
    answers = {c.name: c.answers_to for c in SYSTEM.cores}
    verifier = ChainVerifier(producer_keys=IN_MEMORY_KEYS, answers=answers)
    for entry in await exchange.log.read(0, 10**9):
        verifier.check(entry)
    codes = Counter(r.reason.code.value for r in executions if not isinstance(r.reason, msgspec.UnsetType))
    print(dict(codes))
    assert sum(codes.values()) == COUNT  # every refusal says why
    assert {"malformed", "bad_signature", "sender_mismatch"} <= set(codes)
