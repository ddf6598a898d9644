"""Compliance decisions in verification: verified emissions (the obligation), surrenders (free tonnes,
scheme eligibility, the offset cap, per-serial offset rules) and the close of a compliance year."""

from __future__ import annotations

from services.verification.compliance_state import (
    ComplianceAccount,
    ComplianceState,
    ProjectFact,
    account_key,
    move_pieces,
)
from services.verification.state import Holding, State
from shared.domain.base import Refused
from shared.domain.codec import Event, tags
from shared.domain.compliance import (
    AllowancesAllocated,
    CapBasis,
    ComplianceCloseRequested,
    ComplianceRejected,
    ComplianceShortfall,
    ComplianceYearClosed,
    CreditsSurrendered,
    EmissionsSubmitted,
    EmissionsVerified,
    SchemeDefined,
    SerialRule,
    SurrenderApproved,
    SurrenderRejected,
    SurrenderRequested,
    deadline_ns,
    offset_cap,
    penalty,
)
from shared.domain.eligibility import accepts
from shared.domain.instruments import Instrument
from shared.domain.integrity import VerifierAccredited, check_accreditation, emissions_scopes
from shared.domain.ledger import CreditsIssued, ParticipantRegistered, TradeSettled
from shared.domain.methodologies import day_of
from shared.domain.reasons import Reason
from shared.domain.registry import CreditsRetired, ProjectRegistered, VerificationAccepted

__all__ = ["COMPLIANCE_FOLDED", "COMPLIANCE_REQUESTS", "decide_compliance", "evolve_compliance"]

VERIFIER_ROLE = "verifier"
COMPLIANCE_REQUESTS = tags(EmissionsSubmitted, SurrenderRequested, ComplianceCloseRequested)
COMPLIANCE_FOLDED = tags(
    ParticipantRegistered, ProjectRegistered, VerificationAccepted, SchemeDefined, AllowancesAllocated,
    EmissionsVerified, SurrenderApproved, CreditsSurrendered, ComplianceShortfall, ComplianceYearClosed,
    CreditsIssued, TradeSettled, CreditsRetired, VerifierAccredited,
)  # fmt: skip


def evolve_compliance(state: State, event: Event) -> None:
    """Fold a fact into the compliance state (the holding's held and frozen tonnes move in evolve)."""
    c, origins = state.compliance, state.origins
    match event:
        case ParticipantRegistered():
            c.roles[event.participant] = event.roles
        case ProjectRegistered():
            c.projects.setdefault(event.project, _fact(event))
        case VerificationAccepted() if event.project in c.projects:
            fact = c.projects[event.project]
            fact.started = min(fact.started or event.period_start, event.period_start)
        case SchemeDefined():
            c.schemes.setdefault(event.scheme, event)
        case VerifierAccredited():
            c.accreditations[event.verifier] = event  # a later one replaces it, as in the registry
        case AllowancesAllocated():
            c.account(event.scheme, event.year, event.participant).allocated += event.serials.tonnes
        case EmissionsVerified():
            account = c.account(event.scheme, event.year, event.entity)
            account.emissions, account.verified = event.tonnes, True
        case SurrenderApproved():
            account = c.account(event.scheme, event.year, event.participant)
            if event.rule.offset:
                account.offsets += event.quantity
            else:
                account.allowances += event.quantity
        case ComplianceShortfall():
            account = c.account(event.scheme, event.year, event.participant)
            account.closed, account.shortfall, account.penalty_fen = True, event.shortfall, event.penalty_fen
            if event.deduction:
                c.account(event.scheme, event.year + 1, event.participant).carried_in += event.deduction
        case ComplianceYearClosed():
            c.closed.setdefault(event.scheme, []).append(event.year)
        case CreditsIssued():
            move_pieces(c, origins.get(event.instrument, []), event.instrument, (event.serials,), None,
                        event.participant)  # fmt: skip
        case TradeSettled():
            move_pieces(c, origins.get(event.instrument, []), event.instrument, event.serials, event.seller,
                        event.buyer)  # fmt: skip
        case CreditsRetired():
            move_pieces(c, origins.get(event.instrument, []), event.instrument, event.serials,
                        event.participant, None)  # fmt: skip
        case CreditsSurrendered():
            move_pieces(c, origins.get(event.instrument, []), event.instrument, event.serials,
                        event.participant, None)  # fmt: skip
            c.certificates[event.certificate_id] = event
        case _:
            pass


def _fact(event: ProjectRegistered) -> ProjectFact:
    return ProjectFact(event.owner)


