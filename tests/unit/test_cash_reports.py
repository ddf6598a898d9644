"""A participant learns its cash from the protocol: a deposit is reported, as a withdrawal is."""

from __future__ import annotations

from services.harness import InProcessExchange
from shared.reports import CashReport, CashStatus
from tests.support import FakeClock


async def test_a_deposit_and_a_withdrawal_are_reported_to_their_owner_in_cny() -> None:
    ex = InProcessExchange(clock=FakeClock())
    await ex.submit([
        ex.register("ann", "ann-key-0123456789"),
        ex.operator_command("op-1", "deposit_cash", participant="ann", amount="1234567.89"),
        ex.operator_command("op-2", "withdraw_cash", participant="ann", amount="0.89"),
        ex.operator_command("op-3", "withdraw_cash", participant="ann", amount="9999999.00"),
    ])  # fmt: skip
    cash = [(d.participant, d.report) for d in ex.reports if isinstance(d.report, CashReport)]
    assert [(who, r.status, r.amount) for who, r in cash] == [
        ("ann", CashStatus.DEPOSITED, "1234567.89"),
        ("ann", CashStatus.WITHDRAWN, "0.89"),
        ("ann", CashStatus.REJECTED, "9999999.00"),
    ]
