"""The client contract: JSON commands on the sender's own stream (`<prefix>:in:<participant>`), signed
with HMAC-SHA256 over their canonical form, bound to one venue and to the moment they were sent."""

from __future__ import annotations

import enum
import hashlib
import hmac
from typing import Any

import msgspec
import rfc8785

from shared.crypto import BoxedSecret
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = [
    "MAX_CLIENT_ID_LEN",
    "MAX_QUANTITY",
    "CancelOrderMsg",
    "ClientMessage",
    "MassCancelMsg",
    "NewOrderMsg",
    "OperatorMessage",
    "QueryKind",
    "QueryMsg",
    "RegistryMsg",
    "ReplaceOrderMsg",
    "RetireCreditsMsg",
    "RotateKeyMsg",
    "SurrenderMsg",
    "TransferCashMsg",
    "rotate_key_context",
    "canonical_bytes",
    "sign",
    "signed",
]

MAX_CLIENT_ID_LEN = 64
MAX_QUANTITY = 1_000_000_000  # tonnes; larger values are rejected at the edge as malformed


class _Msg(msgspec.Struct, frozen=True, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    participant: str  # must be the owner of the stream the command arrives on
    venue: str  # the exchange it is meant for: a command signed for another venue is refused
    sent_ms: int  # Unix milliseconds when signed: refused outside the exchange's window around its clock
    sig: str  # hex HMAC-SHA256 of the canonical command (docs/protocol.md, "Signing"): required


class NewOrderMsg(_Msg, frozen=True, tag="new_order"):
    client_order_id: str
    instrument: str
    side: Side
    order_type: OrderType
    quantity: int
    price: str | None = None
    time_in_force: TimeInForce = TimeInForce.GTC


class CancelOrderMsg(_Msg, frozen=True, tag="cancel_order"):
    client_order_id: str
    instrument: str
    orig_client_order_id: str


class ReplaceOrderMsg(_Msg, frozen=True, tag="replace_order"):
    client_order_id: str
    instrument: str
    orig_client_order_id: str
    price: str
    quantity: int


class MassCancelMsg(_Msg, frozen=True, tag="mass_cancel"):
    """Cancel every open order of yours, or those of one instrument and/or side ("" = all)."""

    client_order_id: str
    instrument: str = ""
    side: Side | None = None


class QueryKind(enum.StrEnum):
    BALANCES = "balances"
    OPEN_ORDERS = "open_orders"
    ORDER_STATUS = "order_status"


class QueryMsg(_Msg, frozen=True, tag="query"):
    """Ask for your balances, your open orders (from `after_order_id` on, optionally of one
    instrument) or one open order's status (`orig_client_order_id`): answered on your report stream as
    of the query's place in the log."""

    client_order_id: str
    query: QueryKind
    instrument: str = ""
    orig_client_order_id: str = ""
    after_order_id: int = 0


class OperatorMessage(_Msg, frozen=True, tag="operator"):
    """An operator command: `action` names it, `args` carries its fields (validated by intake)."""

    client_order_id: str
    action: str
    args: dict[str, Any]


class RetireCreditsMsg(_Msg, frozen=True, tag="retire_credits"):
    """Retire `quantity` t of an instrument from your holding for `beneficiary`, for good, for a
    declared `purpose`; optionally only serials of `project`/`vintage`, or exactly `serials`."""

    client_order_id: str
    instrument: str
    quantity: int
    beneficiary: str
    reason: str = ""
    purpose: str = ""  # corporate_inventory, product_claim:<product>, compliance, voluntary
    identifier: str = ""  # your own reference for this retirement, printed on the certificate
    project: str = ""
    vintage: int = 0
    serials: list[tuple[int, int]] = []  # inclusive [start, end] ranges, together `quantity` t


class RegistryMsg(_Msg, frozen=True, tag="registry"):
    """A registry action (submit_verification, register_product, record_activity, issue_label,
    claim_neutral): `args` carries its fields (validated by intake, decided by the registry)."""

    client_order_id: str
    action: str
    args: dict[str, Any]


class RotateKeyMsg(_Msg, frozen=True, tag="rotate_key"):
    """Replace your signing key, signed with the current one: `new_key` is the new key sealed to the
    exchange's public box key (shared/crypto.seal_to_exchange, context `rotate_key_context`); the keys
    you hold now stay valid `overlap_s` seconds more."""

    client_order_id: str
    new_key: BoxedSecret
    overlap_s: int = 300


class SurrenderMsg(_Msg, frozen=True, tag="surrender"):
    """Surrender `quantity` t of an instrument from your holding against your obligation under `scheme`
    for compliance `year` (allowances, or offsets within the scheme's cap and rules)."""

    client_order_id: str
    scheme: str
    year: int
    instrument: str
    quantity: int


class TransferCashMsg(_Msg, frozen=True, tag="transfer_cash"):
    """Move `amount` CNY of your available cash to partition `to_partition` of the exchange (see
    docs/protocol.md, "Partitions"): answered by cash reports here, then in the destination partition."""

    client_order_id: str
    amount: str
    to_partition: int


ClientMessage = (
    NewOrderMsg
    | CancelOrderMsg
    | ReplaceOrderMsg
    | MassCancelMsg
    | QueryMsg
    | OperatorMessage
    | RetireCreditsMsg
    | RegistryMsg
    | RotateKeyMsg
    | SurrenderMsg
    | TransferCashMsg
)


def rotate_key_context(venue: str, participant: str, client_order_id: str) -> str:
    """What a rotated key is bound to when sealed to the exchange: this venue, sender and command."""
    return f"rotate_key:{venue}:{participant}:{client_order_id}"


def canonical_bytes(command: dict[str, Any]) -> bytes:
    """The signed form: the command without `sig`, canonicalized per RFC 8785 (JCS: keys sorted, no
    spaces, UTF-8, minimal escapes, numbers as ECMAScript writes them). For every command the protocol
    accepts (strings, and integers below 2^53) it is byte for byte what v1 signed, Python's
    `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`. A body JCS cannot write (a
    float NaN, an integer beyond 2^53) has no signed form: ValueError, refused as malformed."""
    body = {k: v for k, v in command.items() if k != "sig"}
    try:
        return rfc8785.dumps(body)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise ValueError(f"no canonical form (RFC 8785): {exc}") from exc


def sign(command: dict[str, Any], secret: str) -> str:
    return hmac.new(secret.encode(), canonical_bytes(command), hashlib.sha256).hexdigest()


def signed(command: dict[str, Any], secret: str) -> dict[str, Any]:
    """A copy of `command` carrying its signature, ready to XADD as `data`."""
    return {**command, "sig": sign(command, secret)}
