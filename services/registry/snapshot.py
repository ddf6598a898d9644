"""The registry core's state as canonical bytes and back: snapshots, digests and compare-live."""

from __future__ import annotations

import msgspec

from services.registry.integrity import Reversal
from services.registry.state import Certificate, RegistryState, Totals
from shared.domain.certificates import Origin, SerialOrigins
from shared.domain.instruments import Instrument
from shared.domain.integrity import VerifierAccredited
from shared.domain.labels import ClaimRulesSet, FactorTablePublished
from shared.domain.registry import (
    ActivityRecorded,
    CreditsRetired,
    LabelIssued,
    NeutralityClaimed,
    ProductRegistered,
    ProjectRegistered,
    VerificationAccepted,
)

__all__ = ["decode_registry", "encode_registry"]

_VERSION = 2  # 2: factor tables, cut-offs, superseded claims, claim rules


class _Snapshot(msgspec.Struct, array_like=True, kw_only=True):
    version: int
    roles: dict[str, tuple[str, ...]]
    instruments: dict[str, Instrument]
    projects: dict[str, ProjectRegistered]
    reports: dict[str, VerificationAccepted]
    periods: dict[str, list[tuple[str, str]]]
    report_issued: dict[str, int]
    next_serial: dict[str, int]
    origins: dict[str, list[Origin]]
    totals: list[tuple[str, str, int, Totals]]  # tuple keys do not make map keys: a sorted list instead
    certificates: dict[str, tuple[CreditsRetired, int]]
    products: dict[str, ProductRegistered]
    activities: dict[str, list[ActivityRecorded]]
    labels: dict[str, LabelIssued]
    claims: dict[str, NeutralityClaimed]
    claimed: dict[str, str]
    accreditations: dict[str, VerifierAccredited] = {}
    reversals: dict[str, Reversal] = {}
    factor_tables: dict[str, FactorTablePublished] = {}
    cut_offs: dict[str, dict[str, str]] = {}
    superseded: dict[str, str] = {}
    rules: ClaimRulesSet = ClaimRulesSet()


# Sorted maps: equal states give equal bytes whatever order their dicts were filled in.
_encoder = msgspec.msgpack.Encoder(order="deterministic")
_decoder = msgspec.msgpack.Decoder(_Snapshot)


def encode_registry(s: RegistryState) -> bytes:
    return _encoder.encode(_Snapshot(
        version=_VERSION, roles=s.roles, instruments=s.instruments, projects=s.projects, reports=s.reports,
        periods=s.periods, report_issued=s.report_issued, next_serial=s.next_serial,
        origins=s.origins.blocks,
        totals=sorted((*key, totals) for key, totals in s.totals.items()),
        certificates={cid: (c.retired, c.seq) for cid, c in s.certificates.items()},
        products=s.products, activities=s.activities, labels=s.labels, claims=s.claims, claimed=s.claimed,
        accreditations=s.accreditations, reversals=s.reversals,
        factor_tables=s.factor_tables, cut_offs=s.cut_offs, superseded=s.superseded, rules=s.rules,
    ))  # fmt: skip


def decode_registry(data: bytes) -> RegistryState:
    snap = _decoder.decode(data)
    if snap.version != _VERSION:
        raise ValueError(f"unknown registry snapshot version {snap.version}")
    origins = SerialOrigins()
    origins.blocks = snap.origins
    return RegistryState(
        roles=snap.roles, instruments=snap.instruments, projects=snap.projects, reports=snap.reports,
        periods=snap.periods, report_issued=snap.report_issued, next_serial=snap.next_serial, origins=origins,
        totals={(instrument, project, vintage): t for instrument, project, vintage, t in snap.totals},
        certificates={cid: Certificate(retired, seq) for cid, (retired, seq) in snap.certificates.items()},
        products=snap.products, activities=snap.activities, labels=snap.labels, claims=snap.claims,
        claimed=snap.claimed, accreditations=snap.accreditations, reversals=snap.reversals,
        factor_tables=snap.factor_tables, cut_offs=snap.cut_offs, superseded=snap.superseded,
        rules=snap.rules,
    )  # fmt: skip
