"""The signed form of a command is RFC 8785 (JCS): a client in any language with a JCS library signs the
same bytes the exchange checks; for every body the protocol accepts it is what v1 signed."""

from __future__ import annotations

import json

import pytest

from shared.protocol import canonical_bytes, sign


def test_the_rfc_8785_sample_canonicalizes_as_the_rfc_says() -> None:
    """RFC 8785 section 3.2.3, less the float literals our commands never carry."""
    given = json.loads('{"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
                       ' "literals": [null, true, false], "sig": "left out"}')  # fmt: skip
    expected = '{"literals":[null,true,false],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonical_bytes(given) == expected.encode()


def test_a_body_as_go_writes_it_signs_as_the_same_command() -> None:
    """Go's encoder writes `&` as \\u0026; what is signed is the parsed command's canonical form."""
    go = json.loads('{"type":"retire_credits","beneficiary":"R\\u0026D Co","quantity":5}')
    assert canonical_bytes(go) == b'{"beneficiary":"R&D Co","quantity":5,"type":"retire_credits"}'


def test_every_command_the_protocol_accepts_signs_as_v1_did() -> None:
    command = {"type": "new_order", "participant": "acme", "venue": "greenex-dev", "sent_ms": 1764575000000,
               "client_order_id": "b1", "instrument": "SZEA-2025", "side": "buy", "order_type": "limit",
               "price": "48.10", "quantity": 10, "time_in_force": "GTC", "note": "é 日本"}  # fmt: skip
    v1 = json.dumps(command, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_bytes(command) == v1


def test_a_number_beyond_two_to_the_53_has_no_signed_form() -> None:
    with pytest.raises(ValueError, match="RFC 8785"):
        sign({"quantity": 10**20}, "key")
