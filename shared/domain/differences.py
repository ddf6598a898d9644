"""Name the first difference between two states' tables, for operators comparing live and replayed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["first_key_difference"]


def first_key_difference(live: Mapping[Any, Any], replayed: Mapping[Any, Any], what: str) -> str | None:
    """`<what> <key>: live <a> != replayed <b>` for the smallest key whose values differ, or None."""
    for key in sorted(live.keys() | replayed.keys()):
        a, b = live.get(key), replayed.get(key)
        if a != b:
            return f"{what} {key}: live {a!r} != replayed {b!r}"
    return None
