"""Random registry sessions through the real cores: after every step, issued = held + frozen + retired +
cancelled + buffer per project and vintage, no serial is in two states or accounts, a retired serial
never trades again, and a sell verified under the current eligibility window delivers eligible serials
only, however the window moves between steps."""

from __future__ import annotations

import hashlib
import itertools

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from services.cli.readmodel import ExchangeState
from services.cli.registry_view import registry_rows, serial_states
from shared.attestation import new_verifier_key, sign_report
from shared.domain.codec import Event, event_type
from shared.domain.eligibility import split_eligibility
from shared.domain.events import InstrumentListed
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.integrity import VerifierAccredited
from shared.domain.ledger import (
    BUFFER_ACCOUNT,
    CancelSubmitted,
    CashDeposited,
    OrderSubmitted,
    OrderVerified,
    ParticipantRegistered,
    SerialRange,
    TradeSettled,
)
from shared.domain.registry import (
    CreditsRetired,
    EligibilityChanged,
    IssuanceRequested,
    ProjectRegistered,
    RetirementKind,
    RetirementRequested,
    VerificationAccepted,
    VerificationSubmitted,
)
from shared.domain.values import OrderType, Side, TimeInForce
from tests.support import SEALED_KEY

CCER = "CCER-T"
TRADERS = ("p0", "p1", "p2")
VERIFIER = "v0"
HASH = hashlib.sha256(b"report").hexdigest()
PRIVATE, PUBLIC = new_verifier_key()
EPOCH_NS = 1_780_000_000_000_000_000  # 2026-05-28: entries are stamped from here, so 2022-23 is over


class Log:
    """An in-memory log with the real cores as followers: each entry is fed, in log order, to every
    core that reads it and did not write it; their answers are appended at the end."""

    def __init__(self) -> None:
        self.state = ExchangeState()
        self.entries: list[tuple[str, Event]] = []
        self.fed = 0
        self.retired: set[int] = set()
        self.traded_after_retirement: list[int] = []
        self.verified_at: dict[int, int] = {}  # order id -> seq of its OrderVerified
        self.window_changed_at = 0
        self.ineligible_deliveries: list[tuple[int, SerialRange]] = []

    def append(self, producer: str, event: Event) -> None:
        self.entries.append((producer, event))
        while self.fed < len(self.entries):
            self.fed += 1
            self._feed(self.fed, *self.entries[self.fed - 1])

    def _feed(self, seq: int, producer: str, event: Event) -> None:
        self._watch(event)
        self._watch_eligibility(seq, event)
        cores = tuple(self.state.cores.values())
        for core in cores:
            if core.name != producer and event_type(event) in core.inputs:
                answers = core.decide(seq, EPOCH_NS + seq, event)
                # A type a core answers must wake it (Processor.answers_to), else the answer waits.
                assert not answers or event_type(event) in core.answers_to, (core.name, event_type(event))
                self.entries.extend((core.name, answer) for answer in answers)

    def _watch(self, event: Event) -> None:
        if isinstance(event, CreditsRetired):
            self.retired.update(s for r in event.serials for s in range(r.start, r.end + 1))
        elif isinstance(event, TradeSettled):
            delivered = {s for r in event.serials for s in range(r.start, r.end + 1)}
            self.traded_after_retirement.extend(sorted(delivered & self.retired))

    def _watch_eligibility(self, seq: int, event: Event) -> None:
        """Sells verified after the last window change deliver only what that window accepts."""
        if isinstance(event, OrderVerified):
            self.verified_at[event.order_id] = seq
        elif isinstance(event, EligibilityChanged):
            self.window_changed_at = seq
        elif isinstance(event, TradeSettled):
            if self.verified_at.get(event.sell_order_id, 0) < self.window_changed_at:
                return  # resting when the window changed: grandfathered
            registry = self.state.registry.state
            inst, origins = registry.instruments[event.instrument], registry.origins.blocks[event.instrument]
            self.ineligible_deliveries.extend(
                (event.trade_id, piece)
                for block in event.serials
                for piece, ok in split_eligibility(inst, origins, block)
                if not ok
            )


