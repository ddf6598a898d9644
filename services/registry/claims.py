"""Labels and claims that tell the truth: one published factor table, every stage inside the boundary
covered, and claims backed only by offsets retired for that product, of vintages near the period."""

from __future__ import annotations

import datetime

from services.registry.state import RegistryState
from shared.domain.base import Refused
from shared.domain.certificates import retirement_date
from shared.domain.instruments import InstrumentKind
from shared.domain.reasons import Reason
from shared.domain.registry import (
    CRADLE_TO_GATE_STAGES,
    STAGES,
    ActivityRecorded,
    LabelIssued,
    LabelRequested,
    NeutralityClaimed,
    NeutralityClaimSubmitted,
    ProductRegistered,
    RetirementKind,
    StageCutOff,
    StageFootprint,
)
from shared.domain.retirement import product_claim_purpose

__all__ = ["GRAMS_PER_TONNE", "active_claims", "decide_claim", "decide_label"]

GRAMS_PER_TONNE = 1_000_000


def active_claims(s: RegistryState, product: str) -> list[NeutralityClaimed]:
    """The product's claims no relabel has superseded, in the order they were made (by the seq in their
    id, `NC-<seq>`: a restored snapshot's maps come back in key order, not in the order they were
    filled, and a decision must not depend on which)."""
    mine = [c for c in s.claims.values() if c.product == product and c.claim_id not in s.superseded]
    return sorted(mine, key=lambda c: int(c.claim_id.rpartition("-")[2]))


def decide_label(
    s: RegistryState, seq: int, event_ns: int, req: LabelRequested, product: ProductRegistered
) -> LabelIssued:
    activities = s.activities.get(req.product, [])
    if not activities:
        raise Refused(Reason.NO_ACTIVITY_DATA, f"no activity data recorded for {req.product}")
    version, sha = _one_table(s, activities)
    inside = STAGES if product.boundary == "cradle-to-grave" else CRADLE_TO_GATE_STAGES
    with_data = {a.stage for a in activities}
    declared = s.cut_offs.get(req.product, {})
    missing = [stage for stage in inside if stage not in with_data and stage not in declared]
    if missing:
        text = f"{product.boundary} needs data or a declared cut-off for {', '.join(missing)}"
        raise Refused(Reason.INCOMPLETE_BOUNDARY, text)
    grams = dict.fromkeys(STAGES, 0)
    for activity in activities:
        grams[activity.stage] += activity.grams
    stages = tuple(StageFootprint(stage, grams[stage], stage in inside) for stage in STAGES)
    previous = s.labels.get(req.product)
    issued = datetime.date.fromisoformat(retirement_date(event_ns))
    return LabelIssued(
        label_id=f"LB-{seq}", product=product.product, owner=product.participant,
        verifier=req.participant, client_order_id=req.client_order_id, model=product.model,
        functional_unit=product.functional_unit, boundary=product.boundary, stages=stages,
        total_grams=sum(st.grams for st in stages if st.included), factor_tables=(version,),
        issued_ns=event_ns,
        cut_offs=tuple(StageCutOff(st, declared[st]) for st in inside if st not in with_data),
        valid_until=(issued + datetime.timedelta(days=s.rules.label_validity_days)).isoformat(),
        supersedes=previous.label_id if previous is not None else "",
        superseded_claims=tuple(c.claim_id for c in active_claims(s, req.product)),
        factor_table_sha256=sha,
    )  # fmt: skip


def _one_table(s: RegistryState, activities: list[ActivityRecorded]) -> tuple[str, str]:
    """The one published table every activity used, with the factor it publishes; else refused."""
    versions = sorted({a.factor_table for a in activities})
    if len(versions) > 1:
        text = f"activities use tables {', '.join(versions)}: a label uses one (recalculate the product)"
        raise Refused(Reason.MIXED_FACTOR_TABLES, text)
    table = s.factor_tables.get(versions[0])
    if table is None:
        raise Refused(Reason.UNPUBLISHED_FACTOR_TABLE, f"factor table {versions[0]} is not published")
    for a in activities:
        factor = table.factor(a.factor_key)
        if factor is None or (factor.kg_co2e, factor.unit) != (a.factor, a.unit):
            published = "nothing" if factor is None else f"{factor.kg_co2e} kg/{factor.unit}"
            text = f"{a.factor_key} was recorded at {a.factor} kg/{a.unit}; {table.version} has {published}"
            raise Refused(Reason.MIXED_FACTOR_TABLES, text)
    return table.version, table.sha256