def decide_compliance(state: State, seq: int, event_ns: int, event: Event) -> list[Event]:
    """The answer to a compliance request, not yet applied."""
    match event:
        case SurrenderRequested():
            try:
                return [_surrender(state, seq, event)]
            except Refused as refused:
                return [SurrenderRejected(
                    participant=event.participant, client_order_id=event.client_order_id,
                    scheme=event.scheme, year=event.year, instrument=event.instrument,
                    quantity=event.quantity, reason=refused.reason, text=refused.text,
                )]  # fmt: skip
        case EmissionsSubmitted() | ComplianceCloseRequested():
            try:
                if isinstance(event, EmissionsSubmitted):
                    return [_emissions(state.compliance, event_ns, event)]
                return _close(state, event_ns, event)
            except Refused as refused:
                action = "close_compliance_year"
                if isinstance(event, EmissionsSubmitted):
                    action = "record_emissions"
                return [ComplianceRejected(
                    participant=event.participant, client_order_id=event.client_order_id, action=action,
                    reason=refused.reason, text=refused.text,
                )]  # fmt: skip
    return []


def _scheme(c: ComplianceState, scheme: str, year: int) -> SchemeDefined:
    found = c.schemes.get(scheme)
    if found is None:
        raise Refused(Reason.UNKNOWN_SCHEME, f"no compliance scheme {scheme!r}")
    if year in c.closed.get(scheme, ()):
        raise Refused(Reason.COMPLIANCE_YEAR_CLOSED, f"{scheme} {year} is closed")
    return found


def _emissions(c: ComplianceState, event_ns: int, sub: EmissionsSubmitted) -> EmissionsVerified:
    if VERIFIER_ROLE not in c.roles.get(sub.participant, ()):
        raise Refused(Reason.NOT_A_VERIFIER, f"{sub.participant} is not an accredited verifier")
    # ISO 14064-3 verification of an organisation's GHG statement, by a body accredited for it (ISO 14065)
    acc = c.accreditations.get(sub.participant)
    check_accreditation(sub.participant, acc, day_of(event_ns), emissions_scopes(sub.scheme),
                        f"verified emissions under {sub.scheme}")  # fmt: skip
    _scheme(c, sub.scheme, sub.year)
    if day_of(event_ns) <= f"{sub.year}-12-31":  # ISO dates compare as strings
        raise Refused(Reason.EX_ANTE_PERIOD, f"{sub.year} is not over: its emissions are verified after it")
    if sub.entity not in c.roles:
        raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {sub.entity!r}")
    if sub.entity == sub.participant:
        raise Refused(Reason.CONFLICT_OF_INTEREST, f"{sub.participant} cannot verify its own emissions")
    if c.account(sub.scheme, sub.year, sub.entity).verified:
        raise Refused(Reason.EMISSIONS_ALREADY_VERIFIED, f"{sub.entity}'s {sub.year} emissions are recorded")
    return EmissionsVerified(
        verifier=sub.participant, client_order_id=sub.client_order_id, entity=sub.entity, scheme=sub.scheme,
        year=sub.year, tonnes=sub.tonnes, report_hash=sub.report_hash,
    )  # fmt: skip


def _surrender(state: State, seq: int, req: SurrenderRequested) -> SurrenderApproved:
    c = state.compliance
    scheme = _scheme(c, req.scheme, req.year)
    offset = req.instrument in scheme.offset_instruments
    if not offset and req.instrument not in scheme.allowance_instruments:
        raise Refused(Reason.NOT_ELIGIBLE_FOR_SCHEME, f"{req.instrument} does not count under {req.scheme}")
    account = c.accounts.get(account_key(req.scheme, req.year, req.participant), ComplianceAccount())
    if account.obligation <= 0:
        raise Refused(Reason.NO_OBLIGATION, f"no verified emissions of {req.participant} in {req.year}")
    if req.quantity > account.remaining:
        raise Refused(Reason.OVER_SURRENDER, f"{req.quantity} t exceeds the {account.remaining} t still due")
    if offset:
        basis = account.emissions if scheme.cap_basis is CapBasis.EMISSIONS else account.obligation
        cap = offset_cap(basis, scheme.offset_cap_bps)
        if account.offsets + req.quantity > cap:
            raise Refused(
                Reason.OFFSET_CAP_EXCEEDED,
                f"{account.offsets} t + {req.quantity} t of offsets exceed the cap of {cap} t "
                f"({scheme.offset_cap_bps} bp of {basis} t {scheme.cap_basis})",
            )
    rule = _rule(state, scheme, req, offset)
    _check_tonnes(state, req, rule)
    return SurrenderApproved(
        participant=req.participant, client_order_id=req.client_order_id, scheme=req.scheme, year=req.year,
        instrument=req.instrument, quantity=req.quantity, rule=rule, request_seq=seq,
    )  # fmt: skip


