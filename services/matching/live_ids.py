"""The live client order ids of the matching core, indexed by participant too.

A mass cancel must find one participant's resting orders without walking everyone's (a participant with no
orders could otherwise stall matching for the whole exchange with a stream of mass cancels over a large
book). A dict keyed by (participant, client order id), so every use of it stays a dict's, that also keeps
each participant's order ids.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LiveIds"]

Key = tuple[str, str]


class LiveIds(dict[Key, int]):
    def __init__(self, items: Iterable[tuple[Key, int]] = ()) -> None:
        super().__init__()
        self._by_participant: dict[str, set[int]] = {}
        for key, order_id in items:
            self[key] = order_id

    def __setitem__(self, key: Key, order_id: int) -> None:
        if key in self:
            self._forget(key)
        super().__setitem__(key, order_id)
        self._by_participant.setdefault(key[0], set()).add(order_id)

    def __delitem__(self, key: Key) -> None:
        self._forget(key)
        super().__delitem__(key)

    def of(self, participant: str) -> list[int]:
        """The participant's live order ids, in order."""
        return sorted(self._by_participant.get(participant, ()))

    def _forget(self, key: Key) -> None:
        ids = self._by_participant[key[0]]
        ids.discard(self[key])
        if not ids:
            del self._by_participant[key[0]]
