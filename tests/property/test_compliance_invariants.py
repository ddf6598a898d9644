"""Random registry sessions with compliance surrenders and reversals in the mix, through the real cores:
after every
step issued = held + frozen + retired + cancelled + buffer + surrendered per project and vintage, no
serial is in two states, surrendered serials never trade again, sells verified under the current window
still deliver eligible serials only, each account's surrendered tonnes are its certificates' tonnes,
and no account's offsets exceed the scheme's cap."""

from __future__ import annotations

import hashlib

import hypothesis
import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import initialize, invariant, rule

from services.verification.compliance_state import ComplianceAccount, account_key
from services.verification.core import Verification
from shared.domain.compliance import (
    AllowancesAllocated,
    CreditsSurrendered,
    EmissionsSubmitted,
    SchemeDefined,
    SurrenderRequested,
    offset_cap,
)
from shared.domain.events import InstrumentListed
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.integrity import ReversalReported
from shared.domain.ledger import BUFFER_ACCOUNT, OPERATOR, CreditsIssued, SerialRange, TradeSettled
from shared.domain.registry import RetirementKind, RetirementRequested
from shared.domain.values import Side
from tests.property.test_registry_invariants import CCER, TRADERS, VERIFIER, RegistrySession

SZEA = "SZEA-T"
HASH = hashlib.sha256(b"emissions").hexdigest()
EMISSIONS = 600
CAP_BPS = 1000


class ComplianceSession(RegistrySession):
    def __init__(self) -> None:
        super().__init__()
        self.next_serial = 1
        self.surrendered: set[int] = set()  # serials of CCER surrendered so far in the log
        self.seen = 0  # log entries looked at
        self.traded_after_surrender: list[int] = []

    @initialize(buffer_bps=st.sampled_from([0, 1000]), min_vintage=st.sampled_from([0, 2023]))
    def setup(self, buffer_bps: int, min_vintage: int = 0) -> None:  # replaces the registry's setup
        RegistrySession.setup(self, buffer_bps)
        allowance = Instrument(symbol=SZEA, kind=InstrumentKind.ALLOWANCE, standard="SZEA", registry="SZ",
                               vintage=2022, reference_price=5_000)  # fmt: skip
        self.op(InstrumentListed(instrument=allowance))
        self.op(SchemeDefined(
            scheme="SZ", name="pilot", allowance_instruments=(SZEA,), offset_instruments=(CCER,),
            offset_standards=("CCER",), offset_cap_bps=CAP_BPS, offset_min_vintage=min_vintage,
        ))  # fmt: skip
        # Offsets of another's project to surrender: p0 and p1 own P0 and P1, p2 owns none.
        for seller, buyer in (("p0", "p2"), ("p1", "p0"), ("p0", "p1")):
            RegistrySession.order(self, seller, Side.SELL, 7_800, 60)
            RegistrySession.order(self, buyer, Side.BUY, 7_800, 60)
        for who in TRADERS:
            for year in (2022, 2023):
                self.allocate(who, year, 150)
                self.op(EmissionsSubmitted(
                    participant=VERIFIER, client_order_id=self.cid(), entity=who, scheme="SZ", year=year,
                    tonnes=EMISSIONS, report_hash=HASH,
                ))  # fmt: skip

    def allocate(self, who: str, year: int, tonnes: int) -> None:
        serials = SerialRange(self.next_serial, self.next_serial + tonnes - 1)
        self.next_serial += tonnes
        self.op(AllowancesAllocated(participant=who, scheme="SZ", year=year, instrument=SZEA,
                                    serials=serials))  # fmt: skip
        self.op(CreditsIssued(participant=who, instrument=SZEA, serials=serials, vintage=year))

    @rule(
        who=st.sampled_from(TRADERS),
        instrument=st.sampled_from([CCER, SZEA]),
        qty=st.integers(1, 70),
        year=st.sampled_from([2022, 2023]),
    )
    def surrender(self, who: str, instrument: str, qty: int, year: int) -> None:
        self.op(SurrenderRequested(participant=who, client_order_id=self.cid(), scheme="SZ", year=year,
                                   instrument=instrument, quantity=qty))  # fmt: skip
        outcome = self.log.entries[-1][1]  # verification's answer, or settlement's surrender after it
        hypothesis.event(f"{instrument}: {getattr(outcome, 'reason', type(outcome).__name__)}")

    @rule(project=st.sampled_from(["P0", "P1"]), tonnes=st.integers(1, 80))
    def reversal(self, project: str, tonnes: int) -> None:
        """A loss on a project: intake logs it and, under the same id, the cancellation of as many tonnes
        of the pooled BUFFER (refused when the pool is short), as services/intake/integrity.py does."""
        cid = self.cid()
        self.op(ReversalReported(participant=OPERATOR, client_order_id=cid, project=project, instrument=CCER,
                                 tonnes=tonnes, description="fire"))  # fmt: skip
        self.op(RetirementRequested(participant=BUFFER_ACCOUNT, client_order_id=cid, instrument=CCER,
                                    quantity=tonnes, beneficiary="", reason=f"reversal of {project}: fire",
                                    kind=RetirementKind.CANCEL))  # fmt: skip
        outcome = self.log.entries[-1][1]
        hypothesis.event(f"reversal: {getattr(outcome, 'reason', type(outcome).__name__)}")

    @invariant()
    def surrendered_serials_never_trade_again(self) -> None:
        for _, event in self.log.entries[self.seen :]:
            if isinstance(event, CreditsSurrendered | TradeSettled) and event.instrument == CCER:
                serials = {s for r in event.serials for s in range(r.start, r.end + 1)}
                if isinstance(event, CreditsSurrendered):
                    self.surrendered |= serials
                else:
                    self.traded_after_surrender.extend(sorted(serials & self.surrendered))
        self.seen = len(self.log.entries)
        assert self.traded_after_surrender == []

    @invariant()
    def accounts_match_certificates_and_caps(self) -> None:
        core = self.log.state.verification
        assert isinstance(core, Verification)
        c = core.state.compliance
        assert c.surrendering == []  # settlement answered every approval
        spent: dict[tuple[str, int, bool], int] = {}
        for cert in c.certificates.values():
            key = (cert.participant, cert.year, cert.offset)
            spent[key] = spent.get(key, 0) + cert.tonnes
        for who in TRADERS:
            for year in (2022, 2023):
                account = c.accounts.get(account_key("SZ", year, who), ComplianceAccount())
                assert account.allowances == spent.get((who, year, False), 0)
                assert account.offsets == spent.get((who, year, True), 0)
                assert account.offsets <= offset_cap(EMISSIONS, CAP_BPS)
                assert account.remaining >= 0
                assert account.verified  # the obligations exist (the verifier is accredited for them)


TestComplianceSession = ComplianceSession.TestCase
TestComplianceSession.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