def _rule(state: State, scheme: SchemeDefined, req: SurrenderRequested, offset: bool) -> SerialRule:
    """What qualifies: allowances of the year or earlier; offsets by standard, reduction year, and not
    from the entity's own projects nor projects started before the scheme's date (among those held)."""
    inst = state.instruments.get(req.instrument)
    if not offset:
        return SerialRule(offset=False, max_year=req.year, default_year=inst.vintage if inst else 0)
    c = state.compliance
    excluded = sorted(
        project
        for project in {p.project for p in c.pieces(req.participant, req.instrument) if p.project}
        if (fact := c.projects.get(project)) is None
        or (scheme.exclude_own_projects and fact.owner == req.participant)
        or (scheme.projects_started_from and fact.started < scheme.projects_started_from)
    )
    return SerialRule(
        offset=True, standards=scheme.offset_standards, min_vintage=scheme.offset_min_vintage,
        max_vintage=scheme.offset_max_vintage, excluded_projects=tuple(excluded),
    )  # fmt: skip


def _check_tonnes(state: State, req: SurrenderRequested, rule: SerialRule) -> None:
    """Free tonnes, then qualifying tonnes, counted conservatively: every tonne frozen for anything else
    may be a qualifying one. Settlement takes qualifying serials that cannot trade first, so sells keep
    the eligible tonnes they were verified against (docs/registry.md, "Compliance")."""
    account = state.accounts.get(req.participant)
    holding = account.credits.get(req.instrument) if account is not None else None
    holding = holding or Holding()
    free = holding.held - holding.frozen
    if req.quantity > free:
        raise Refused(Reason.INSUFFICIENT_CREDITS, f"needs {req.quantity} t, {free} t available")
    inst: Instrument | None = state.instruments.get(req.instrument)
    pieces = state.compliance.pieces(req.participant, req.instrument)
    qualifying = [p for p in pieces if rule.allows(p.origin())]
    eligible = sum(p.tonnes for p in qualifying)
    if req.quantity > eligible - holding.frozen:
        raise Refused(
            Reason.INELIGIBLE_CREDITS,
            f"needs {req.quantity} t that qualify for {req.scheme} {req.year}, "
            f"{max(0, eligible - holding.frozen)} t available "
            f"({holding.held - eligible} t held do not qualify)",
        )
    untradable = sum(p.tonnes for p in qualifying if not accepts(inst, p.standard, p.vintage))
    excluded = sum(p.tonnes for p in pieces if not accepts(inst, p.standard, p.vintage))
    mine = (req.participant, req.instrument)
    retiring = sum(r.qty for r in state.retiring if (r.participant, r.instrument) == mine)
    others = sum(u.qty for u in state.compliance.surrendering if (u.participant, u.instrument) == mine)
    from_tradable = max(0, req.quantity - max(0, untradable - retiring - others))
    if from_tradable > holding.held - excluded - (holding.frozen - retiring):
        raise Refused(
            Reason.INELIGIBLE_CREDITS,
            f"open sells claim the tradable tonnes this surrender would need ({from_tradable} t)",
        )


def _close(state: State, event_ns: int, req: ComplianceCloseRequested) -> list[Event]:
    """Every entity's account of the year, by entity id, then the close itself."""
    c = state.compliance
    scheme = _scheme(c, req.scheme, req.year)
    if event_ns < deadline_ns(scheme, req.year):
        due = f"{req.year + 1}-{scheme.deadline}"
        raise Refused(Reason.BEFORE_DEADLINE, f"{req.scheme} {req.year} can close after {due} (CST)")
    inst = state.instruments.get(scheme.allowance_instruments[0])
    price = inst.reference_price if inst is not None else 0
    prefix = f"{req.scheme}|{req.year}|"
    out: list[Event] = []
    for key in sorted(k for k in c.accounts if k.startswith(prefix)):
        account = c.accounts[key]
        if account.obligation <= 0 and not account.verified:
            continue
        short = max(0, account.remaining)
        basis, fine = penalty(scheme, short, price)
        out.append(ComplianceShortfall(
            participant=key.removeprefix(prefix), scheme=req.scheme, year=req.year,
            emissions=account.emissions, carried_in=account.carried_in, obligation=account.obligation,
            allowances=account.allowances, offsets=account.offsets, shortfall=short,
            penalty_basis_fen=basis, penalty_fen=fine, deduction=short if scheme.deduct_shortfall else 0,
            client_order_id=req.client_order_id,
        ))  # fmt: skip
    total = sum(e.shortfall for e in out if isinstance(e, ComplianceShortfall))
    out.append(ComplianceYearClosed(scheme=req.scheme, year=req.year, entities=len(out), shortfall=total,
                                    client_order_id=req.client_order_id))  # fmt: skip
    return out
