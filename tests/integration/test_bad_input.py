"""Hostile and malformed input: each entry gets its documented reject, nothing changes, nothing stops."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from shared.protocol import signed
from tests.integration.exchange import Exchange

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_hostile_entries_are_rejected_with_reasons_and_change_nothing(exchange: Exchange) -> None:
    """Bad entries on a participant's own stream: each gets its documented reject on that participant's
    report stream (those whose signature holds are refused in the log, spending their client order id;
    the rest at once, seq None); no core's state changes; the services still answer a good order after."""
    sym = await exchange.instrument()
    alice = await exchange.participant("alice", credits={sym: (1, 100)})
    bob = await exchange.participant("bob")
    await alice.send(
        "new_order", client_order_id="a-rest", instrument=sym, side="sell", order_type="limit",
        price="58.00", quantity=5,
    )  # fmt: skip
    await exchange.reports_until(alice, lambda r: any(x.get("client_order_id") == "a-rest" for x in r))
    before = await exchange.drained()

    def order(cid: str, **over: Any) -> dict[str, Any]:
        base = {
            "type": "new_order", "participant": bob.participant, "venue": bob.venue,
            "sent_ms": bob.clock() // 1_000_000, "client_order_id": cid, "instrument": sym, "side": "buy",
            "order_type": "limit", "price": "58.00", "quantity": 1,
        }  # fmt: skip
        return {**base, **over}

    def bob_signed(cid: str, **over: Any) -> bytes:
        return json.dumps(signed(order(cid, **over), bob.secret)).encode()

    def v1_signed(cid: str, **over: Any) -> bytes:
        body = order(cid, **over)
        v1 = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        sig = hmac.new(bob.secret.encode(), v1, hashlib.sha256).hexdigest()
        return json.dumps({**body, "sig": sig}).encode()

    def bob_command(kind: str, **fields: Any) -> bytes:
        return json.dumps(bob.command(kind, **fields)).encode()

    replayed = bob_signed("dup-1", price="52.50")  # a valid order, sent twice below
    hour_ago = bob.clock() // 1_000_000 - 3_600_000
    # (raw data on bob's own stream, expected reason code, refused in the log: its id is spent)
    cases: list[tuple[bytes, str, bool]] = [
        (b"not json at all", "malformed", False),
        (b"[1, 2, 3]", "malformed", False),
        (b'{"type": "new_order"}', "sender_mismatch", False),  # names no participant
        (json.dumps(signed(order("x1", participant="mallory"), "guess")).encode(), "sender_mismatch", False),
        (json.dumps({**order("x2"), "sig": "00" * 32}).encode(), "bad_signature", False),
        (json.dumps(order("x3")).encode(), "bad_signature", False),  # unsigned
        (json.dumps(signed(order("x4"), "wrong-secret")).encode(), "bad_signature", False),
        (bob_signed("x5", quantity="ten"), "malformed", False),
        (bob_signed("x6", quantity=-5), "invalid_quantity", True),
        (bob_signed("x7", quantity=0), "invalid_quantity", True),
        (bob_signed("x8", quantity=10**15), "invalid_quantity", True),
        # Beyond 2^53 a number has no RFC 8785 form, so no signature can hold: refused before the log.
        (v1_signed("x8b", quantity=10**20), "malformed", False),
        (bob_signed("x9", price="58.005"), "invalid_tick", True),  # finer than a fen: off every tick
        (bob_signed("x10", price="99.00"), "outside_price_band", True),
        (bob_signed("x11", price="NaN"), "malformed", True),
        (bob_signed("x12", instrument="NOPE-2030"), "unknown_instrument", True),
        (bob_signed("x13", type="steal_money"), "malformed", False),
        (bob_signed("x14", extra="field"), "malformed", False),
        (bob_signed("x15", order_type="market"), "malformed", True),  # a market order with a price
        (bob_signed("x16", price=None), "malformed", True),  # a limit order without one
        (bob_signed("x17", side="short"), "malformed", False),
        (bob_signed("x18", time_in_force="FOREVER"), "malformed", False),
        (bob_signed("bad id with spaces"), "malformed", False),
        (bob_signed("y" * 65), "malformed", False),
        (bob_signed("x22", venue="another-exchange"), "wrong_venue", True),
        (bob_signed("x23", sent_ms=hour_ago), "outside_window", True),
        (bob_command("cancel_order", client_order_id="x19", instrument=sym, orig_client_order_id="a-rest"),
         "unknown_order", True),  # alice's order, bob's cancel
        (bob_command("replace_order", client_order_id="x20", instrument=sym, orig_client_order_id="a-rest",
                     price="58.10", quantity=1), "unknown_order", True),
        (bob_command("operator", client_order_id="x21", action="deposit_cash",
                     args={"participant": bob.participant, "amount": "1000000.00"}),
         "not_permitted", True),  # a participant posing as the operator
        # a signature of non-ASCII characters (hmac.compare_digest raises TypeError on such a str)
        (json.dumps({**order("x24"), "sig": "\u00e9" * 64}).encode(), "bad_signature", False),
        (bob_signed("x25", price="1e999999999"), "malformed", True),  # overflows Decimal
        (bob_signed("x26", price="1e999990"), "malformed", True),  # a million-digit integer to build
        (bob_signed("x27", price="1e-999999999"), "malformed", True),  # underflows to 0
        # oversized: refused before parsing
        (b'{"participant": "' + bob.participant.encode() + b'", "pad": "' + b"x" * 5000 + b'"}', "malformed",
         False),
        (b"", "malformed", False),  # an empty data field
    ]  # fmt: skip
    for data, _, _ in cases:
        await exchange.raw(bob, data)
    await bob.redis.xadd(bob.in_key, {"junk": "no data field"})
    expected = [code for _, code, _ in cases] + ["malformed"]
    got = await exchange.reports_until(bob, lambda r: len(r) >= len(expected))
    assert sorted(r["reason"]["code"] for r in got) == sorted(expected)
    assert all(r["exec_type"] == "rejected" for r in got)
    logged = sorted(r["client_order_id"] for r in got if r["seq"] is not None)
    assert logged == sorted(json.loads(data)["client_order_id"] for data, _, spent in cases if spent)
    after = await exchange.drained()
    assert after.core_digests() == before.core_digests()  # no core saw anything happen
    assert after.settlement.balances() == before.settlement.balances()
    new_types = {e.type for e in await exchange.log.read(before.seq, 1000)}
    assert new_types == {"CommandRejected"}

    # the services are still up: a good order is accepted, and replaying that very entry is refused
    await exchange.raw(bob, replayed)
    await exchange.raw(bob, replayed)
    got = await exchange.reports_until(bob, lambda r: len(r) >= 2)
    assert sorted((r["client_order_id"], r["exec_type"]) for r in got) == [
        ("dup-1", "new"),
        ("dup-1", "rejected"),
    ]
    dup = next(r for r in got if r["exec_type"] == "rejected")
    assert dup["reason"]["code"] == "duplicate_client_order_id"


