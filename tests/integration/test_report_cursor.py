"""The report publisher's lost cursor (services/intake/reports/publisher.py), on a real Redis: rebuilt
from the newest report the publisher itself wrote, however many of matching's reports came after it."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from services.intake.reports import ReportPublisher
from shared.domain.values import Side
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.keys import Keys
from shared.reports import ExecType, ExecutionReport, OrdStatus, SettlementReport, encode_report

pytestmark = pytest.mark.integration

KEYS = Keys("rc")


def _settlement(seq: int) -> bytes:
    return encode_report(SettlementReport(
        seq=seq, trade_id=1, instrument="CEA", price="50.00", quantity=1, cash="50.00", serials=[],
        side=Side.BUY, order_id=1, fee="0.00", net_cash="-50.00",
    ))  # fmt: skip


def _ack(seq: int) -> bytes:
    return encode_report(ExecutionReport(
        seq=seq, client_order_id=f"c{seq}", exec_type=ExecType.NEW, ord_status=OrdStatus.NEW,
    ))  # fmt: skip


@pytest.mark.parametrize(("matching_reports", "cursor"), [(True, 10), (False, 510)])
async def test_a_lost_cursor_is_the_newest_report_the_publisher_wrote(
    redis_client: Redis, matching_reports: bool, cursor: int
) -> None:
    """500 acks (matching's, written in its appends) after the publisher's last settlement report: the
    cursor is that report's seq, read back past all of them (a cursor taken from an ack would skip the
    publisher's reports in between; one of 0 would write them all again). Under the strict profile the
    publisher wrote the acks too, so the newest of them says how far it got."""
    stream = KEYS.reports("alice")
    await redis_client.xadd(stream, {"data": _settlement(10)})
    for seq in range(11, 511):
        await redis_client.xadd(stream, {"data": _ack(seq)})
    await redis_client.xadd(KEYS.reports("bob"), {"data": _settlement(7)})
    publisher = ReportPublisher(redis_client, KEYS, IN_MEMORY_KEYS, matching_reports=matching_reports)
    await publisher.load_cursor(["alice", "bob", "carol"])  # carol: no stream at all
    assert publisher.cursor == cursor
