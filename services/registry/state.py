"""State of the registry core: what it has folded from the log, and its per-project tonne totals."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.registry.integrity import Reversal
from shared.domain.certificates import SerialOrigins
from shared.domain.eligibility import with_window
from shared.domain.instruments import Instrument
from shared.domain.integrity import VerifierAccredited
from shared.domain.labels import ClaimRulesSet, FactorTablePublished
from shared.domain.ledger import CreditsIssued
from shared.domain.registry import (
    ActivityRecorded,
    CreditsRetired,
    EligibilityChanged,
    LabelIssued,
    NeutralityClaimed,
    ProductRegistered,
    ProjectRegistered,
    RetirementKind,
    VerificationAccepted,
)

__all__ = ["Certificate", "RegistryState", "Totals"]


@dataclass
class Totals:
    """Tonnes of one (instrument, project, vintage): issued in all, and how many left the market."""

    issued: int = 0
    buffer: int = 0  # issued into the BUFFER account
    retired: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class Certificate:
    """A retirement (or cancellation) and the log seq of its CreditsRetired entry."""

    retired: CreditsRetired
    seq: int


@dataclass
class RegistryState:
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)
    projects: dict[str, ProjectRegistered] = field(default_factory=dict)
    reports: dict[str, VerificationAccepted] = field(default_factory=dict)
    periods: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # project -> verified periods
    report_issued: dict[str, int] = field(default_factory=dict)  # report id -> tonnes issued against it
    next_serial: dict[str, int] = field(default_factory=dict)  # instrument -> first never-issued serial
    origins: SerialOrigins = field(default_factory=SerialOrigins)
    totals: dict[tuple[str, str, int], Totals] = field(default_factory=dict)
    certificates: dict[str, Certificate] = field(default_factory=dict)
    products: dict[str, ProductRegistered] = field(default_factory=dict)
    activities: dict[str, list[ActivityRecorded]] = field(default_factory=dict)
    labels: dict[str, LabelIssued] = field(default_factory=dict)  # product -> its current label
    claims: dict[str, NeutralityClaimed] = field(default_factory=dict)
    accreditations: dict[str, VerifierAccredited] = field(default_factory=dict)  # verifier -> current
    reversals: dict[str, Reversal] = field(default_factory=dict)  # the report's client order id -> it
    claimed: dict[str, str] = field(default_factory=dict)  # certificate id -> the active claim it backs
    factor_tables: dict[str, FactorTablePublished] = field(default_factory=dict)  # by version
    cut_offs: dict[str, dict[str, str]] = field(default_factory=dict)  # product -> stage -> justification
    superseded: dict[str, str] = field(default_factory=dict)  # claim id -> the label that superseded it
    rules: ClaimRulesSet = field(default_factory=ClaimRulesSet)

    def relabel(self, label: LabelIssued) -> None:
        """A new label supersedes the product's claims; their certificates may back a claim again."""
        for claim in [c for c in self.claims.values() if c.product == label.product]:
            if claim.claim_id not in self.superseded:
                self.superseded[claim.claim_id] = label.label_id
                for cert in claim.certificates:
                    if self.claimed.get(cert) == claim.claim_id:
                        del self.claimed[cert]
        self.labels[label.product] = label

    def change_eligibility(self, ev: EligibilityChanged) -> None:
        inst = self.instruments.get(ev.instrument)
        if inst is not None:
            self.instruments[ev.instrument] = with_window(inst, ev)

    def add_issued(self, ev: CreditsIssued) -> None:
        """Every block of every instrument, allowances too: offsets are numbered after all of them."""
        self.next_serial[ev.instrument] = max(self.next_serial.get(ev.instrument, 1), ev.serials.end + 1)
        self.origins.add(ev)
        totals = self._totals(ev.instrument, ev.project, ev.vintage)
        totals.issued += ev.serials.tonnes
        if ev.buffer:
            totals.buffer += ev.serials.tonnes
        if ev.report_id:
            self.report_issued[ev.report_id] = self.report_issued.get(ev.report_id, 0) + ev.serials.tonnes

    def add_retired(self, seq: int, ev: CreditsRetired) -> None:
        self.certificates[ev.certificate_id] = Certificate(ev, seq)
        for block in ev.serials:
            for piece, origin in self.origins.split(ev.instrument, block):
                project, vintage = (origin.project, origin.vintage) if origin else ("", 0)
                totals = self._totals(ev.instrument, project, vintage)
                if ev.kind is RetirementKind.CANCEL:
                    totals.cancelled += piece.tonnes
                else:
                    totals.retired += piece.tonnes

    def _totals(self, instrument: str, project: str, vintage: int) -> Totals:
        key = (instrument, project, vintage)
        totals = self.totals.get(key)
        if totals is None:
            totals = self.totals[key] = Totals()
        return totals
