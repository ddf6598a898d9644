"""Intake's snapshot: its state at one of its own entries, so a restart reads only the log after it.

Intake's state is a projection of its own entries. Most of them are orders, which leave only counters
and spent client order ids behind; the rest configure it (participants and their sealed keys, limits,
listings, issued serials) and are few. The snapshot keeps those configuring events as the log holds
them, encoded and re-evolved on restore: a participant's key is opened again from its sealed form, so a
snapshot never holds a key in the clear. It is sealed and tied to the log like the followers'
(services/runtime/snapshots.py).
"""

from __future__ import annotations

import msgspec

from services.intake.core import Intake
from shared.domain.codec import decode_event

__all__ = ["intake_state", "restore_intake"]

_VERSION = 1


class IntakeImage(msgspec.Struct, frozen=True, array_like=True, kw_only=True):
    version: int = _VERSION
    config: list[bytes]  # intake's configuring events, in log order (Intake.config_events)
    used_ids: dict[str, list[str]]  # every client order id spent, per sender
    order_ids: dict[str, list[str]]  # those that named an order
    orders_submitted: int
    last_input: dict[str, str]  # sender -> position of its last input in the log
    logged_inputs: int


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(IntakeImage)


def intake_state(core: Intake) -> bytes:
    """The whole state, canonically encoded (sorted): equal states give equal bytes."""
    s = core.state
    return _encoder.encode(
        IntakeImage(
            config=list(core.config_events),
            used_ids={who: sorted(ids) for who, ids in sorted(s.used_ids.items())},
            order_ids={who: sorted(ids) for who, ids in sorted(s.order_ids.items())},
            orders_submitted=s.orders_submitted,
            last_input=dict(sorted(core.last_input.items())),
            logged_inputs=core.logged_inputs,
        )
    )


def restore_intake(core: Intake, data: bytes) -> None:
    """Load a state `intake_state` wrote into a fresh `core` (its keys open again from the sealed events);
    ValueError if the bytes cannot be read."""
    if core.config_events or core.logged_inputs:
        raise ValueError("restore into a fresh intake only")
    try:
        image = _decoder.decode(data)
        if image.version != _VERSION:
            raise ValueError(f"unknown intake snapshot version {image.version}")
        for raw in image.config:
            core.evolve(decode_event(raw))
    except msgspec.DecodeError as exc:
        raise ValueError(f"undecodable intake snapshot: {exc}") from exc
    s = core.state
    s.used_ids = {who: set(ids) for who, ids in image.used_ids.items()}
    s.order_ids = {who: set(ids) for who, ids in image.order_ids.items()}
    s.orders_submitted = image.orders_submitted
    core.last_input = dict(image.last_input)
    core.logged_inputs = image.logged_inputs
