"""Dead letters: a pending command that intake keeps failing on leaves its stream for the dead-letter
stream, where the operator inspects it and drops or re-drives it (`greenex dead-letters`).

Intake's decisions never raise (every refusal is a report), so an input that still has not been
acknowledged after DEAD_AFTER deliveries is one whose batch crashed intake each time (a bug in building
its append, an append the log refuses): left pending, it would crash every restart. The re-drain of
pending entries is where intake counts and buries (services/intake/pending.py and gateway.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["DEAD_AFTER", "DeadLetter", "dead_letter_fields", "dead_letter_of"]

_Field = str | bytes | int  # an XADD argument

# Five deliveries: a transient failure (a lost connection, a Redis restart, another input's crash) costs
# an input one delivery, so a good command is never buried for bad luck alone; a poison input is decided
# alone from its third delivery (pending.py) and costs intake five restarts, two in one batch eight:
# inside the supervisor's limit of ten exits in two minutes (services/cli/supervisor.py).
DEAD_AFTER = 5


class DeadLetter(NamedTuple):
    """One entry of the dead-letter stream: the command as its sender wrote it, and why it is here."""

    id: str  # its id in the dead-letter stream
    sender: str
    input_id: str  # its id in the sender's command stream
    data: bytes  # the command, exactly as sent (empty if its writer trimmed it from its stream)
    deliveries: int
    dead_ns: int  # when intake gave up on it


def dead_letter_fields(
    sender: str, input_id: bytes, data: bytes, deliveries: int, now_ns: int
) -> list[_Field]:
    """The fields of a new dead-letter entry, flat, for XADD."""
    return ["sender", sender, "input_id", input_id, "data", data, "deliveries", deliveries, "dead_ns", now_ns]


def dead_letter_of(stream_id: bytes, fields: Mapping[bytes, bytes]) -> DeadLetter:
    """A dead-letter stream entry as read back (XRANGE)."""
    return DeadLetter(
        id=stream_id.decode(),
        sender=fields.get(b"sender", b"").decode(),
        input_id=fields.get(b"input_id", b"").decode(),
        data=fields.get(b"data", b""),
        deliveries=int(fields.get(b"deliveries", b"0")),
        dead_ns=int(fields.get(b"dead_ns", b"0")),
    )
