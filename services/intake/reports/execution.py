"""Execution, settlement, cash and trade-tape reports derived from log events: a pure projection."""

from __future__ import annotations

import msgspec

from services.intake.reports.answers import ANSWER_TYPES, answer_reports
from services.intake.reports.compliance import COMPLIANCE_REPORTED_TYPES, compliance_reports
from services.intake.reports.delivery import Delivery
from services.intake.reports.registry import REGISTRY_REPORTED_TYPES, RegistryReporter
from shared.domain.certificates import Origin
from shared.domain.codec import Event, tags
from shared.domain.events import OrderRejected
from shared.domain.ledger import (
    CashDeposited,
    CashTransferredIn,
    CashTransferredOut,
    CashWithdrawn,
    CommandRejected,
    KeyRotated,
    TradeSettled,
    WithdrawalRejected,
)
from shared.domain.values import Side, fen_to_price
from shared.order_reports import ORDER_REPORTED_TYPES, OrderReports
from shared.reports import (
    CashReport,
    CashStatus,
    ExecType,
    ExecutionReport,
    KeyReport,
    OrdStatus,
    RejectReason,
    SettlementReport,
)

__all__ = ["REPORTED_TYPES", "Reporter"]

REPORTED_TYPES = (
    ORDER_REPORTED_TYPES
    | tags(
        OrderRejected,
        TradeSettled,
        CashDeposited,
        CashWithdrawn,
        CashTransferredIn,
        CashTransferredOut,
        WithdrawalRejected,
        CommandRejected,
        KeyRotated,
    )
    | REGISTRY_REPORTED_TYPES
    | ANSWER_TYPES
    | COMPLIANCE_REPORTED_TYPES
)


class _Memory(msgspec.Struct, frozen=True, array_like=True):
    orders: dict[int, tuple[Side, int, int]]
    origins: dict[str, list[Origin]]


_memory_encoder = msgspec.msgpack.Encoder()
_memory_decoder = msgspec.msgpack.Decoder(_Memory)


class Reporter(OrderReports):
    """Every report of the log: matching's kinds (OrderReports, which remembers open orders), the rest
    here. Intake's publisher writes the rest; the harness all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.registry = RegistryReporter()

    def snapshot(self) -> bytes:
        """What it remembers (open orders, issued blocks), canonically encoded."""
        origins = self.registry.origins.blocks
        return _memory_encoder.encode(
            _Memory(dict(sorted(self.orders.items())), {k: origins[k] for k in sorted(origins)})
        )

    def restore(self, data: bytes) -> None:
        try:
            memory = _memory_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise ValueError(f"undecodable reporter snapshot: {exc}") from exc
        self.orders = dict(memory.orders)
        self.registry.origins.blocks = {k: list(v) for k, v in memory.origins.items()}

    def reports(self, seq: int, event: Event, entry_hash: bytes = b"") -> list[Delivery]:
        name = type(event).__name__
        if name in REGISTRY_REPORTED_TYPES:
            return self.registry.reports(seq, event, entry_hash)
        if name in ANSWER_TYPES:
            return answer_reports(seq, event)
        if name in COMPLIANCE_REPORTED_TYPES:
            return compliance_reports(seq, event, entry_hash, self.registry.origins)
        if name in ORDER_REPORTED_TYPES:
            return self.order_reports(seq, event)
        match event:
            case OrderRejected():
                return [Delivery(event.participant, ExecutionReport(
                    seq=seq, client_order_id=event.client_order_id, order_id=event.order_id or None,
                    exec_type=ExecType.REJECTED, ord_status=OrdStatus.REJECTED, instrument=event.instrument,
                    command=event.command, reason=RejectReason(event.reason, event.text),
                ))]  # fmt: skip
            case CommandRejected():
                return [Delivery(event.participant, ExecutionReport(
                    seq=seq, client_order_id=event.client_order_id, exec_type=ExecType.REJECTED,
                    ord_status=OrdStatus.REJECTED, command=event.command, input_id=event.input_id,
                    reason=RejectReason(event.reason, event.text),
                ))]  # fmt: skip
            case KeyRotated():
                return [Delivery(event.participant, KeyReport(
                    seq=seq, key_id=event.key.key_id, fingerprint=event.key.fingerprint,
                    previous_valid_until_ns=event.previous_valid_until_ns, requested_by=event.requested_by,
                ))]  # fmt: skip
            case TradeSettled():
                return self._settled(seq, event)
            case CashTransferredIn():
                return [Delivery(event.participant, CashReport(
                    seq=seq, status=CashStatus.TRANSFERRED_IN, amount=fen_to_price(event.amount),
                    partition=event.from_partition, transfer_seq=event.from_seq,
                ))]  # fmt: skip
            case CashTransferredOut():
                return [Delivery(event.participant, CashReport(
                    seq=seq, status=CashStatus.TRANSFERRED_OUT, amount=fen_to_price(event.amount),
                    partition=event.to_partition, transfer_seq=event.request_seq,
                ))]  # fmt: skip
            case CashDeposited():
                return [Delivery(event.participant, CashReport(
                    seq=seq, status=CashStatus.DEPOSITED, amount=fen_to_price(event.amount)
                ))]  # fmt: skip
            case CashWithdrawn():
                return [Delivery(event.participant, CashReport(
                    seq=seq, status=CashStatus.WITHDRAWN, amount=fen_to_price(event.amount)
                ))]  # fmt: skip
            case WithdrawalRejected():
                return [Delivery(event.participant, CashReport(
                    seq=seq, status=CashStatus.REJECTED, amount=fen_to_price(event.amount),
                    reason=RejectReason(event.reason, event.text),
                ))]  # fmt: skip
        return []

    @staticmethod
    def _settled(seq: int, s: TradeSettled) -> list[Delivery]:
        serials = [(r.start, r.end) for r in s.serials]

        def side(participant: str, side: Side, order_id: int, fee: int, net_cash: int) -> Delivery:
            return Delivery(participant, SettlementReport(
                seq=seq, trade_id=s.trade_id, instrument=s.instrument, price=fen_to_price(s.price),
                quantity=s.quantity, cash=fen_to_price(s.cash), serials=serials, side=side,
                order_id=order_id, fee=fen_to_price(fee), net_cash=fen_to_price(net_cash),
            ))  # fmt: skip

        return [
            side(s.buyer, Side.BUY, s.buy_order_id, s.buyer_fee, -(s.cash + s.buyer_fee)),
            side(s.seller, Side.SELL, s.sell_order_id, s.seller_fee, s.cash - s.seller_fee),
        ]
