"""The published client contract stays in step with the code and keeps its stable names."""

from __future__ import annotations

import json
from pathlib import Path

from services.intake.contract import contract_document
from shared.keys import Keys

SPEC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_committed_asyncapi_spec_is_current() -> None:
    """docs/asyncapi.json is what `greenex asyncapi` generates now (regenerate it after a change)."""
    assert json.loads(SPEC.read_text()) == contract_document()


def test_command_names_clients_depend_on_are_present() -> None:
    """The command type tags and channel addresses documented in docs/protocol.md."""
    document = contract_document()
    tags = {
        s["properties"]["type"]["enum"][0]
        for name, s in document["components"]["schemas"].items()
        if name.endswith("Msg") or name == "OperatorMessage"
    }
    assert tags == {
        "new_order",
        "cancel_order",
        "replace_order",
        "mass_cancel",
        "query",
        "operator",
        "retire_credits",
        "registry",
        "rotate_key",
        "surrender",
        "transfer_cash",
    }
    addresses = {c["address"] for c in document["channels"].values()}
    assert Keys().commands("{participant}") in addresses
