"""What the exchange sends clients: reports on `out:<participant>`, the trade tape and depth views.

Each report is a tagged Struct (`type`); fields that do not apply to a report are UNSET and left out
of its JSON, so a client sees exactly the fields of its kind of report. Prices and cash are decimal CNY
strings, quantities integer tonnes. These Structs are the schema docs/asyncapi.json publishes.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from shared.domain.reasons import Reason
from shared.domain.values import Side

__all__ = [
    "DEPTH_LEVELS",
    "BalancesReport",
    "CashReport",
    "CashStatus",
    "ComplianceEventKind",
    "ComplianceReport",
    "DepthView",
    "ExecType",
    "Liquidity",
    "ExecutionReport",
    "HoldingView",
    "KeyReport",
    "MassCancelReport",
    "OpenOrdersReport",
    "OrdStatus",
    "OrderView",
    "RegistryEventKind",
    "RegistryReport",
    "RejectReason",
    "Report",
    "SettlementReport",
    "TradeReport",
    "encode_report",
]


class ExecType(enum.StrEnum):
    NEW = "new"
    TRADE = "trade"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    REJECTED = "rejected"
    ORDER_STATUS = "order_status"  # the answer to an order_status query (FIX ExecType I)


class OrdStatus(enum.StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class CashStatus(enum.StrEnum):
    DEPOSITED = "deposited"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"
    TRANSFERRED_OUT = "transferred_out"  # to another partition (`partition` names it); in flight until...
    TRANSFERRED_IN = "transferred_in"  # ...it arrives there: the same transfer (`transfer`), once


class RegistryEventKind(enum.StrEnum):
    CREDITS_ISSUED = "credits_issued"
    VERIFICATION_ACCEPTED = "verification_accepted"
    REJECTED = "rejected"
    RETIRED = "retired"
    CANCELLED = "cancelled"
    LABEL_ISSUED = "label_issued"
    NEUTRALITY_CLAIMED = "neutrality_claimed"
    PRODUCT_REGISTERED = "product_registered"
    ACTIVITY_RECORDED = "activity_recorded"
    CUT_OFF_DECLARED = "cut_off_declared"
    FOOTPRINT_RECALCULATED = "footprint_recalculated"


class ComplianceEventKind(enum.StrEnum):
    ALLOCATED = "allocated"
    EMISSIONS_VERIFIED = "emissions_verified"
    REJECTED = "rejected"
    SURRENDERED = "surrendered"
    YEAR_CLOSED = "year_closed"


class Liquidity(enum.StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class RejectReason(msgspec.Struct, frozen=True):
    code: Reason
    text: str


class _Report(msgspec.Struct, frozen=True, tag_field="type", kw_only=True):
    """Base of every report; the tag is its `type` and never changes once published."""


class ExecutionReport(_Report, frozen=True, tag="execution_report"):
    """An order's life: new, trade, cancelled, expired, replaced, rejected. `seq` is the log entry it
    reports (None for a command refused at the edge, which names its `input_id` instead)."""

    seq: int | None
    client_order_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    order_id: int | UnsetType | None = UNSET
    orig_client_order_id: str | UnsetType = UNSET
    instrument: str | UnsetType = UNSET
    side: Side | UnsetType = UNSET
    price: str | UnsetType | None = UNSET  # the order's limit; None for a market order
    quantity: int | UnsetType = UNSET
    last_qty: int | UnsetType = UNSET
    last_price: str | UnsetType = UNSET
    cum_qty: int | UnsetType = UNSET
    leaves_qty: int | UnsetType = UNSET
    trade_id: int | UnsetType = UNSET
    liquidity: Liquidity | UnsetType = UNSET
    command: str | UnsetType = UNSET  # what was refused: new_order, cancel_order ...
    input_id: str | UnsetType = UNSET  # the refused command's stream id
    reason: RejectReason | UnsetType = UNSET


class SettlementReport(_Report, frozen=True, tag="settlement"):
    """Delivery versus payment of one trade, from one side's point of view."""

    seq: int
    trade_id: int
    instrument: str
    price: str
    quantity: int
    cash: str  # price x quantity
    serials: list[tuple[int, int]]  # the serial blocks delivered, inclusive ranges
    side: Side
    order_id: int
    fee: str
    net_cash: str  # what this side's cash moved by, fee included


class CashReport(_Report, frozen=True, tag="cash"):
    seq: int
    status: CashStatus
    amount: str
    reason: RejectReason | UnsetType = UNSET
    # A transfer's other partition, and the seq of its request in the source partition's log: together
    # with the source they name the transfer, in both partitions' reports (docs/protocol.md, "Partitions").
    partition: int | UnsetType = UNSET
    transfer_seq: int | UnsetType = UNSET


