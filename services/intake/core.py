"""Intake's pure core: decode, authenticate and validate client commands; a projection of its own events."""

from __future__ import annotations

import hmac
import re
from typing import Any

import msgspec

from services.intake.operator import operator_event
from services.intake.registry import registry_event, retirement_event
from shared.domain.base import Refused
from shared.domain.codec import Event
from shared.domain.events import InstrumentListed
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.ledger import (
    BUFFER_ACCOUNT,
    OPERATOR,
    CancelSubmitted,
    CreditsIssued,
    OrderSubmitted,
    ParticipantRegistered,
    ReplaceSubmitted,
)
from shared.domain.reasons import Reason
from shared.domain.registry import (
    EligibilityChanged,
    IssuanceRequested,
    ProductRegistered,
    ProjectRegistered,
    RetirementKind,
    RetirementRequested,
)
from shared.domain.rules import price_problem, quantity_problem
from shared.domain.values import OrderType, price_to_fen
from shared.protocol import (
    MAX_CLIENT_ID_LEN,
    CancelOrderMsg,
    ClientMessage,
    NewOrderMsg,
    OperatorMessage,
    RegistryMsg,
    ReplaceOrderMsg,
    RetireCreditsMsg,
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
        self.projects: set[str] = set()
        self.products: dict[str, str] = {}  # product -> owner

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
        else:
            self._evolve_registry(event)

    def _evolve_registry(self, event: Event) -> None:
        if isinstance(event, ProjectRegistered):
            self.projects.add(event.project)
        elif isinstance(event, ProductRegistered):
            self.products[event.product] = event.participant
        elif isinstance(event, EligibilityChanged) and event.instrument in self.instruments:
            self.instruments[event.instrument] = msgspec.structs.replace(
                self.instruments[event.instrument],
                eligible_standards=event.eligible_standards,
                min_vintage=event.min_vintage,
                max_vintage=event.max_vintage,
            )
        # Client registry requests use up the sender's client id; operator ones are the operator's.
        operators = isinstance(event, IssuanceRequested) or (
            isinstance(event, RetirementRequested) and event.kind is RetirementKind.CANCEL
        )
        if operators:
            self._use(OPERATOR, getattr(event, "client_order_id"), names_order=False)  # noqa: B009
        elif (cid := getattr(event, "client_order_id", None)) is not None:
            self._use(getattr(event, "participant"), cid, names_order=False)  # noqa: B009

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
                raise Refused(Reason.MALFORMED, f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
            raw = _any_json.decode(data)
            if not isinstance(raw, dict):
                raise Refused(Reason.MALFORMED, "data must be a JSON object")
            msg = self._authenticate(raw)
            events = self._validate(msg)
        except Refused as refused:
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
            raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {participant!r}")
        sig = raw.get("sig")
        if not isinstance(sig, str) or not hmac.compare_digest(sig, sign(raw, secret)):
            raise Refused(Reason.BAD_SIGNATURE, "sig is not the HMAC-SHA256 of the canonical command")
        msg: ClientMessage = msgspec.convert(raw, ClientMessage)
        if isinstance(msg, OperatorMessage) != (participant == OPERATOR):
            raise Refused(Reason.NOT_PERMITTED, "operator actions are for the operator only")
        cid = msg.client_order_id
        if not _CLIENT_ID.fullmatch(cid):
            raise Refused(Reason.MALFORMED, "client_order_id must be 1-64 of [A-Za-z0-9_.:-]")
        if cid in self.used_ids.get(msg.participant, ()):
            raise Refused(Reason.DUPLICATE_CLIENT_ORDER_ID, f"client_order_id {cid!r} was already used")
        return msg

    def _validate(self, msg: ClientMessage) -> list[Event]:
        if isinstance(msg, NewOrderMsg):
            return [self._new_order(msg)]
        if isinstance(msg, OperatorMessage):
            event = operator_event(msg.action, msg.args)
            if isinstance(event, IssuanceRequested | RetirementRequested):
                event = msgspec.structs.replace(event, client_order_id=msg.client_order_id)
            self._check_operator(event)
            self._use(msg.participant, msg.client_order_id, names_order=False)
            return [event]
        if isinstance(msg, RetireCreditsMsg):
            self._instrument(msg.instrument, msg.participant)
            return [retirement_event(msg)]
        if isinstance(msg, RegistryMsg):
            return [registry_event(msg, self.products)]
        inst = self._instrument(msg.instrument, msg.participant)
        if msg.orig_client_order_id not in self.order_ids.get(msg.participant, ()):
            raise Refused(Reason.UNKNOWN_ORDER, f"no order {msg.orig_client_order_id!r} of yours")
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
        self._check(quantity_problem(inst, msg.quantity))
        if msg.order_type is OrderType.LIMIT:
            if msg.price is None:
                raise Refused(Reason.MALFORMED, "a limit order needs a price")
            price = price_to_fen(msg.price)
            self._check(price_problem(inst, price))
        elif msg.price is not None:
            raise Refused(Reason.MALFORMED, "a market order takes no price")
        else:
            price = 0
        return OrderSubmitted(
            order_id=self.orders_submitted + 1,
            participant=msg.participant,
            client_order_id=msg.client_order_id,
            instrument=msg.instrument,
            side=msg.side,
            order_type=msg.order_type,
            price=price,
            quantity=msg.quantity,
            time_in_force=msg.time_in_force,
        )

    def _instrument(self, symbol: str, participant: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {symbol!r}")
        permitted = self.permitted.get(participant)
        if permitted and symbol not in permitted:
            raise Refused(Reason.NOT_PERMITTED, f"{participant} is not enabled for {symbol}")
        return inst

    @staticmethod
    def _check(problem: tuple[Reason, str] | None) -> None:
        if problem is not None:
            raise Refused(*problem)

    def _check_operator(self, event: Event) -> None:
        if isinstance(event, ProjectRegistered | EligibilityChanged | RetirementRequested):
            self._check_registry(event)
            return
        if isinstance(event, CreditsIssued):
            inst = self.instruments.get(event.instrument)
            if inst is None:
                raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {event.instrument!r}")
            if inst.kind is InstrumentKind.OFFSET:
                # Offsets exist only against a verification report; the registry numbers them, so
                # operator blocks could also collide with the serials it allocates.
                raise Refused(
                    Reason.UNVERIFIED_ISSUANCE, f"{event.instrument} is an offset: use issue_verified"
                )
            start, end = event.serials.start, event.serials.end
            if any(s <= end and start <= e for s, e in self.issued.get(event.instrument, ())):
                raise Refused(Reason.NOT_PERMITTED, f"serials {start}-{end} overlap an issued block")
        if (
            hasattr(event, "participant")
            and not isinstance(event, ParticipantRegistered)
            and event.participant not in self.secrets
        ):
            raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {event.participant!r}")
        if isinstance(event, ParticipantRegistered) and event.participant in self.secrets:
            raise Refused(Reason.NOT_PERMITTED, f"participant {event.participant!r} already exists")

    def _check_registry(self, event: ProjectRegistered | EligibilityChanged | RetirementRequested) -> None:
        inst = self.instruments.get(event.instrument)
        if inst is None:
            raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {event.instrument!r}")
        if isinstance(event, RetirementRequested):
            if event.participant not in self.secrets and event.participant != BUFFER_ACCOUNT:
                raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {event.participant!r}")
            return
        if isinstance(event, EligibilityChanged):
            return
        if inst.kind is not InstrumentKind.OFFSET:
            raise Refused(Reason.NOT_PERMITTED, f"{inst.symbol} is not an offset instrument")
        if event.owner not in self.secrets:
            raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {event.owner!r}")
        if event.project in self.projects:
            raise Refused(Reason.DUPLICATE_PROJECT, f"project {event.project!r} is already registered")
        if not inst.accepts_standard(event.standard):
            raise Refused(Reason.INELIGIBLE_CREDITS, f"{inst.symbol} does not pool {event.standard} credits")

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