def decide_claim(
    s: RegistryState, seq: int, event_ns: int, req: NeutralityClaimSubmitted
) -> NeutralityClaimed:
    product = s.products.get(req.product)
    if product is None:
        raise Refused(Reason.UNKNOWN_PRODUCT, f"no product {req.product!r}")
    if product.participant != req.participant:
        raise Refused(Reason.NOT_OWNER, f"{req.product} is not yours")
    label = s.labels.get(req.product)
    if label is None:
        raise Refused(Reason.UNLABELLED_PRODUCT, f"{req.product} has no verified footprint label")
    if req.label_id != label.label_id:
        raise Refused(Reason.STALE_LABEL, f"the claim names {req.label_id or 'no label'}; {req.product}'s "
                                          f"current label is {label.label_id}")  # fmt: skip
    if label.valid_until and retirement_date(event_ns) > label.valid_until:
        raise Refused(Reason.STALE_LABEL, f"{label.label_id} was valid until {label.valid_until}")
    covered, serials, standards = 0, [], set()
    for cert_id in req.certificates:
        cert_serials, cert_standards = _backing(s, req, cert_id)
        covered += s.certificates[cert_id].retired.tonnes
        serials.extend(cert_serials)
        standards |= cert_standards
    footprint = label.total_grams * req.units
    required = -(-footprint // GRAMS_PER_TONNE)
    if covered < required:
        text = f"{req.units} x {label.total_grams} g = {footprint} g needs {required} t retired"
        raise Refused(Reason.INSUFFICIENT_RETIREMENTS, f"{text}, the certificates cover {covered} t")
    return NeutralityClaimed(
        claim_id=f"NC-{seq}", participant=req.participant, client_order_id=req.client_order_id,
        product=req.product, label_id=label.label_id, units=req.units, footprint_grams=footprint,
        required_tonnes=required, covered_tonnes=covered, certificates=req.certificates,
        serials=tuple(serials), period_start=req.period_start, period_end=req.period_end,
        units_shipped=req.units_shipped, standards=tuple(sorted(standards)),
    )  # fmt: skip


def _backing(s: RegistryState, req: NeutralityClaimSubmitted, cert_id: str) -> tuple[list[str], set[str]]:
    """The serial labels and standards of one certificate that may back this claim; else refused."""
    cert = s.certificates.get(cert_id)
    if cert is None:
        raise Refused(Reason.CERTIFICATE_UNUSABLE, f"no retirement certificate {cert_id!r}")
    ev = cert.retired
    if ev.participant != req.participant or ev.kind is not RetirementKind.RETIRE:
        raise Refused(Reason.CERTIFICATE_UNUSABLE, f"{cert_id} is not a retirement of yours")
    if (claim := s.claimed.get(cert_id)) is not None:
        raise Refused(Reason.CERTIFICATE_UNUSABLE, f"{cert_id} already backs claim {claim}")
    inst = s.instruments.get(ev.instrument)
    pieces = [origin for block in ev.serials for _, origin in s.origins.split(ev.instrument, block)]
    offsets = inst is not None and inst.kind is InstrumentKind.OFFSET
    if not offsets or any(o is None or not o.project for o in pieces):
        text = f"{cert_id} retired {ev.instrument}, not offsets issued against a verification report"
        raise Refused(Reason.NOT_OFFSET_CREDITS, text)
    if ev.purpose != product_claim_purpose(req.product):
        text = f"{cert_id} was retired for {ev.purpose or 'no declared purpose'}"
        raise Refused(Reason.RETIREMENT_PURPOSE_MISMATCH, f"{text}, not {product_claim_purpose(req.product)}")
    oldest = int(req.period_start[:4]) - s.rules.max_vintage_age_years
    latest = int(req.period_end[:4])
    for origin in pieces:
        assert origin is not None
        if not oldest <= origin.vintage <= latest:
            period = f"{req.period_start}..{req.period_end}"
            text = f"{cert_id} holds vintage {origin.vintage}; a claim for {period} takes {oldest}-{latest}"
            raise Refused(Reason.VINTAGE_OUTSIDE_CLAIM_WINDOW, text)
    return s.origins.labels(ev.instrument, ev.serials), {o.standard for o in pieces if o is not None}
