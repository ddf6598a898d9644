"""The compliance read model: each entity's account per scheme and year, from verification's fold."""

from __future__ import annotations

from dataclasses import dataclass

from services.cli.readmodel import ExchangeState
from shared.domain.compliance import CapBasis, offset_cap

__all__ = ["ComplianceRow", "compliance_lines", "compliance_rows", "surrendered_by_scheme"]


@dataclass(frozen=True)
class ComplianceRow:
    scheme: str
    year: int
    entity: str
    emissions: int
    carried_in: int
    obligation: int
    allocated: int
    allowances: int  # surrendered
    offsets: int
    remaining: int
    offset_cap: int
    headroom: int  # offsets it may still surrender (within the cap and what is still due)
    status: str  # open, or closed with its shortfall
    penalty_fen: int
    deadline: str = ""  # the last day to surrender (ISO, China Standard Time)


def compliance_rows(
    state: ExchangeState, entity: str | None = None, scheme: str | None = None
) -> list[ComplianceRow]:
    """Every (scheme, year, entity) account, sorted; filtered to one entity and/or one scheme."""
    c = state.verification.state.compliance
    rows: list[ComplianceRow] = []
    for key in sorted(c.accounts):
        scheme_id, year, who = key.split("|", 2)
        if (entity is not None and who != entity) or (scheme is not None and scheme_id != scheme):
            continue
        a = c.accounts[key]
        defined = c.schemes.get(scheme_id)
        cap, deadline = 0, ""
        if defined is not None:
            deadline = f"{int(year) + 1}-{defined.deadline}"
            basis = a.emissions if defined.cap_basis is CapBasis.EMISSIONS else a.obligation
            cap = offset_cap(basis, defined.offset_cap_bps)
        status = f"closed, short {a.shortfall} t" if a.closed else "open"
        rows.append(ComplianceRow(
            scheme=scheme_id, year=int(year), entity=who, emissions=a.emissions, carried_in=a.carried_in,
            obligation=a.obligation, allocated=a.allocated, allowances=a.allowances, offsets=a.offsets,
            remaining=a.remaining, offset_cap=cap, headroom=max(0, min(cap - a.offsets, a.remaining)),
            status=status, penalty_fen=a.penalty_fen, deadline=deadline,
        ))  # fmt: skip
    return rows


def surrendered_by_scheme(state: ExchangeState) -> dict[tuple[str, str, int], int]:
    """(scheme, instrument, compliance year) -> tonnes surrendered: the `surrendered` column by scheme."""
    out: dict[tuple[str, str, int], int] = {}
    for cert in state.verification.state.compliance.certificates.values():
        key = (cert.scheme, cert.instrument, cert.year)
        out[key] = out.get(key, 0) + cert.tonnes
    return out


def compliance_lines(state: ExchangeState) -> list[str]:
    """One line per account for the demo summary: obligation, surrendered, remaining, cap headroom."""
    return [
        f"compliance {r.scheme} {r.year} {r.entity}: obligation {r.obligation:,} t; surrendered "
        f"{r.allowances:,} t allowances + {r.offsets:,} t offsets (cap {r.offset_cap:,} t); remaining "
        f"{r.remaining:,} t; offset headroom {r.headroom:,} t; due by {r.deadline or '?'}; {r.status}"
        for r in compliance_rows(state)
    ]
