"""Ledger events around the matching core: requests taken in, verification, settlement, operator facts."""

from __future__ import annotations

import msgspec

from shared.crypto import SealedSecret
from shared.domain.base import DomainEvent
from shared.domain.reasons import Reason
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = [
    "CancelSubmitted",
    "CashDeposited",
    "CashTransferredIn",
    "CashTransferredOut",
    "CommandRejected",
    "KeyRotated",
    "LimitsSet",
    "LogCheckpoint",
    "MassCancelSubmitted",
    "CashWithdrawn",
    "CreditsIssued",
    "HaltRequested",
    "LedgerEvent",
    "OrderSubmitted",
    "OrderVerified",
    "ParticipantRegistered",
    "ReplaceSubmitted",
    "ReplaceVerified",
    "ResumeRequested",
    "SerialRange",
    "TradeSettled",
    "TradingDayClosed",
    "WithdrawalRejected",
    "TransferRequested",
    "WithdrawalRequested",
    "BUFFER_ACCOUNT",
    "EXCHANGE_ACCOUNT",
    "OPERATOR",
]

EXCHANGE_ACCOUNT = "EXCHANGE"  # receives fees; a participant that never trades
BUFFER_ACCOUNT = "BUFFER"  # holds the buffer share of verified issuance; never trades
OPERATOR = "operator"  # signs operator commands


class SerialRange(msgspec.Struct, frozen=True, array_like=True):
    """Serial numbers start..end inclusive of one instrument's credits; one serial is one tonne."""

    start: int
    end: int

    @property
    def tonnes(self) -> int:
        return self.end - self.start + 1


# ---------------------------------------------------------------- operator facts (appended by intake)


class ParticipantRegistered(DomainEvent, frozen=True):
    participant: str
    name: str
    key: SealedSecret  # the HMAC key it signs with, sealed under the KEK: only intake can open it
    roles: tuple[str, ...] = ("trader",)
    instruments: tuple[str, ...] = ()  # instruments it may trade; empty = all


class KeyRotated(DomainEvent, frozen=True):
    """A participant's new signing key; its older keys stay valid until `previous_valid_until_ns`."""

    participant: str
    key: SealedSecret
    previous_valid_until_ns: int
    requested_by: str  # the operator, or the participant itself (signed with its old key)


class LimitsSet(DomainEvent, frozen=True):
    """The operator's limits for one participant (0: the exchange's default)."""

    participant: str
    commands_per_s: int = 0
    burst: int = 0
    max_open_orders: int = 0


class CommandRejected(DomainEvent, frozen=True):
    """An authenticated command intake refused: logged so its client order id is spent for good."""

    participant: str
    client_order_id: str
    command: str
    input_id: str  # the command's stream entry id
    reason: Reason
    text: str


class LogCheckpoint(DomainEvent, frozen=True):
    """The exchange's Ed25519 signature over `greenex checkpoint:<venue>:<seq>:<link hex>:<previous>`:
    anyone with the public key can check an exported log up to `seq` without trusting Redis or the
    operator."""

    venue: str
    seq: int
    link: str  # the chain link (hash) of entry `seq`, hex
    previous: int  # the seq the checkpoint before this one covers (0 for the first)
    public_key: str  # hex of the signing key's public half
    signature: str  # hex
    reason: str  # "interval" or "close_of_day"


class CashDeposited(DomainEvent, frozen=True):
    participant: str
    amount: int  # fen


class WithdrawalRequested(DomainEvent, frozen=True):
    participant: str
    amount: int  # fen


class TransferRequested(WithdrawalRequested, frozen=True):
    """Cash to move to another partition of the exchange (shared/partitions.py): decided like a
    withdrawal from this partition, by verification."""

    to_partition: int


class CreditsIssued(DomainEvent, frozen=True):
    """Credits of an instrument created into a participant's holding as one serial block.

    Allowances are issued by the operator (project "" and vintage 0); offsets only by the registry
    against an accepted verification report, which fills in where the tonnes come from.
    """

    participant: str
    instrument: str
    serials: SerialRange
    project: str = ""
    vintage: int = 0
    report_id: str = ""
    buffer: bool = False  # the project's share set aside in the BUFFER account against reversals
    standard: str = ""  # the project's registry standard (CCER, VCS ...), for serial labels


