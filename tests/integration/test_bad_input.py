"""Hostile and malformed input: each entry gets its documented reject, nothing changes, nothing stops."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.protocol import signed
from tests.integration.exchange import Exchange

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_hostile_entries_are_rejected_with_reasons_and_change_nothing(exchange: Exchange) -> None:
    """29 bad entries: the identifiable ones get a reject report with the documented reason code; the log,
    the books and the balances are exactly as before; the services still answer a good order after."""
    sym = await exchange.instrument()
    alice = await exchange.participant("alice", credits={sym: (1, 100)})
    bob = await exchange.participant("bob")
    await alice.send(
        "new_order",
        client_order_id="a-rest",
        instrument=sym,
        side="sell",
        order_type="limit",
        price="58.00",
        quantity=5,
    )
    await exchange.reports_until(alice, lambda r: any(x.get("client_order_id") == "a-rest" for x in r))
    before = await exchange.drained()

    def order(cid: str, **over: Any) -> dict[str, Any]:
        base = {
            "type": "new_order",
            "participant": bob.participant,
            "client_order_id": cid,
            "instrument": sym,
            "side": "buy",
            "order_type": "limit",
            "price": "58.00",
            "quantity": 1,
        }
        return {**base, **over}

    def bob_signed(cid: str, **over: Any) -> bytes:
        return json.dumps(signed(order(cid, **over), bob.secret)).encode()

    replayed = bob_signed("dup-1", price="52.50")  # a valid order, sent twice below
    # (raw data, expected reason code for bob, or None when nobody can be told)
    cases: list[tuple[bytes, str | None]] = [
        (b"not json at all", None),
        (b"[1, 2, 3]", None),
        (b'{"type": "new_order"}', None),  # no participant
        (json.dumps(signed(order("x1", participant="mallory"), "guess")).encode(), None),  # unknown sender
        (json.dumps({**order("x2"), "sig": "00" * 32}).encode(), "bad_signature"),
        (json.dumps(order("x3")).encode(), "bad_signature"),  # unsigned
        (json.dumps(signed(order("x4"), "wrong-secret")).encode(), "bad_signature"),
        (bob_signed("x5", quantity="ten"), "malformed"),
        (bob_signed("x6", quantity=-5), "invalid_quantity"),
        (bob_signed("x7", quantity=0), "invalid_quantity"),
        (bob_signed("x8", quantity=10**20), "invalid_quantity"),
        (bob_signed("x9", price="58.005"), "malformed"),  # finer than a fen
        (bob_signed("x10", price="99.00"), "outside_price_band"),
        (bob_signed("x11", price="NaN"), "malformed"),
        (bob_signed("x12", instrument="NOPE-2030"), "unknown_instrument"),
        (bob_signed("x13", type="steal_money"), "malformed"),
        (bob_signed("x14", extra="field"), "malformed"),
        (bob_signed("x15", order_type="market"), "malformed"),  # a market order with a price
        (bob_signed("x16", price=None), "malformed"),  # a limit order without one
        (bob_signed("x17", side="short"), "malformed"),
        (bob_signed("x18", time_in_force="FOREVER"), "malformed"),
        (bob_signed("bad id with spaces"), "malformed"),
        (bob_signed("y" * 65), "malformed"),
        (
            json.dumps(
                signed(
                    {
                        "type": "cancel_order",
                        "participant": bob.participant,
                        "client_order_id": "x19",
                        "instrument": sym,
                        "orig_client_order_id": "a-rest",
                    },
                    bob.secret,
                )
            ).encode(),
            "unknown_order",
        ),  # alice's order, bob's cancel
        (
            json.dumps(
                signed(
                    {
                        "type": "replace_order",
                        "participant": bob.participant,
                        "client_order_id": "x20",
                        "instrument": sym,
                        "orig_client_order_id": "a-rest",
                        "price": "58.10",
                        "quantity": 1,
                    },
                    bob.secret,
                )
            ).encode(),
            "unknown_order",
        ),
        (
            json.dumps(
                signed(
                    {
                        "type": "operator",
                        "participant": bob.participant,
                        "client_order_id": "x21",
                        "action": "deposit_cash",
                        "args": {"participant": bob.participant, "amount": "1000000.00"},
                    },
                    bob.secret,
                )
            ).encode(),
            "not_permitted",
        ),  # a participant posing as the operator
        # oversized: refused before parsing, so not even the participant is trusted with a report
        (b'{"participant": "' + bob.participant.encode() + b'", "pad": "' + b"x" * 5000 + b'"}', None),
    ]
    assert len(cases) >= 20
    for data, _ in cases:
        await exchange.raw(data)
    await exchange.raw(b"")  # an empty data field
    await exchange.redis.xadd(exchange.settings.keys.commands, {"junk": "no data field"})
    expected = [code for _, code in cases if code is not None]
    got = await exchange.reports_until(bob, lambda r: len(r) >= len(expected))
    assert [r["reason"]["code"] for r in got] == expected
    assert all(r["exec_type"] == "rejected" and r["seq"] is None for r in got)
    after = await exchange.drained()
    assert after.seq == before.seq  # the log shows no effect
    assert after.digest() == before.digest()
    assert after.settlement.balances() == before.settlement.balances()

    # the services are still up: a good order is accepted, and replaying that very entry is refused
    await exchange.raw(replayed)
    await exchange.raw(replayed)
    got = await exchange.reports_until(bob, lambda r: len(r) >= 2)
    assert [(r["client_order_id"], r["exec_type"]) for r in got] == [
        ("dup-1", "rejected"),
        ("dup-1", "new"),
    ] or [(r["client_order_id"], r["exec_type"]) for r in got] == [("dup-1", "new"), ("dup-1", "rejected")]
    dup = next(r for r in got if r["exec_type"] == "rejected")
    assert dup["reason"]["code"] == "duplicate_client_order_id"
