"""Intake's pure core: decode, authenticate and validate client commands; a projection of its own events."""

from __future__ import annotations

import hmac
import re
from typing import Any

import msgspec

from services.intake.operator import operator_event
from shared.domain.codec import Event
from shared.domain.events import InstrumentListed
from shared.domain.instruments import Instrument
from shared.domain.ledger import (
    OPERATOR,
    CancelSubmitted,
    CreditsIssued,
    OrderSubmitted,
    ParticipantRegistered,
    ReplaceSubmitted,
)
from shared.domain.reasons import Reason
from shared.domain.rules import price_problem, quantity_problem
from shared.domain.values import OrderType, Side, TimeInForce, price_to_fen
from shared.protocol import (
    MAX_CLIENT_ID_LEN,
    CancelOrderMsg,
    ClientMessage,
    NewOrderMsg,
    OperatorMessage,
    ReplaceOrderMsg,
    sign,
)

__all__ = ["Intake", "Rejection"]

MAX_ENTRY_BYTES = 4096  # a real command is a few hundred bytes


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """A command refused at the edge; `participant` is set only when the report can be delivered."""

    participant: str | None
    client_order_id: str
    command: str
    reason: Reason
    text: str


class _RefusedError(Exception):
    def __init__(self, reason: Reason, text: str) -> None:
        super().__init__(text)
        self.reason, self.text = reason, text


_any_json = msgspec.json.Decoder()
_CLIENT_ID = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_CLIENT_ID_LEN}}}")