class HaltRequested(DomainEvent, frozen=True):
    instrument: str


class ResumeRequested(DomainEvent, frozen=True):
    instrument: str


class TradingDayClosed(DomainEvent, frozen=True):
    instrument: str


# ---------------------------------------------------------------- client requests (appended by intake)


class OrderSubmitted(DomainEvent, frozen=True):
    order_id: int  # assigned by intake: the count of orders submitted so far, plus one
    participant: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: OrderType
    price: int
    quantity: int
    time_in_force: TimeInForce


class CancelSubmitted(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    instrument: str
    orig_client_order_id: str


class MassCancelSubmitted(DomainEvent, frozen=True):
    """Cancel the participant's open orders: all, or those of one instrument and/or side."""

    participant: str
    client_order_id: str
    instrument: str = ""  # "" = every instrument
    side: Side | None = None  # None = both sides


class ReplaceSubmitted(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    instrument: str
    orig_client_order_id: str
    price: int
    quantity: int


# ---------------------------------------------------------------- verification


class OrderVerified(DomainEvent, frozen=True):
    """Pre-trade checks passed: cash (buy) or credits (sell) are frozen for the order."""

    order_id: int
    participant: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: OrderType
    price: int
    quantity: int
    time_in_force: TimeInForce
    reserved_cash: int  # fen frozen for a buy, price x qty plus the highest fee
    reserved_qty: int  # tonnes frozen for a sell


class ReplaceVerified(DomainEvent, frozen=True):
    participant: str
    client_order_id: str
    instrument: str
    orig_client_order_id: str
    order_id: int
    price: int
    quantity: int
    extra_cash: int  # additional fen frozen for the amendment
    extra_qty: int  # additional tonnes frozen


class CashWithdrawn(DomainEvent, frozen=True):
    participant: str
    amount: int


class CashTransferredOut(CashWithdrawn, frozen=True):
    """A transfer granted: the cash leaves this partition (a withdrawal here) and is in flight until the
    destination's `transfers` process logs the CashTransferredIn naming its request. `request_seq`: the
    TransferRequested's seq (this entry's causation too); with this partition, the transfer's id."""

    to_partition: int
    request_seq: int


class CashTransferredIn(CashDeposited, frozen=True):
    """The other half of a transfer: the cash arrives here (a deposit here). `from_partition` and
    `from_seq` (the request's seq there) name the transfer; its causation says so too."""

    from_partition: int
    from_seq: int


class WithdrawalRejected(DomainEvent, frozen=True):
    participant: str
    amount: int
    reason: Reason
    text: str


# ---------------------------------------------------------------- settlement


class TradeSettled(DomainEvent, frozen=True):
    """Delivery versus payment of one trade at T+0; fees go to the exchange account."""

    trade_id: int
    instrument: str
    price: int
    quantity: int
    buyer: str
    seller: str
    buy_order_id: int
    sell_order_id: int
    cash: int  # price x quantity, fen, buyer -> seller
    buyer_fee: int
    seller_fee: int
    serials: tuple[SerialRange, ...]  # blocks delivered seller -> buyer, first-in-first-out


LedgerEvent = (
    ParticipantRegistered
    | CashDeposited
    | WithdrawalRequested
    | TransferRequested
    | CreditsIssued
    | HaltRequested
    | ResumeRequested
    | TradingDayClosed
    | OrderSubmitted
    | CancelSubmitted
    | MassCancelSubmitted
    | ReplaceSubmitted
    | OrderVerified
    | ReplaceVerified
    | CashWithdrawn
    | CashTransferredOut
    | CashTransferredIn
    | WithdrawalRejected
    | TradeSettled
    | KeyRotated
    | LimitsSet
    | CommandRejected
    | LogCheckpoint
)
