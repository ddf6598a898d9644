"""A small compliance market in one process: a Shenzhen-style scheme, an emitter with allowances of 2022
and offsets of a forest project it bought, its own project's offsets, and an accredited verifier."""

from __future__ import annotations

import hashlib
from typing import Any

from services.harness import InProcessExchange
from services.registry.core import Registry
from shared.attestation import new_verifier_key, sign_report
from shared.reports import ComplianceReport, ExecutionReport, RejectReason
from tests.support import FakeClock

KEYS = {"acme": "acme-key-0123456789", "forest": "forest-key-0123456789", "cqc": "cqc-key-0123456789"}
HASH = hashlib.sha256(b"emissions report").hexdigest()
SZEA, CCER, CEA = "SZEA-T", "CCER-T", "CEA-T"
SCHEME = {
    "scheme": "SZ", "name": "Shenzhen pilot ETS", "allowance_instruments": [SZEA],
    "offset_instruments": [CCER], "offset_standards": ["CCER"], "offset_cap_bps": 1000,
    "cap_basis": "emissions", "offset_min_vintage": 2015, "projects_started_from": "2015-01-01",
    "deadline": "06-30", "penalty_kind": "price_multiple", "penalty_multiple_bps": 30000,
}  # fmt: skip
_SPECS = [
    {"symbol": SZEA, "kind": "allowance", "standard": "SZEA", "registry": "SZ", "vintage": 2022,
     "reference_price": "50.00"},
    {"symbol": CEA, "kind": "allowance", "standard": "CEA", "registry": "MEE", "vintage": 2022,
     "reference_price": "80.00"},
    {"symbol": CCER, "kind": "offset", "standard": "CCER", "registry": "CCER", "vintage": 2021,
     "reference_price": "40.00"},
]  # fmt: skip


_PROJECT = {
    "methodology": "CCER-14-001-V01", "country": "CN", "project_type": "afforestation",
    "start_date": "2021-03-01", "crediting_start": "2021-03-01", "crediting_end": "2040-12-31",
    "origin_registry": "CCER", "validator": "South China Validation Co.",
}  # fmt: skip
_SITES = (
    {"admin_code": "441200", "latitude": "23.046900", "longitude": "112.465100"},
    {"admin_code": "440300", "latitude": "22.543100", "longitude": "114.057900"},
)


class Market:
    """The exchange plus the shortcuts the compliance tests speak in."""

    def __init__(self) -> None:
        self.ex = InProcessExchange(clock=FakeClock())  # 2023-11-14: past the 2022 deadline (2023-06-30)
        self.n = 0

    async def op(self, action: str, **args: Any) -> None:
        self.n += 1
        await self.ex.submit([self.ex.operator_command(f"op-{self.n}", action, **args)])

    async def send(self, who: str, **fields: Any) -> str:
        self.n += 1
        cid = f"{who}-{self.n}"
        await self.ex.submit([(who, self.ex.command(who, KEYS[who], client_order_id=cid, **fields))])
        return cid

    async def surrender(self, instrument: str, quantity: int, year: int = 2022, scheme: str = "SZ") -> str:
        return await self.send("acme", type="surrender", scheme=scheme, year=year, instrument=instrument,
                               quantity=quantity)  # fmt: skip

    async def emissions(self, tonnes: int, entity: str = "acme", year: int = 2022, who: str = "cqc") -> str:
        args = {"entity": entity, "scheme": "SZ", "year": year, "tonnes": tonnes, "report_hash": HASH}
        return await self.send(who, type="registry", action="record_emissions", args=args)

    def compliance(self, cid: str, who: str = "acme") -> ComplianceReport:
        found = [d.report for d in self.ex.reports if d.participant == who
                 and isinstance(d.report, ComplianceReport) and d.report.client_order_id == cid]  # fmt: skip
        assert len(found) == 1, [d.report for d in self.ex.reports[-5:]]
        return found[0]

    def refused_at_intake(self, cid: str, who: str = "operator") -> str:
        found = [d.report for d in self.ex.reports if d.participant == who
                 and isinstance(d.report, ExecutionReport) and d.report.client_order_id == cid]  # fmt: skip
        assert len(found) == 1
        reason = found[0].reason
        assert isinstance(reason, RejectReason)
        return str(reason.code)


async def market(*, emissions: int = 1000, offsets_bought: int = 150) -> Market:
    """acme: 800 t SZEA-T allocated for 2022, 90 t of its own project OWN, `offsets_bought` t of the
    forest's SF1 (started 2021); cqc recorded `emissions` t for 2022 (0: not yet)."""
    m = Market()
    ex = m.ex
    await ex.submit([ex.operator_command(f"list-{i}", "list_instrument", **s) for i, s in enumerate(_SPECS)])
    await ex.submit([ex.register(p, key, roles=["verifier"] if p == "cqc" else ["trader"])
                     for p, key in KEYS.items()])  # fmt: skip
    for p in ("acme", "forest"):
        await m.op("deposit_cash", participant=p, amount="100000.00")
    await m.op("define_scheme", **SCHEME)
    await m.op("allocate_allowances", participant="acme", scheme="SZ", year=2022, instrument=SZEA,
               serial_start=1, serial_end=800)  # fmt: skip
    # The registry's integrity rules (docs/registry.md): an accredited verifier signs its reports, and
    # projects are complete and far apart (else the second is held for review as a duplicate).
    private, public = new_verifier_key()
    await m.op("accredit_verifier", verifier="cqc", scopes=["forestry", "emissions"], expires="2030-12-31",
               public_key=public, accreditor="CNAS")  # fmt: skip
    for (project, owner), site in zip((("SF1", "forest"), ("OWN", "acme")), _SITES, strict=True):
        await m.op("register_project", project=project, owner=owner, instrument=CCER, standard="CCER",
                   buffer_bps=0, origin_id=project, **_PROJECT, **site)  # fmt: skip
        signature = sign_report(private, project, "2021-03-01", "2021-12-31", 2021, 1000, HASH)
        await m.send("cqc", type="registry", action="submit_verification", args={
            "project": project, "vintage": 2021, "period_start": "2021-03-01", "period_end": "2021-12-31",
            "tonnes": 1000, "report_hash": HASH, "signature": signature})  # fmt: skip
    await m.op("issue_verified", report_id=_report_id(m, "SF1"), tonnes=500)
    await m.op("issue_verified", report_id=_report_id(m, "OWN"), tonnes=90)
    if offsets_bought:
        await m.send("forest", type="new_order", instrument=CCER, side="sell", order_type="limit",
                     price="40.00", quantity=offsets_bought)  # fmt: skip
        await m.send("acme", type="new_order", instrument=CCER, side="buy", order_type="limit",
                     price="40.00", quantity=offsets_bought)  # fmt: skip
    if emissions:
        await m.emissions(emissions)
    return m


def _report_id(m: Market, project: str) -> str:
    core = m.ex.core("registry").processor
    assert isinstance(core, Registry)
    return next(r.report_id for r in core.state.reports.values() if r.project == project)
