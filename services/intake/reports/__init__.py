"""Intake's reports: the projection of log events into participants' reports, and their publisher."""

from services.intake.reports.delivery import Delivery, rejection_report
from services.intake.reports.execution import REPORTED_TYPES, Reporter
from services.intake.reports.publisher import PUBLISHED_TYPES, ReportPublisher

__all__ = [
    "PUBLISHED_TYPES",
    "REPORTED_TYPES",
    "Delivery",
    "ReportPublisher",
    "Reporter",
    "rejection_report",
]
