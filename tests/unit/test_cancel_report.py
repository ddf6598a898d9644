"""A cancel is answered under the cancel request's own client order id, naming the order it cancelled
(FIX: ClOrdID of the cancel, OrigClOrdID of the order)."""

from __future__ import annotations

from services.harness import InProcessExchange
from shared.reports import ExecType, ExecutionReport
from tests.support import FakeClock

KEY = "ann-key-0123456789"
SPEC = {"symbol": "SZEA-T", "kind": "allowance", "standard": "SZEA", "registry": "SZ", "vintage": 2025,
        "reference_price": "50.00"}  # fmt: skip


async def test_a_cancel_report_names_the_request_and_the_order() -> None:
    ex = InProcessExchange(clock=FakeClock())
    await ex.submit([
        ex.operator_command("op-1", "list_instrument", **SPEC),
        ex.register("ann", KEY),
        ex.operator_command("op-2", "deposit_cash", participant="ann", amount="1000.00"),
    ])  # fmt: skip
    await ex.submit([("ann", ex.command("ann", KEY, type="new_order", client_order_id="b-1",
                                       instrument="SZEA-T", side="buy", order_type="limit", price="49.00",
                                       quantity=2))])  # fmt: skip
    await ex.submit([("ann", ex.command("ann", KEY, type="cancel_order", client_order_id="c-1",
                                       instrument="SZEA-T", orig_client_order_id="b-1"))])  # fmt: skip
    executions = [d.report for d in ex.reports if isinstance(d.report, ExecutionReport)]
    cancelled = [r for r in executions if r.exec_type is ExecType.CANCELLED]
    assert len(cancelled) == 1
    assert cancelled[0].client_order_id == "c-1"
    assert cancelled[0].orig_client_order_id == "b-1"
    assert [r.client_order_id for r in executions if r.exec_type is ExecType.NEW] == ["b-1"]
