"""`greenex audit`: every event that touched an account, the exchange's fee account and makers too."""

from __future__ import annotations

from services.cli.audit import audit_lines
from shared.domain.codec import Event, encode_event, event_type
from shared.domain.compliance import EmissionsVerified
from shared.domain.ledger import EXCHANGE_ACCOUNT, SerialRange, TradeSettled
from shared.domain.registry import ActivityRecorded, VerificationAccepted
from shared.eventlog.entry import Entry, NewEntry
from shared.eventlog.memory import InMemoryEventLog
from tests.support import FakeClock


async def _entries(events: list[Event]) -> list[Entry]:
    log = InMemoryEventLog(clock=FakeClock())
    await log.append("settlement", [
        NewEntry(event_id=f"settlement:{i}:0", causation=f"log:{i}", type=event_type(event), event_ns=i,
                 body=encode_event(event))
        for i, event in enumerate(events, start=1)
    ])  # fmt: skip
    return await log.read(0, 100)


def _settled(buyer_fee: int, seller_fee: int) -> TradeSettled:
    return TradeSettled(
        trade_id=7, instrument="CEA-2025", price=5000, quantity=10, buyer="ann", seller="bob",
        buy_order_id=1, sell_order_id=2, cash=50_000, buyer_fee=buyer_fee, seller_fee=seller_fee,
        serials=(SerialRange(1, 10),),
    )  # fmt: skip


async def test_the_exchange_account_sees_every_settlement_that_charged_a_fee() -> None:
    entries = await _entries([_settled(25, 25), _settled(0, 0), _settled(0, 5)])
    lines = list(audit_lines(iter(entries), EXCHANGE_ACCOUNT))
    assert [line.split()[0] for line in lines] == ["1", "3"]
    assert "fee_collector" in lines[0]
    assert "buyer_fee=0.25" in lines[0]
    assert len(list(audit_lines(iter(entries), "ann"))) == 3


async def test_a_product_makers_activity_with_a_decimal_amount_is_listed() -> None:
    activity = ActivityRecorded(
        participant="maker", client_order_id="a-1", product="P1", stage="materials", factor_key="aluminium",
        factor_table="v1", amount="12.5", unit="kg", factor="8.6", grams=107_500,
    )  # fmt: skip
    lines = list(audit_lines(iter(await _entries([activity])), "maker"))
    assert len(lines) == 1
    assert "amount=12.5" in lines[0]


async def test_registry_and_compliance_events_name_their_owner_verifier_and_entity() -> None:
    """An account is audited wherever an event names it, not only as `participant`: the project owner and
    the verifier of an accepted report, the covered entity whose emissions a verifier recorded."""
    accepted = VerificationAccepted(
        report_id="VR-9", verifier="cqc", client_order_id="v-1", project="SF1", owner="forest",
        instrument="CCER-2024", vintage=2024, period_start="2024-01-01", period_end="2024-12-31",
        tonnes=1000, report_hash="00" * 32,
    )  # fmt: skip
    emissions = EmissionsVerified(verifier="cqc", client_order_id="e-1", entity="acme", scheme="SZ",
                                  year=2025, tonnes=900, report_hash="11" * 32)  # fmt: skip
    entries = await _entries([accepted, emissions])
    assert [line.split()[0] for line in audit_lines(iter(entries), "forest")] == ["1"]
    assert [line.split()[0] for line in audit_lines(iter(entries), "acme")] == ["2"]
    assert [line.split()[0] for line in audit_lines(iter(entries), "cqc")] == ["1", "2"]
