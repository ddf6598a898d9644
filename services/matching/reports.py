"""Matching's reports, written in the append that logs its events (issue 17, item 4).

An order's acknowledgement, fills, cancel, expiry and replace, and the public trade tape, reach the
participant in the very script call that logs them: the report publisher's hop (a wake-up, a read of
the log and a write) is off the order path. The append script completes each report with its entry's
seq, so a report still names the entry it reports, and lands exactly once: a crash before the append
writes neither, a restart does not append (or report) what the log already holds.
"""

from __future__ import annotations

from services.matching.processor import MatchingProcessor
from shared.domain.codec import Event
from shared.eventlog.effects import Effect
from shared.keys import Keys
from shared.order_reports import OrderReports, report_effect

__all__ = ["MatchingReports"]


class MatchingReports:
    """The follower's AnswerReports for matching (services/runtime/follower.py)."""

    def __init__(self, processor: MatchingProcessor, keys: Keys) -> None:
        self.processor, self.keys = processor, keys
        self.memory = OrderReports()

    def __call__(self, event: Event, write: bool) -> list[Effect]:
        deliveries = self.memory.order_reports(0, event)  # seq 0: the append script fills it in
        if not write:
            return []
        return [report_effect(self.keys, delivery, seq_from_append=True) for delivery in deliveries]

    def restored(self) -> None:
        """Every open order is on a book: its side, limit price and size are all a fill report needs."""
        self.memory.orders = {
            order.order_id: (order.side, order.price, order.leaves + order.cum)
            for book in self.processor.engine.books.values()
            for order in book.orders.values()
            if order.live
        }
