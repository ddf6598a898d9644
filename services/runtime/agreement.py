"""A core that replays requests the log already answered must answer them as the log did.

On start a follower re-decides every request after its snapshot; the answers to those at or below its
logged position are in the log already and are not appended again. If the code decides one differently
(its rules changed since the log was written, or a decision is not deterministic), the core's state would
silently leave the log's. So the follower keeps what it decided for each such request and compares it with
the core's own logged answers as it meets them: a difference stops the core, naming the request.

The comparison is field by field over the fields the logged answer has: an event that gained a field (with
its default) since the log was written still agrees, and so does a refusal whose text was reworded; one
whose decision, reason code or amounts changed does not.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from shared.eventlog.entry import Entry

__all__ = ["LoggedAnswers"]


class LoggedAnswers:
    """The bodies a core re-decided for requests the log already answered, by request seq."""

    def __init__(self) -> None:
        self._expected: dict[int, deque[tuple[str, dict[str, Any]]]] = {}

    def expect(self, seq: int, answers: list[tuple[str, bytes]]) -> None:
        """The (type, body) answers re-decided for the request at `seq` (none is an answer too)."""
        self._expected[seq] = deque((kind, _fields(body)) for kind, body in answers)

    def check(self, entry: Entry) -> str | None:
        """Why the core's own logged `entry` is not what it re-decided, or None. A core appends the answers
        to a request together and in request order, so an answer to a later request also means every
        earlier request got all its answers."""
        if not self._expected or not entry.causation.startswith("log:"):
            return None
        cause = int(entry.causation[4:])
        for seq in [s for s in self._expected if s < cause]:
            if left := self._expected.pop(seq):
                return f"the log holds fewer answers to seq {seq} than it decides now ({left[0][0]} missing)"
        expected = self._expected.get(cause)
        if expected is None:
            return None  # decided before the snapshot it started from: nothing to compare
        if not expected:
            return f"the log answers seq {cause} with {entry.type}, which it no longer decides"
        kind, fields = expected.popleft()
        if not expected:
            del self._expected[cause]
        logged = _fields(entry.body)
        if kind != entry.type or any(
            fields.get(name) != value for name, value in logged.items() if name not in _PROSE
        ):
            return f"it decides seq {cause} as {kind} now, the log holds {entry.type} ({entry.event_id})"
        return None


_PROSE = frozenset({"text"})  # a refusal's words for people may change; its reason code may not


def _fields(body: bytes) -> dict[str, Any]:
    decoded = msgspec.msgpack.decode(body)
    return decoded if isinstance(decoded, dict) else {"": decoded}