class RegistryReport(_Report, frozen=True, tag="registry"):
    """A registry outcome; `event` says which, and which of the optional fields it carries."""

    event: RegistryEventKind
    seq: int
    client_order_id: str | UnsetType = UNSET
    instrument: str | UnsetType = UNSET
    quantity: int | UnsetType = UNSET
    serials: list[str] | UnsetType = UNSET  # serial labels
    report_id: str | UnsetType = UNSET
    project: str | UnsetType = UNSET
    vintage: int | UnsetType = UNSET
    tonnes: int | UnsetType = UNSET
    action: str | UnsetType = UNSET
    reason: RejectReason | UnsetType = UNSET
    certificate: dict[str, Any] | UnsetType = UNSET  # see shared/domain/certificates.certificate
    label_id: str | UnsetType = UNSET
    product: str | UnsetType = UNSET
    total_grams: int | UnsetType = UNSET
    claim_id: str | UnsetType = UNSET
    units: int | UnsetType = UNSET
    required_tonnes: int | UnsetType = UNSET
    certificates: list[str] | UnsetType = UNSET
    stage: str | UnsetType = UNSET
    factor: str | UnsetType = UNSET
    grams: int | UnsetType = UNSET


class ComplianceReport(_Report, frozen=True, tag="compliance"):
    """A compliance outcome for one scheme and year; `event` says which, and which fields it carries."""

    event: ComplianceEventKind
    seq: int
    scheme: str
    year: int
    client_order_id: str | UnsetType = UNSET
    instrument: str | UnsetType = UNSET
    quantity: int | UnsetType = UNSET
    serials: list[str] | UnsetType = UNSET  # serial labels
    entity: str | UnsetType = UNSET
    tonnes: int | UnsetType = UNSET  # verified emissions
    offset: bool | UnsetType = UNSET  # surrendered offsets (true) or allowances
    action: str | UnsetType = UNSET
    reason: RejectReason | UnsetType = UNSET
    certificate: dict[str, Any] | UnsetType = UNSET  # see shared/domain/compliance.surrender_certificate
    obligation: int | UnsetType = UNSET
    allowances: int | UnsetType = UNSET
    offsets: int | UnsetType = UNSET
    shortfall: int | UnsetType = UNSET
    penalty: str | UnsetType = UNSET  # CNY
    deduction: int | UnsetType = UNSET  # tonnes added to next year's obligation


class MassCancelReport(_Report, frozen=True, tag="mass_cancel"):
    """A mass cancel is done: each order it cancelled was reported before (`cancelled`, under the mass
    cancel's client order id); `cancelled` counts them."""

    seq: int
    client_order_id: str
    instrument: str | None  # None: every instrument
    side: Side | None  # None: both sides
    cancelled: int


class HoldingView(msgspec.Struct, frozen=True):
    instrument: str
    held: int  # tonnes
    frozen: int  # frozen by open sells and retirements under way
    free: int  # what you can sell or retire now


class BalancesReport(_Report, frozen=True, tag="balances"):
    """Your cash and holdings after every log entry before `as_of` (the query's seq): every report
    about those entries came before this one."""

    seq: int
    client_order_id: str
    as_of: int
    cash: str
    frozen_cash: str  # frozen by open buys and trades not yet settled
    free_cash: str
    holdings: list[HoldingView]


class OrderView(msgspec.Struct, frozen=True):
    order_id: int
    client_order_id: str
    instrument: str
    side: Side
    price: str | None  # None for a market order
    quantity: int
    cum_qty: int
    leaves_qty: int
    ord_status: OrdStatus


class OpenOrdersReport(_Report, frozen=True, tag="open_orders"):
    """Your open orders (at most 200, by order id) as of `as_of`; `more`: ask again with
    `after_order_id` = the last order id here."""

    seq: int
    client_order_id: str
    as_of: int
    orders: list[OrderView]
    more: bool


class KeyReport(_Report, frozen=True, tag="key"):
    """Your signing key was rotated: sign with the new one (`fingerprint` names it) from now on; the
    older ones stay valid until `previous_valid_until_ns`."""

    seq: int
    key_id: str
    fingerprint: str
    previous_valid_until_ns: int
    requested_by: str


class TradeReport(_Report, frozen=True, tag="trade"):
    """One trade on the public tape (no participants)."""

    seq: int
    trade_id: int
    instrument: str
    price: str
    quantity: int
    aggressor: Side


DEPTH_LEVELS = 10  # price levels per side in the published view


class DepthView(msgspec.Struct, frozen=True):
    """One book's L2 view (the `md:depth:<instrument>` string): best levels first, [price, tonnes]."""

    instrument: str
    halted: bool
    bids: list[tuple[str, int]]
    asks: list[tuple[str, int]]


Report = (
    ExecutionReport
    | SettlementReport
    | CashReport
    | RegistryReport
    | ComplianceReport
    | KeyReport
    | MassCancelReport
    | BalancesReport
    | OpenOrdersReport
    | TradeReport
)

_encoder = msgspec.json.Encoder()


def encode_report(report: Report | DepthView) -> bytes:
    return _encoder.encode(report)
