"""What an authenticated command asks for, checked against what intake knows: the events to append, or
Refused with the reason the sender gets. Pure: the state is passed in, nothing is written here."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from services.intake.compliance import (
    COMPLIANCE_OPERATOR_ACTIONS,
    COMPLIANCE_REGISTRY_ACTIONS,
    compliance_events,
)
from services.intake.footprints import FootprintBook
from services.intake.integrity import ProjectSites, screened
from services.intake.operator import operator_event, transfer_event
from services.intake.registry import registry_event, retirement_event
from shared.domain.base import Refused
from shared.domain.codec import Event
from shared.domain.compliance import SchemeDefined
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.integrity import ReversalReported
from shared.domain.labels import FactorTablePublished
from shared.domain.ledger import (
    BUFFER_ACCOUNT,
    CancelSubmitted,
    CashDeposited,
    CreditsIssued,
    HaltRequested,
    LimitsSet,
    MassCancelSubmitted,
    OrderSubmitted,
    ParticipantRegistered,
    ReplaceSubmitted,
    ResumeRequested,
    TradingDayClosed,
    WithdrawalRequested,
)
from shared.domain.queries import QuerySubmitted
from shared.domain.reasons import Reason
from shared.domain.registry import (
    EligibilityChanged,
    IssuanceRequested,
    ProjectRegistered,
    RetirementRequested,
)
from shared.domain.rules import price_in_fen, price_problem, quantity_problem
from shared.domain.values import OrderType
from shared.protocol import (
    CancelOrderMsg,
    ClientMessage,
    MassCancelMsg,
    NewOrderMsg,
    OperatorMessage,
    QueryKind,
    QueryMsg,
    RegistryMsg,
    ReplaceOrderMsg,
    RetireCreditsMsg,
    SurrenderMsg,
    TransferCashMsg,
)

__all__ = ["IntakeState", "validate"]


@dataclass
class IntakeState:
    """What intake's checks need: a projection of intake's own events."""

    participants: set[str] = field(default_factory=set)
    permitted: dict[str, frozenset[str]] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)
    used_ids: dict[str, set[str]] = field(default_factory=dict)
    order_ids: dict[str, set[str]] = field(default_factory=dict)  # client ids that named an order
    issued: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    orders_submitted: int = 0
    projects: set[str] = field(default_factory=set)
    products: dict[str, str] = field(default_factory=dict)  # product -> owner
    sites: ProjectSites = field(default_factory=ProjectSites)  # projects' locations and origins
    schemes: dict[str, SchemeDefined] = field(default_factory=dict)  # compliance schemes by id
    footprints: FootprintBook = field(default_factory=FootprintBook)  # factor tables and activities

    def use(self, participant: str, client_order_id: str, *, names_order: bool = False) -> None:
        self.used_ids.setdefault(participant, set()).add(client_order_id)
        if names_order:
            self.order_ids.setdefault(participant, set()).add(client_order_id)


def validate(state: IntakeState, msg: ClientMessage) -> list[Event]:
    """The events an authenticated client or operator command becomes (rotate_key is intake's own)."""
    if isinstance(msg, NewOrderMsg):
        return [_new_order(state, msg)]
    if isinstance(msg, SurrenderMsg) or (
        isinstance(msg, OperatorMessage | RegistryMsg)
        and msg.action in COMPLIANCE_OPERATOR_ACTIONS | COMPLIANCE_REGISTRY_ACTIONS
    ):
        return _compliance(state, msg)
    if isinstance(msg, OperatorMessage):
        event = operator_event(msg.action, msg.args)
        if isinstance(event, IssuanceRequested | RetirementRequested | ReversalReported):
            event = msgspec.structs.replace(event, client_order_id=msg.client_order_id)
        _check_operator(state, event)
        return screened(state.sites, state.participants, event)
    if isinstance(msg, TransferCashMsg):
        return [transfer_event(msg.participant, msg.amount, msg.to_partition)]
    if isinstance(msg, RetireCreditsMsg):
        _instrument(state, msg.instrument, msg.participant)
        return [retirement_event(msg)]
    if isinstance(msg, RegistryMsg):
        return [registry_event(msg, state.products, state.footprints)]
    if isinstance(msg, MassCancelMsg | QueryMsg):
        return [_about_own_orders(state, msg)]
    assert isinstance(msg, CancelOrderMsg | ReplaceOrderMsg), type(msg)
    inst = _instrument(state, msg.instrument, msg.participant)
    if msg.orig_client_order_id not in state.order_ids.get(msg.participant, ()):
        raise Refused(Reason.UNKNOWN_ORDER, f"no order {msg.orig_client_order_id!r} of yours")
    if isinstance(msg, CancelOrderMsg):
        return [CancelSubmitted(
            participant=msg.participant, client_order_id=msg.client_order_id, instrument=msg.instrument,
            orig_client_order_id=msg.orig_client_order_id,
        )]  # fmt: skip
    price = price_in_fen(msg.price)
    _check(price_problem(inst, price) or quantity_problem(inst, msg.quantity))
    return [ReplaceSubmitted(
        participant=msg.participant, client_order_id=msg.client_order_id, instrument=msg.instrument,
        orig_client_order_id=msg.orig_client_order_id, price=price, quantity=msg.quantity,
    )]  # fmt: skip


def _compliance(state: IntakeState, msg: OperatorMessage | RegistryMsg | SurrenderMsg) -> list[Event]:
    if isinstance(msg, RegistryMsg) and msg.action not in COMPLIANCE_REGISTRY_ACTIONS:
        raise Refused(Reason.NOT_PERMITTED, f"{msg.action} is an operator action")
    if isinstance(msg, OperatorMessage) and msg.action not in COMPLIANCE_OPERATOR_ACTIONS:
        raise Refused(Reason.NOT_PERMITTED, f"{msg.action} is a verifier's action")
    if isinstance(msg, SurrenderMsg):
        _instrument(state, msg.instrument, msg.participant)
    events = compliance_events(msg, state.instruments, state.schemes)
    for event in events:
        if isinstance(event, CreditsIssued):
            _check_operator(state, event)
    return events


def _about_own_orders(state: IntakeState, msg: MassCancelMsg | QueryMsg) -> Event:
    if msg.instrument:
        _instrument(state, msg.instrument, msg.participant)
    if isinstance(msg, MassCancelMsg):
        return MassCancelSubmitted(participant=msg.participant, client_order_id=msg.client_order_id,
                                   instrument=msg.instrument, side=msg.side)  # fmt: skip
    if msg.query is QueryKind.ORDER_STATUS and not msg.orig_client_order_id:
        raise Refused(Reason.MALFORMED, "order_status needs the orig_client_order_id of the order")
    if msg.after_order_id < 0:
        raise Refused(Reason.MALFORMED, "after_order_id must be >= 0")
    return QuerySubmitted(
        participant=msg.participant, client_order_id=msg.client_order_id, query=msg.query.value,
        instrument=msg.instrument, orig_client_order_id=msg.orig_client_order_id,
        after_order_id=msg.after_order_id,
    )  # fmt: skip


def _new_order(state: IntakeState, msg: NewOrderMsg) -> Event:
    inst = _instrument(state, msg.instrument, msg.participant)
    _check(quantity_problem(inst, msg.quantity))
    if msg.order_type is OrderType.LIMIT:
        if msg.price is None:
            raise Refused(Reason.MALFORMED, "a limit order needs a price")
        price = price_in_fen(msg.price)
        _check(price_problem(inst, price))
    elif msg.price is not None:
        raise Refused(Reason.MALFORMED, "a market order takes no price")
    else:
        price = 0
    return OrderSubmitted(
        order_id=state.orders_submitted + 1,
        participant=msg.participant,
        client_order_id=msg.client_order_id,
        instrument=msg.instrument,
        side=msg.side,
        order_type=msg.order_type,
        price=price,
        quantity=msg.quantity,
        time_in_force=msg.time_in_force,
    )


def _instrument(state: IntakeState, symbol: str, participant: str) -> Instrument:
    inst = state.instruments.get(symbol)
    if inst is None:
        raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {symbol!r}")
    permitted = state.permitted.get(participant)
    if permitted and symbol not in permitted:
        raise Refused(Reason.NOT_PERMITTED, f"{participant} is not enabled for {symbol}")
    return inst


def _check(problem: tuple[Reason, str] | None) -> None:
    if problem is not None:
        raise Refused(*problem)


def _check_operator(state: IntakeState, event: Event) -> None:
    if isinstance(event, FactorTablePublished):
        state.footprints.check_new(event)
    if isinstance(event, ProjectRegistered | EligibilityChanged | RetirementRequested):
        _check_registry(state, event)
        return
    if isinstance(event, CreditsIssued):
        inst = state.instruments.get(event.instrument)
        if inst is None:
            raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {event.instrument!r}")
        if inst.kind is InstrumentKind.OFFSET:
            # Offsets exist only against a verification report; the registry numbers them, so
            # operator blocks could also collide with the serials it allocates.
            raise Refused(Reason.UNVERIFIED_ISSUANCE, f"{event.instrument} is an offset: use issue_verified")
        start, end = event.serials.start, event.serials.end
        if any(s <= end and start <= e for s, e in state.issued.get(event.instrument, ())):
            raise Refused(Reason.NOT_PERMITTED, f"serials {start}-{end} overlap an issued block")
    if isinstance(event, HaltRequested | ResumeRequested | TradingDayClosed) and (
        event.instrument not in state.instruments
    ):
        raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {event.instrument!r}")
    if isinstance(event, ParticipantRegistered) and event.participant in state.participants:
        raise Refused(Reason.NOT_PERMITTED, f"participant {event.participant!r} already exists")
    if (
        isinstance(event, CashDeposited | WithdrawalRequested | CreditsIssued | LimitsSet)
        and event.participant not in state.participants
    ):
        raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {event.participant!r}")


def _check_registry(
    state: IntakeState, event: ProjectRegistered | EligibilityChanged | RetirementRequested
) -> None:
    inst = state.instruments.get(event.instrument)
    if inst is None:
        raise Refused(Reason.UNKNOWN_INSTRUMENT, f"no instrument {event.instrument!r}")
    if isinstance(event, RetirementRequested):
        if event.participant not in state.participants and event.participant != BUFFER_ACCOUNT:
            raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {event.participant!r}")
        return
    if isinstance(event, EligibilityChanged):
        return
    if inst.kind is not InstrumentKind.OFFSET:
        raise Refused(Reason.NOT_PERMITTED, f"{inst.symbol} is not an offset instrument")
    if event.owner not in state.participants:
        raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {event.owner!r}")
    if event.project in state.projects:
        raise Refused(Reason.DUPLICATE_PROJECT, f"project {event.project!r} is already registered")
    if not inst.accepts_standard(event.standard):
        raise Refused(Reason.INELIGIBLE_CREDITS, f"{inst.symbol} does not pool {event.standard} credits")
