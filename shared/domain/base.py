"""The one base of every event in the log, and the one exception a core refuses an input with."""

from __future__ import annotations

import msgspec

from shared.domain.reasons import Reason

__all__ = ["DomainEvent", "Refused"]


class DomainEvent(msgspec.Struct, frozen=True, tag=True, tag_field="type", kw_only=True):
    """Base of every event; the tag is the class name and never changes once published."""


class Refused(Exception):  # noqa: N818  -- named as the fact, like events
    """An input a core refuses, with the reason code its sender gets and a readable text."""

    def __init__(self, reason: Reason, text: str) -> None:
        super().__init__(text)
        self.reason, self.text = reason, text