class RegistrySession(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.log = Log()
        self.order_ids = itertools.count(1)
        self.cids = itertools.count(1)
        self.open: list[tuple[str, str]] = []

    def op(self, event: Event) -> None:
        self.log.append("intake", event)

    def cid(self) -> str:
        return f"c{next(self.cids)}"

    @initialize(buffer_bps=st.sampled_from([0, 1000, 2500]))
    def setup(self, buffer_bps: int) -> None:
        inst = Instrument(
            symbol=CCER,
            kind=InstrumentKind.OFFSET,
            standard="CCER",
            registry="CCER",
            vintage=2024,
            reference_price=7_800,
        )
        self.op(InstrumentListed(instrument=inst))
        for p in (*TRADERS, VERIFIER):
            roles = ("verifier",) if p == VERIFIER else ("trader",)
            self.op(ParticipantRegistered(participant=p, name=p, key=SEALED_KEY, roles=roles))
            self.op(CashDeposited(participant=p, amount=100_000_000))
        accreditation = VerifierAccredited(
            verifier=VERIFIER, scopes=("emissions", "forestry"), expires="2030-12-31", public_key=PUBLIC
        )
        self.op(accreditation)
        for n, owner in enumerate(("p0", "p1")):
            self.op(
                ProjectRegistered(
                    project=f"P{n}",
                    owner=owner,
                    instrument=CCER,
                    standard="CCER",
                    methodology="m",
                    country="CN",
                    project_type="afforestation",
                    buffer_bps=buffer_bps,
                    sector="forestry",
                )
            )
            for vintage in (2022, 2023):
                self.op(
                    VerificationSubmitted(
                        participant=VERIFIER,
                        client_order_id=self.cid(),
                        project=f"P{n}",
                        vintage=vintage,
                        period_start=f"{vintage}-01-01",
                        period_end=f"{vintage}-12-31",
                        tonnes=500,
                        report_hash=HASH,
                        signature=sign_report(
                            PRIVATE, f"P{n}", f"{vintage}-01-01", f"{vintage}-12-31", vintage, 500, HASH
                        ),
                    )
                )
        self.reports = [e.report_id for _, e in self.log.entries if isinstance(e, VerificationAccepted)]
        assert len(self.reports) == 4
        for report in range(4):  # holdings of both vintages from the start, so sells have credits
            self.issue(report, 150)

    @rule(report=st.integers(0, 3), tonnes=st.integers(1, 300))
    def issue(self, report: int, tonnes: int) -> None:
        self.op(
            IssuanceRequested(
                participant="operator",
                client_order_id=self.cid(),
                report_id=self.reports[report],
                tonnes=tonnes,
            )
        )

    @rule(
        who=st.sampled_from(TRADERS),
        side=st.sampled_from(Side),
        price=st.integers(7_790, 7_810),
        qty=st.integers(1, 80),
    )
    def order(self, who: str, side: Side, price: int, qty: int) -> None:
        cid = self.cid()
        self.op(
            OrderSubmitted(
                order_id=next(self.order_ids),
                participant=who,
                client_order_id=cid,
                instrument=CCER,
                side=side,
                order_type=OrderType.LIMIT,
                price=price,
                quantity=qty,
                time_in_force=TimeInForce.GTC,
            )
        )
        self.open.append((who, cid))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if self.open:
            who, orig = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
            self.op(
                CancelSubmitted(
                    participant=who, client_order_id=self.cid(), instrument=CCER, orig_client_order_id=orig
                )
            )

    @rule(who=st.sampled_from((*TRADERS, BUFFER_ACCOUNT)), qty=st.integers(1, 120), cancel=st.booleans())
    def retire(self, who: str, qty: int, cancel: bool) -> None:
        kind = RetirementKind.CANCEL if cancel or who == BUFFER_ACCOUNT else RetirementKind.RETIRE
        self.op(
            RetirementRequested(
                participant=who,
                client_order_id=self.cid(),
                instrument=CCER,
                quantity=qty,
                beneficiary="b",
                reason="r",
                kind=kind,
            )
        )

    @rule(
        window=st.sampled_from([(0, 0), (2022, 0), (2023, 0), (0, 2022), (2023, 2023)]),
        standards=st.sampled_from([(), ("CCER",), ("VCS",)]),
    )
    def set_eligibility(self, window: tuple[int, int], standards: tuple[str, ...]) -> None:
        self.op(
            EligibilityChanged(
                instrument=CCER, eligible_standards=standards, min_vintage=window[0], max_vintage=window[1]
            )
        )

    @invariant()
    def every_tonne_is_in_exactly_one_state(self) -> None:
        state = self.log.state
        serial_states(state)  # raises on a serial in two states or accounts, or none
        for row in registry_rows(state):
            assert row.issued == row.accounted, row
        state.settlement.check_invariants()
        state.verification.check_invariants()

    @invariant()
    def a_retired_serial_never_trades_again(self) -> None:
        assert self.log.traded_after_retirement == []

    @invariant()
    def sells_deliver_only_eligible_serials(self) -> None:
        assert self.log.ineligible_deliveries == []


TestRegistrySession = RegistrySession.TestCase
TestRegistrySession.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
