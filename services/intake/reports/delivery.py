"""A report and where it goes: one participant's report stream, or the public trade tape."""

from __future__ import annotations

from services.intake.core import Rejection
from shared.order_reports import Delivery
from shared.reports import ExecType, ExecutionReport, OrdStatus, RejectReason

__all__ = ["Delivery", "rejection_report"]


def rejection_report(input_id: str, rejection: Rejection) -> ExecutionReport:
    """The report of a command intake refused: it names the input, since no log entry exists."""
    return ExecutionReport(
        seq=None,
        client_order_id=rejection.client_order_id,
        exec_type=ExecType.REJECTED,
        ord_status=OrdStatus.REJECTED,
        command=rejection.command,
        input_id=input_id,
        reason=RejectReason(rejection.reason, rejection.text),
    )
