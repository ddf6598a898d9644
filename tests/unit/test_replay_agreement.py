"""A core that re-decides requests the log already answered must decide them as the log did; otherwise it
stops, naming the request, instead of drifting silently from the log (a log written under other rules)."""

from __future__ import annotations

import pytest

from services.harness import InProcessExchange
from services.runtime.agreement import LoggedAnswers
from services.runtime.follower import CannotFold, LogFollower
from services.verification.core import Verification
from shared.domain.codec import Event, encode_event, event_type
from shared.domain.events import OrderRejected
from shared.domain.ledger import OrderSubmitted, OrderVerified
from shared.domain.reasons import Reason
from shared.eventlog.entry import Entry
from tests.support import FakeClock

KEY = "ann-key-0123456789"
SPEC = {"symbol": "SZEA-T", "kind": "allowance", "standard": "SZEA", "registry": "SZ", "vintage": 2025,
        "reference_price": "50.00"}  # fmt: skip


def _rejected(text: str, reason: Reason = Reason.INSUFFICIENT_FUNDS) -> OrderRejected:
    return OrderRejected(participant="ann", client_order_id="b-1", instrument="SZEA-T", command="new_order",
                         reason=reason, text=text)  # fmt: skip


def _logged(event: Event, cause: int, seq: int = 99) -> Entry:
    return Entry(
        seq=seq, event_id=f"verification:{cause}:0", causation=f"log:{cause}", producer="verification",
        type=event_type(event), event_ns=0, logged_ns=0, body=encode_event(event), auth=b"", prev_hash=b"",
        hash=b"",
    )  # fmt: skip


def _expecting(*events: Event) -> LoggedAnswers:
    answers = LoggedAnswers()
    answers.expect(7, [(event_type(e), encode_event(e)) for e in events])
    return answers


def test_the_same_answer_and_a_reworded_refusal_agree() -> None:
    assert _expecting(_rejected("not enough cash")).check(_logged(_rejected("not enough cash"), 7)) is None
    assert _expecting(_rejected("cash: 1.00 short")).check(_logged(_rejected("not enough cash"), 7)) is None


def test_another_reason_or_another_decision_disagrees() -> None:
    other = _expecting(_rejected("x", Reason.INVALID_PRICE)).check(_logged(_rejected("x"), 7))
    assert other is not None
    assert "seq 7" in other
    missing = _expecting(_rejected("x")).check(_logged(_rejected("x"), 9))
    assert missing is not None
    assert "fewer answers to seq 7" in missing
    assert _expecting().check(_logged(_rejected("x"), 7)) is not None  # it decides nothing now


def test_an_answer_from_before_the_snapshot_is_not_compared() -> None:
    assert LoggedAnswers().check(_logged(_rejected("x"), 3)) is None


class _Stricter(Verification):
    """Verification under "other rules": it refuses every order the log's verification accepted."""

    def decide(self, seq: int, event_ns: int, event: Event) -> list[Event]:
        answers = super().decide(seq, event_ns, event)
        if isinstance(event, OrderSubmitted):
            return [_rejected("stricter") if isinstance(a, OrderVerified) else a for a in answers]
        return answers


async def test_a_core_under_other_rules_stops_at_the_first_request_it_decides_differently() -> None:
    ex = InProcessExchange(clock=FakeClock())
    await ex.submit([
        ex.operator_command("op-1", "list_instrument", **SPEC), ex.register("ann", KEY),
        ex.operator_command("op-2", "deposit_cash", participant="ann", amount="1000.00"),
    ])  # fmt: skip
    await ex.submit([("ann", ex.command("ann", KEY, type="new_order", client_order_id="b-1",
                                       instrument="SZEA-T", side="buy", order_type="limit", price="49.00",
                                       quantity=2))])  # fmt: skip
    entries = await ex.log.read(0, 10**9)
    same = LogFollower(Verification(), ex.log)
    same.logged_position = await ex.log.position("verification")
    same._decide(entries)  # the same rules: it agrees with every answer in the log
    stricter = LogFollower(_Stricter(), ex.log)
    stricter.logged_position = await ex.log.position("verification")
    with pytest.raises(CannotFold, match="disagrees with the log"):
        stricter._decide(entries)
