"""The verification core: pre-trade checks that freeze cash or credits until orders end or trades settle."""

from __future__ import annotations

import hashlib

from services.verification.answers import answer
from services.verification.compliance import COMPLIANCE_FOLDED, COMPLIANCE_REQUESTS, decide_compliance
from services.verification.evolve import evolve, order_unit
from services.verification.state import (
    OpenOrder,
    State,
    check_state,
    decode_state,
    encode_state,
    unit_reservation,
)
from shared.domain.codec import Event, tags
from shared.domain.differences import first_key_difference
from shared.domain.eligibility import accepts
from shared.domain.events import (
    InstrumentListed,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from shared.domain.ledger import (
    CashDeposited,
    CashTransferredIn,
    CashTransferredOut,
    CashWithdrawn,
    CreditsIssued,
    LimitsSet,
    OrderSubmitted,
    OrderVerified,
    ParticipantRegistered,
    ReplaceSubmitted,
    ReplaceVerified,
    TradeSettled,
    TransferRequested,
    WithdrawalRejected,
    WithdrawalRequested,
)
from shared.domain.queries import QuerySubmitted
from shared.domain.reasons import Reason
from shared.domain.registry import (
    CreditsRetired,
    EligibilityChanged,
    RetirementApproved,
    RetirementRejected,
    RetirementRequested,
    VerificationAccepted,
)
from shared.domain.values import Side

__all__ = ["DEFAULT_MAX_OPEN_ORDERS", "Verification"]

DEFAULT_MAX_OPEN_ORDERS = 10_000  # per participant, unless the operator set another (LimitsSet)

_Problem = tuple[Reason, str]


class Verification:
    """Pre-trade risk as a fold over the log; implements the runtime's Processor.

    A buy freezes fen per tonne at its limit (a market buy at today's band high) plus the highest fee; a
    sell freezes its tonnes. A fill moves its share of the reservation aside at execution and releases it
    when the trade settles, so available cash never looks higher than it is between the two; whatever an
    order still holds when it is cancelled, expires, is rejected or fills completely goes back then.
    """

    name = "verification"
    inputs = COMPLIANCE_FOLDED | COMPLIANCE_REQUESTS | tags(
        InstrumentListed,
        ParticipantRegistered,
        CashDeposited,
        CreditsIssued,
        OrderSubmitted,
        ReplaceSubmitted,
        WithdrawalRequested,
        TransferRequested,
        CashTransferredIn,
        OrderAccepted,
        OrderRejected,
        TradeExecuted,
        OrderCancelled,
        OrderExpired,
        OrderReplaced,
        TradeSettled,
        RetirementRequested,
        RetirementRejected,  # settlement's, when the blocks an approval selected are not held free
        CreditsRetired,
        EligibilityChanged,
        LimitsSet,
        QuerySubmitted,
        VerificationAccepted,
    )

    answers_to = COMPLIANCE_REQUESTS | tags(
        OrderSubmitted, ReplaceSubmitted, WithdrawalRequested, TransferRequested, RetirementRequested,
        QuerySubmitted,
    )

    def __init__(self, state: State | None = None) -> None:
        self.state = State() if state is None else state

    # ---------------------------------------------------------------- Processor

    def decide(self, seq: int, event_ns: int, event: Event) -> list[Event]:
        """Fold one log entry in; answer requests with a verdict already applied to the state."""
        match event:
            case OrderSubmitted():
                verdict: Event = self._decide_order(event)
            case ReplaceSubmitted():
                verdict = self._decide_replace(event)
            case WithdrawalRequested():
                verdict = self._decide_withdrawal(seq, event)
            case RetirementRequested():
                verdict = self._decide_retirement(seq, event)
            case QuerySubmitted():
                return [answer(self.state, seq, event)]  # changes nothing
            case _ if type(event).__name__ in COMPLIANCE_REQUESTS:
                answers = decide_compliance(self.state, seq, event_ns, event)
                for made in answers:
                    evolve(self.state, made)  # rejections change nothing
                return answers
            case _:
                evolve(self.state, event)
                return []
        # Only our own grants change state: our rejections never reach matching, so nothing answers them.
        if not isinstance(verdict, OrderRejected | WithdrawalRejected | RetirementRejected):
            evolve(self.state, verdict)
        return [verdict]

    def snapshot(self) -> bytes:
        return encode_state(self.state)

    def restore(self, data: bytes) -> None:
        self.state = decode_state(data)

    def digest(self) -> str:
        """Hex sha256 of the snapshot: equal digests mean equal states."""
        return hashlib.sha256(self.snapshot()).hexdigest()

    def first_difference(self, other: Verification) -> str | None:
        """The first account or open order where two verification states differ, for an operator."""
        accounts = self.state.accounts.keys() | other.state.accounts.keys()
        a = {p: self.account(p) for p in accounts}
        b = {p: other.account(p) for p in accounts}
        return first_key_difference(a, b, "account") or first_key_difference(
            self.state.orders, other.state.orders, "open order"
        )

    # ---------------------------------------------------------------- queries

    def account(self, participant: str) -> tuple[int, int, dict[str, tuple[int, int]]]:
        """(cash, frozen cash, {instrument: (tonnes held, tonnes frozen)}) of one participant."""
        account = self.state.accounts.get(participant)
        if account is None:
            return 0, 0, {}
        credits = {symbol: (h.held, h.frozen) for symbol, h in sorted(account.credits.items())}
        return account.cash, account.frozen_cash, credits

    def check_invariants(self) -> None:
        """Raise InvariantError if a balance is negative or frozen amounts differ from what orders hold."""
        check_state(self.state)

    # ---------------------------------------------------------------- decisions

    def _decide_order(self, sub: OrderSubmitted) -> OrderVerified | OrderRejected:
        problem = self._order_problem(sub)
        if problem is None:
            amount = sub.quantity * order_unit(self.state, sub)
            available = self._available(sub.participant, sub.instrument, sub.side)
            if amount > available:
                problem = _shortfall(sub.side, amount, available)
            elif sub.side is Side.SELL:
                problem = self._ineligible(sub.participant, sub.instrument, amount)
        if problem is not None:
            return OrderRejected(
                participant=sub.participant,
                client_order_id=sub.client_order_id,
                instrument=sub.instrument,
                command="new_order",
                reason=problem[0],
                text=problem[1],
                order_id=sub.order_id,
            )
        buy = sub.side is Side.BUY
        return OrderVerified(
            order_id=sub.order_id,
            participant=sub.participant,
            client_order_id=sub.client_order_id,
            instrument=sub.instrument,
            side=sub.side,
            order_type=sub.order_type,
            price=sub.price,
            quantity=sub.quantity,
            time_in_force=sub.time_in_force,
            reserved_cash=amount if buy else 0,
            reserved_qty=0 if buy else amount,
        )

    def _order_problem(self, sub: OrderSubmitted) -> _Problem | None:
        permitted = self.state.permissions.get(sub.participant)
        if permitted is None:
            return Reason.UNKNOWN_PARTICIPANT, f"participant {sub.participant!r} is not registered"
        if sub.instrument not in self.state.instruments:
            return Reason.UNKNOWN_INSTRUMENT, f"no instrument {sub.instrument!r}"
        if permitted and sub.instrument not in permitted:
            return Reason.NOT_PERMITTED, f"{sub.participant} may not trade {sub.instrument}"
        if problem := self._conflicted(sub.participant, sub.instrument):
            return problem
        limit = self.state.max_open_orders.get(sub.participant, DEFAULT_MAX_OPEN_ORDERS)
        if len(self.state.live_ids.get(sub.participant, ())) >= limit:
            return Reason.TOO_MANY_OPEN_ORDERS, f"{limit} orders are open already (the limit)"
        return None

    def _conflicted(self, participant: str, instrument: str) -> _Problem | None:
        """A verifier may not trade an instrument that pools a project it verified: pools mix projects,
        so the instrument, not the serial, is what its orders would trade."""
        if instrument in self.state.verified.get(participant, ()):
            return Reason.CONFLICT_OF_INTEREST, f"{participant} verified projects pooled in {instrument}"
        return None

    def _decide_replace(self, sub: ReplaceSubmitted) -> ReplaceVerified | OrderRejected:
        order_id = self.state.live_ids.get(sub.participant, {}).get(sub.orig_client_order_id, 0)
        order = self.state.orders.get(order_id)
        if order is None or order.instrument != sub.instrument:
            text = f"no open order {sub.orig_client_order_id!r} on {sub.instrument}"
            return _reject_replace(sub, 0, (Reason.UNKNOWN_ORDER, text))
        if problem := self._conflicted(sub.participant, sub.instrument):
            return _reject_replace(sub, order_id, problem)
        extra = _replace_extra(order, sub.price, sub.quantity)
        available = self._available(order.participant, order.instrument, order.side)
        if extra > available:
            return _reject_replace(sub, order_id, _shortfall(order.side, extra, available))
        if order.side is Side.SELL and extra:
            problem = self._ineligible(order.participant, order.instrument, extra)
            if problem is not None:
                return _reject_replace(sub, order_id, problem)
        buy = order.side is Side.BUY
        return ReplaceVerified(
            participant=sub.participant,
            client_order_id=sub.client_order_id,
            instrument=sub.instrument,
            orig_client_order_id=sub.orig_client_order_id,
            order_id=order_id,
            price=sub.price,
            quantity=sub.quantity,
            extra_cash=extra if buy else 0,
            extra_qty=0 if buy else extra,
        )

    def _decide_withdrawal(self, seq: int, req: WithdrawalRequested) -> CashWithdrawn | WithdrawalRejected:
        """A withdrawal, or a transfer to another partition (a withdrawal from this one)."""
        available = self._available_cash(req.participant)
        problem: _Problem | None = None
        if req.amount <= 0:
            problem = Reason.MALFORMED, f"withdrawal of {req.amount} fen must be positive"
        elif req.amount > available:
            problem = _shortfall(Side.BUY, req.amount, available)
        if problem is not None:
            return WithdrawalRejected(
                participant=req.participant, amount=req.amount, reason=problem[0], text=problem[1]
            )
        if isinstance(req, TransferRequested):
            return CashTransferredOut(
                participant=req.participant, amount=req.amount, to_partition=req.to_partition,
                request_seq=seq,
            )
        return CashWithdrawn(participant=req.participant, amount=req.amount)

    def _decide_retirement(
        self, seq: int, req: RetirementRequested
    ) -> RetirementApproved | RetirementRejected:
        """Retired (and cancelled) tonnes leave the holding, so retiring or selling them again finds
        them missing here: one check serves both 'insufficient' and 'already retired'."""
        available = self._available(req.participant, req.instrument, Side.SELL)
        if req.quantity <= 0 or req.quantity > available:
            return RetirementRejected(
                participant=req.participant, client_order_id=req.client_order_id,
                instrument=req.instrument, quantity=req.quantity, kind=req.kind,
                reason=Reason.INSUFFICIENT_CREDITS,
                text=f"needs {req.quantity} t, {available} t available",
            )  # fmt: skip
        return RetirementApproved(
            participant=req.participant, client_order_id=req.client_order_id, instrument=req.instrument,
            quantity=req.quantity, beneficiary=req.beneficiary, reason=req.reason, kind=req.kind,
            request_seq=seq, purpose=req.purpose, identifier=req.identifier, selection=req.selection,
            sell_claim=self._sell_claim(req.participant, req.instrument) if req.selection else 0,
        )  # fmt: skip

    def _sell_claim(self, participant: str, instrument: str) -> int:
        """Tonnes of the holding frozen for sells (open and unsettled), not for retirements."""
        account = self.state.accounts.get(participant)
        holding = account.credits.get(instrument) if account is not None else None
        retiring = sum(
            r.qty for r in self.state.retiring if (r.participant, r.instrument) == (participant, instrument)
        )
        return 0 if holding is None else holding.frozen - retiring

    def _available(self, participant: str, instrument: str, side: Side) -> int:
        """Fen (buy) or tonnes of the instrument (sell) not yet frozen."""
        if side is Side.BUY:
            return self._available_cash(participant)
        account = self.state.accounts.get(participant)
        holding = account.credits.get(instrument) if account is not None else None
        return 0 if holding is None else holding.held - holding.frozen

    def _ineligible(self, participant: str, instrument: str, quantity: int) -> _Problem | None:
        """Whether `quantity` more tonnes of sells would outrun the eligible tonnes of the holding.

        Settlement delivers sells from eligible blocks only, so what sells freeze is a claim on
        eligible tonnes: eligible held - frozen for sells must cover the new quantity. Retirements
        freeze too, but settlement retires ineligible blocks first, so theirs claim the rest.
        """
        account = self.state.accounts.get(participant)
        holding = account.credits.get(instrument) if account is not None else None
        if holding is None or quantity <= 0:
            return None  # nothing held passes the total check only for nothing, which matching refuses
        inst = self.state.instruments.get(instrument)
        excluded = sum(lot.tonnes for lot in holding.lots if not accepts(inst, lot.standard, lot.vintage))
        # A retirement of selected blocks may take eligible serials: count it as a claim on them.
        retiring = sum(
            r.qty
            for r in self.state.retiring
            if (r.participant, r.instrument) == (participant, instrument) and not r.selected
        )
        eligible = holding.held - excluded - (holding.frozen - retiring)
        if quantity <= eligible:
            return None
        return (
            Reason.INELIGIBLE_CREDITS,
            f"needs {quantity} t eligible in {instrument}, {max(eligible, 0)} t available "
            f"({excluded} t held are outside its eligibility window)",
        )

    def _available_cash(self, participant: str) -> int:
        account = self.state.accounts.get(participant)
        return 0 if account is None else account.cash - account.frozen_cash


def _replace_extra(order: OpenOrder, price: int, quantity: int) -> int:
    """What an amendment must freeze on top of what the order holds for its current terms.

    Fills at the old limit can still land before matching applies the amendment, so the new leaves are
    covered at the dearer of the old and new unit. Nonsense terms freeze nothing: matching rejects them.
    """
    leaves = quantity - order.cum
    if leaves <= 0 or price <= 0:
        return 0
    unit = max(order.unit, unit_reservation(order.side, price))
    held = order.reserved - order.pending_extra  # another amendment in flight may yet be rejected
    return max(0, leaves * unit - held)


def _reject_replace(sub: ReplaceSubmitted, order_id: int, problem: _Problem) -> OrderRejected:
    return OrderRejected(
        participant=sub.participant,
        client_order_id=sub.client_order_id,
        instrument=sub.instrument,
        command="replace_order",
        reason=problem[0],
        text=problem[1],
        order_id=order_id,
    )


def _shortfall(side: Side, needed: int, available: int) -> _Problem:
    if side is Side.BUY:
        return Reason.INSUFFICIENT_FUNDS, f"needs {needed} fen, {available} fen available"
    return Reason.INSUFFICIENT_CREDITS, f"needs {needed} t, {available} t available"
