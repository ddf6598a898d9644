"""The published client contract: docs/asyncapi.json, every channel a client touches, typed.

FastStream's AsyncAPI generator lays out the channels and operations from a broker on which they are
declared (the command stream as a subscriber, the report and market-data channels as publishers). That
broker is never started: the exchange reads and writes these channels with its own loops. Payload
schemas come from the msgspec Structs of the contract (shared/protocol.py, shared/reports.py), and
every message travels as plain JSON in a stream entry's `data` field, not in FastStream's envelope.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from faststream.redis import RedisBroker
from faststream.specification import AsyncAPI

from shared.keys import Keys
from shared.protocol import ClientMessage
from shared.reports import (
    BalancesReport,
    CashReport,
    DepthView,
    ExecutionReport,
    KeyReport,
    MassCancelReport,
    OpenOrdersReport,
    RegistryReport,
    SettlementReport,
    TradeReport,
)

__all__ = ["contract_document"]

ParticipantReport = (
    ExecutionReport
    | SettlementReport
    | CashReport
    | RegistryReport
    | KeyReport
    | MassCancelReport
    | BalancesReport
    | OpenOrdersReport
)


class _Channel(msgspec.Struct, frozen=True):
    address: str
    payload: str  # the schema name under components/schemas
    description: str
    receives: bool = False  # True: clients write it and the exchange reads it
    method: str = ""  # the Redis command clients use, when it is not a stream's
    parameters: tuple[tuple[str, str], ...] = ()


def _channels(keys: Keys) -> list[_Channel]:
    return [
        _Channel(
            keys.commands("{participant}"), "ClientCommand", receives=True,
            description="One sender's signed commands: `XADD <key> * data <json>`, as that sender's own "
            "Redis user (no other user may write it). Every command is answered on the sender's report "
            "stream. See docs/protocol.md.",
            parameters=(("participant", "the sender's participant id (`operator` for the operator)"),),
        ),
        _Channel(
            keys.reports("{participant}"), "ParticipantReport",
            description="One participant's execution, settlement, cash, registry, mass cancel and "
            "query reports, in log order (`data` holds the JSON). Read it with XREAD from the last id you "
            "saw.",
            parameters=(("participant", "the participant id the reports are for"),),
        ),
        _Channel(
            keys.trades, "TradeReport",
            description="The public trade tape: every trade, without participants.",
        ),
        _Channel(
            keys.depth("{instrument}"), "DepthView", method="get",
            description="One book's L2 depth (best 10 levels), a string key overwritten whole at most "
            "every 50 ms: `GET <key>`.",
            parameters=(("instrument", "the instrument symbol"),),
        ),
    ]  # fmt: skip


def contract_document(keys: Keys | None = None) -> dict[str, Any]:
    """AsyncAPI 3.0 for every channel a client touches, with the JSON schema of every payload."""
    keys = keys or Keys()
    channels = _channels(keys)
    broker = RedisBroker("redis://127.0.0.1:6379/0")  # describes the channels; never connected
    for channel in channels:
        if channel.receives:

            async def commands(body: Any) -> None:  # the real reader is intake's command loop
                raise NotImplementedError

            broker.subscriber(stream=channel.address, title=channel.address, description=channel.description)(
                commands
            )
        else:
            broker.publisher(stream=channel.address, title=channel.address, description=channel.description)
    spec = AsyncAPI(
        broker,
        title="greenex client contract",
        version="2.0.0",  # docs/protocol.md, "Versions"
        description=f"Signed commands in on {keys.commands('<participant>')}; reports out on "
        f"{keys.reports('<participant>')}; public market data on {keys.trades} and "
        f"{keys.depth('<instrument>')}. See docs/protocol.md and docs/security.md.",
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    _use_contract_schemas(document, channels)
    return document


def _use_contract_schemas(document: dict[str, Any], channels: list[_Channel]) -> None:
    """Replace FastStream's untyped payloads with the contract's msgspec schemas, name the channels'
    parameters, and drop what FastStream's own envelope would carry (a correlation id header)."""
    roots, components = msgspec.json.schema_components(
        [ClientMessage, ParticipantReport, TradeReport, DepthView], ref_template="#/components/schemas/{name}"
    )
    schemas: dict[str, Any] = dict(components)
    for name, root in zip(
        ("ClientCommand", "ParticipantReport", "TradeReport", "DepthView"), roots, strict=True
    ):
        schemas.setdefault(name, root)
    messages = document["components"]["messages"]
    for message in messages.values():
        message.pop("correlationId", None)
    by_address = {channel.address: channel for channel in channels}
    for address, body in document["channels"].items():
        channel = by_address[address]
        for ref in body["messages"].values():
            name = ref["$ref"].rpartition("/")[2].replace("%7B", "{").replace("%7D", "}")
            messages[name]["payload"] = {"$ref": f"#/components/schemas/{channel.payload}"}
        if channel.parameters:
            body["parameters"] = {name: {"description": text} for name, text in channel.parameters}
        if channel.method:
            body["bindings"]["redis"]["method"] = channel.method
    document["components"]["schemas"] = dict(sorted(schemas.items()))