async def test_a_refused_command_cannot_be_replayed_after_conditions_change(exchange: Exchange) -> None:
    """An order refused for an unlisted instrument spends its client order id: sent again once the
    instrument is listed, the very same signed entry is refused as a duplicate, never executed."""
    bob = await exchange.participant("bob")
    symbol = exchange.unique("LATER-T")
    captured = json.dumps(bob.command("new_order", client_order_id="later-1", instrument=symbol, side="buy",
                                      order_type="limit", price="58.00", quantity=1)).encode()  # fmt: skip
    await exchange.raw(bob, captured)
    got = await exchange.reports_until(bob, lambda r: len(r) >= 1)
    assert (got[0]["reason"]["code"], got[0]["seq"] is not None) == ("unknown_instrument", True)
    await exchange.op("list_instrument", symbol=symbol, kind="allowance", standard="SZEA", registry="SZ",
                      vintage=2025, reference_price="58.00")  # fmt: skip
    await exchange.drained()
    await exchange.raw(bob, captured)
    got = await exchange.reports_until(bob, lambda r: len(r) >= 1)
    assert [r["reason"]["code"] for r in got] == ["duplicate_client_order_id"]
    state = await exchange.drained()
    assert symbol not in {o.instrument for o in state.verification.state.orders.values()}


async def test_a_command_naming_another_participant_reaches_only_its_sender(exchange: Exchange) -> None:
    """Mallory, on her own stream, sends a cancel naming Bob and his live order: she is told
    sender_mismatch; Bob's report stream gets nothing and his order rests on."""
    sym = await exchange.instrument()
    bob = await exchange.participant("bob", credits={sym: (1, 10)})
    mallory = await exchange.participant("mallory")
    await bob.send("new_order", client_order_id="b-live", instrument=sym, side="sell", order_type="limit",
                   price="58.00", quantity=5)  # fmt: skip
    await exchange.reports_until(bob, lambda r: any(x.get("exec_type") == "new" for x in r))
    forged = {"type": "cancel_order", "participant": bob.participant, "client_order_id": "b-live",
              "instrument": sym, "orig_client_order_id": "b-live", "venue": bob.venue,
              "sent_ms": bob.clock() // 1_000_000}  # fmt: skip
    await exchange.raw(mallory, json.dumps(forged).encode())
    told = await exchange.reports_until(mallory, lambda r: len(r) >= 1)
    assert told[0]["reason"]["code"] == "sender_mismatch"
    await exchange.drained()
    assert await bob.reports(block_ms=200) == []
    state = await exchange.drained()
    assert any(o.client_order_id == "b-live" for o in state.verification.state.orders.values())
