"""One msgpack codec for every event of the log, decoding through a single typed union."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.domain.base import DomainEvent
from shared.domain.compliance import ComplianceEvent
from shared.domain.events import EngineEvent
from shared.domain.integrity import IntegrityEvent
from shared.domain.labels import FootprintEvent
from shared.domain.ledger import LedgerEvent
from shared.domain.queries import QueryEvent
from shared.domain.registry import RegistryEvent

__all__ = ["Event", "decode_event", "encode_event", "event_type", "tags"]

Event = (
    EngineEvent | LedgerEvent | RegistryEvent | QueryEvent | IntegrityEvent | ComplianceEvent | FootprintEvent
)

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(Event)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(body: bytes) -> Event:
    return _decoder.decode(body)  # type: ignore[no-any-return]


def event_type(event: Event) -> str:
    """The event's tag, which is its class name."""
    return type(event).__name__


def tags(*classes: type[DomainEvent]) -> frozenset[str]:
    """The log's type tags of these event classes: how cores name the entries they read or answer."""
    return frozenset(cls.__name__ for cls in classes)
