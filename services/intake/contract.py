"""The published client contract: the AsyncAPI spec FastStream derives from intake, plus message schemas."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from faststream.specification import AsyncAPI

from services.intake.service import build_app
from shared.config import Settings
from shared.protocol import ClientMessage

__all__ = ["contract_document"]


def contract_document() -> dict[str, Any]:
    """AsyncAPI 3.0 for intake's channels, with the JSON schema of every command clients may send."""
    # The channel is the same whichever loop reads it; declared as a FastStream subscriber only here.
    app = build_app(Settings(direct_read=False))
    assert app.broker is not None  # build_app always passes one; FastStream types it optional
    spec = AsyncAPI(
        app.broker,
        title="greenex client contract",
        version="1.0.0",
        description="Signed commands in on greenex:in; reports out on greenex:out:<participant>. "
        "See docs/protocol.md.",
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    (command_schema,), components = msgspec.json.schema_components(
        [ClientMessage], ref_template="#/components/schemas/{name}"
    )
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    document["components"]["schemas"]["ClientCommand"] = command_schema
    return document