class Intake:
    """State: participants with their secrets, instruments, used client ids, issued serials, order count."""

    name = "intake"

    def __init__(self, operator_secret: str) -> None:
        self.secrets: dict[str, str] = {OPERATOR: operator_secret}
        self.permitted: dict[str, frozenset[str]] = {}
        self.instruments: dict[str, Instrument] = {}
        self.used_ids: dict[str, set[str]] = {}
        self.order_ids: dict[str, set[str]] = {}  # client ids that named an order (new or replace)
        self.issued: dict[str, list[tuple[int, int]]] = {}
        self.orders_submitted = 0

    # ---------------------------------------------------------------- evolve (own events from the log)

    def evolve(self, event: Event) -> None:
        if isinstance(event, OrderSubmitted):
            self.orders_submitted = max(self.orders_submitted, event.order_id)
            self._use(event.participant, event.client_order_id, names_order=True)
        elif isinstance(event, ReplaceSubmitted):
            self._use(event.participant, event.client_order_id, names_order=True)
        elif isinstance(event, CancelSubmitted):
            self._use(event.participant, event.client_order_id, names_order=False)
        elif isinstance(event, ParticipantRegistered):
            self.secrets[event.participant] = event.secret
            self.permitted[event.participant] = frozenset(event.instruments)
        elif isinstance(event, InstrumentListed):
            self.instruments[event.instrument.symbol] = event.instrument
        elif isinstance(event, CreditsIssued):
            self.issued.setdefault(event.instrument, []).append((event.serials.start, event.serials.end))

    def _use(self, participant: str, client_order_id: str, *, names_order: bool) -> None:
        self.used_ids.setdefault(participant, set()).add(client_order_id)
        if names_order:
            self.order_ids.setdefault(participant, set()).add(client_order_id)

    # ---------------------------------------------------------------- decide

    def decide(self, data: bytes) -> list[Event] | Rejection:
        """Turn one raw `data` field into the events to append, or a rejection; never raises."""
        raw: Any = None
        try:
            if len(data) > MAX_ENTRY_BYTES:
                raise _RefusedError(Reason.MALFORMED, f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
            raw = _any_json.decode(data)
            if not isinstance(raw, dict):
                raise _RefusedError(Reason.MALFORMED, "data must be a JSON object")
            msg = self._authenticate(raw)
            events = self._validate(msg)
        except _RefusedError as refused:
            return self._rejection(raw, refused.reason, refused.text)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return self._rejection(raw, Reason.MALFORMED, str(exc)[:200])
        for event in events:
            self.evolve(event)
        return events

    def _authenticate(self, raw: dict[str, Any]) -> ClientMessage:
        participant = raw.get("participant")
        secret = self.secrets.get(participant) if isinstance(participant, str) else None
        if secret is None:
            raise _RefusedError(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {participant!r}")
        sig = raw.get("sig")
        if not isinstance(sig, str) or not hmac.compare_digest(sig, sign(raw, secret)):
            raise _RefusedError(Reason.BAD_SIGNATURE, "sig is not the HMAC-SHA256 of the canonical command")
        msg: ClientMessage = msgspec.convert(raw, ClientMessage)
        if isinstance(msg, OperatorMessage) != (participant == OPERATOR):
            raise _RefusedError(Reason.NOT_PERMITTED, "operator actions are for the operator only")
        cid = msg.client_order_id
        if not _CLIENT_ID.fullmatch(cid):
            raise _RefusedError(Reason.MALFORMED, "client_order_id must be 1-64 of [A-Za-z0-9_.:-]")
        if cid in self.used_ids.get(msg.participant, ()):
            raise _RefusedError(Reason.DUPLICATE_CLIENT_ORDER_ID, f"client_order_id {cid!r} was already used")
        return msg

    def _validate(self, msg: ClientMessage) -> list[Event]:
        if isinstance(msg, NewOrderMsg):
            return [self._new_order(msg)]
        if isinstance(msg, OperatorMessage):
            event = operator_event(msg.action, msg.args)
            self._check_operator(event)
            self._use(msg.participant, msg.client_order_id, names_order=False)
            return [event]
        inst = self._instrument(msg.instrument, msg.participant)
        if msg.orig_client_order_id not in self.order_ids.get(msg.participant, ()):
            raise _RefusedError(Reason.UNKNOWN_ORDER, f"no order {msg.orig_client_order_id!r} of yours")
        if isinstance(msg, CancelOrderMsg):
            return [
                CancelSubmitted(
                    participant=msg.participant,
                    client_order_id=msg.client_order_id,
                    instrument=msg.instrument,
                    orig_client_order_id=msg.orig_client_order_id,
                )
            ]
        assert isinstance(msg, ReplaceOrderMsg)
        price = price_to_fen(msg.price)
        self._check(price_problem(inst, price) or quantity_problem(inst, msg.quantity))
        return [
            ReplaceSubmitted(
                participant=msg.participant,
                client_order_id=msg.client_order_id,
                instrument=msg.instrument,
                orig_client_order_id=msg.orig_client_order_id,
                price=price,
                quantity=msg.quantity,
            )
        ]

    def _new_order(self, msg: NewOrderMsg) -> Event:
        inst = self._instrument(msg.instrument, msg.participant)
        side, order_type, tif = Side(msg.side), OrderType(msg.order_type), TimeInForce(msg.time_in_force)
        self._check(quantity_problem(inst, msg.quantity))
        if order_type is OrderType.LIMIT:
            if msg.price is None:
                raise _RefusedError(Reason.MALFORMED, "a limit order needs a price")
            price = price_to_fen(msg.price)
            self._check(price_problem(inst, price))
        elif msg.price is not None:
            raise _RefusedError(Reason.MALFORMED, "a market order takes no price")
        else:
            price = 0
        return OrderSubmitted(
            order_id=self.orders_submitted + 1,
            participant=msg.participant,
            client_order_id=msg.client_order_id,
            instrument=msg.instrument,
            side=side,
            order_type=order_type,
            price=price,
            quantity=msg.quantity,
            time_in_force=tif,
        )

    def _instrument(self, symbol: str, participant: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise _RefusedError(Reason.UNKNOWN_INSTRUMENT, f"no instrument {symbol!r}")
        permitted = self.permitted.get(participant)
        if permitted and symbol not in permitted:
            raise _RefusedError(Reason.NOT_PERMITTED, f"{participant} is not enabled for {symbol}")
        return inst

    @staticmethod
    def _check(problem: tuple[Reason, str] | None) -> None:
        if problem is not None:
            raise _RefusedError(*problem)

    def _check_operator(self, event: Event) -> None:
        if isinstance(event, CreditsIssued):
            if event.instrument not in self.instruments:
                raise _RefusedError(Reason.UNKNOWN_INSTRUMENT, f"no instrument {event.instrument!r}")
            start, end = event.serials.start, event.serials.end
            if any(s <= end and start <= e for s, e in self.issued.get(event.instrument, ())):
                raise _RefusedError(Reason.NOT_PERMITTED, f"serials {start}-{end} overlap an issued block")
        if (
            hasattr(event, "participant")
            and not isinstance(event, ParticipantRegistered)
            and event.participant not in self.secrets
        ):
            raise _RefusedError(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {event.participant!r}")
        if isinstance(event, ParticipantRegistered) and event.participant in self.secrets:
            raise _RefusedError(Reason.NOT_PERMITTED, f"participant {event.participant!r} already exists")

    def _rejection(self, raw: Any, reason: Reason, text: str) -> Rejection:
        participant = raw.get("participant") if isinstance(raw, dict) else None
        cid = raw.get("client_order_id") if isinstance(raw, dict) else None
        command = raw.get("type") if isinstance(raw, dict) else None
        known = participant if isinstance(participant, str) and participant in self.secrets else None
        return Rejection(
            participant=known,
            client_order_id=cid if isinstance(cid, str) else "",
            command=command if isinstance(command, str) else "",
            reason=reason,
            text=text,
        )
