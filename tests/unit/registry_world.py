"""A small registry world in one process (InProcessExchange): offsets of two projects and vintages, an
allowance, a maker that buys and retires them, a verifier; helpers that send commands and find answers."""

from __future__ import annotations

import hashlib
from typing import Any

from services.harness import InProcessExchange
from shared.attestation import public_key_of, sign_report
from shared.domain.footprint import load_table_file
from shared.domain.labels import table_sha256
from shared.reports import RegistryEventKind, RegistryReport, Report
from tests.support import FakeClock

__all__ = ["CCER", "CEA", "DRONE", "DRONE_ACTIVITIES", "KEYS", "World", "world"]

CCER, CEA = "CCER-2024", "CEA-2025"
DRONE = "SKY4"
KEYS = {p: f"{p}-key-0123456789" for p in ("forest", "drones", "cqc", "other")}
# 2025-06-01T00:00:00Z: labels and retirements are dated from the log's clock.
START_NS = 1_748_736_000_000_000_000
Activities = tuple[tuple[str, str, str], ...]
DRONE_ACTIVITIES: Activities = (
    ("materials", "aluminium_primary", "1.2"),
    ("materials", "plastic_abs", "0.8"),
    ("materials", "copper_cathode", "0.15"),
    ("materials", "battery_li_ion_capacity", "0.1"),
    ("production", "electricity_cn_grid", "45"),
    ("distribution", "sea_freight_container", "43.2"),
    ("distribution", "road_freight_truck", "2.88"),
    ("use", "electricity_cn_grid", "450"),
    ("end_of_life", "weee_treatment", "2.4"),
)  # 313.6 kg CO2e per drone: services/cli/demo_registry.py


# Complete projects (the registry's integrity rules, docs/registry.md), each on its own site and origin id
# so that none is held for review as a duplicate. SF4 is a VCS project: CCER admits no 2016 reductions.
_SITES = {
    "SF1": ("441200", "23.046900", "112.465100"), "SF2": ("441300", "23.111100", "114.416100"),
    "SF3": ("440300", "22.543100", "114.057900"), "SF4": ("445300", "22.915400", "112.044100"),
}  # fmt: skip
_PERIODS = {"SF1": ("2024-01-01", "2024-12-31"), "SF2": ("2023-01-01", "2023-12-31"),
            "SF3": ("2025-01-01", "2025-05-31"), "SF4": ("2016-01-01", "2016-12-31")}  # fmt: skip


class World:
    def __init__(self, ex: InProcessExchange) -> None:
        self.ex = ex
        self.n = 0
        # One fixed verifier key: the same commands must log the same bytes (test_replay_determinism).
        self.private = hashlib.sha256(b"cqc's verification key").hexdigest()
        self.public = public_key_of(self.private)

    def cid(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    async def send(self, who: str, **fields: Any) -> str:
        cid = str(fields.pop("client_order_id", "")) or self.cid(str(fields.get("type", "c")))
        await self.ex.submit([(who, self.ex.command(who, KEYS[who], client_order_id=cid, **fields))])
        return cid

    async def op(self, action: str, **args: Any) -> str:
        cid = self.cid(f"op-{action}")
        await self.ex.submit([self.ex.operator_command(cid, action, **args)])
        return cid

    def answer(self, who: str, cid: str) -> Report:
        mine = [d.report for d in self.ex.reports
                if d.participant == who and getattr(d.report, "client_order_id", "") == cid]  # fmt: skip
        assert mine, f"no answer to {who}/{cid}"
        return mine[-1]

    def registry(self, who: str, cid: str) -> RegistryReport:
        report = self.answer(who, cid)
        assert isinstance(report, RegistryReport), report
        return report

    def refused(self, who: str, cid: str) -> str:
        """The reason code of a refusal (edge, intake or a core), or "" when it was not refused."""
        report = self.answer(who, cid)
        reason = getattr(report, "reason", None)
        if isinstance(report, RegistryReport) and report.event is not RegistryEventKind.REJECTED:
            return ""
        return "" if reason is None else str(reason.code)

    async def act(self, who: str, action: str, **args: Any) -> str:
        return await self.send(who, type="registry", action=action, args=args)

    async def verified(self, project: str, vintage: int, tonnes: int) -> None:
        """A report for `project` of `vintage` verified (and signed) by cqc and issued in full."""
        start, end = _PERIODS[project]
        digest = hashlib.sha256(project.encode()).hexdigest()
        signature = sign_report(self.private, project, start, end, vintage, tonnes, digest)
        cid = await self.act("cqc", "submit_verification", project=project, vintage=vintage,
                             period_start=start, period_end=end, tonnes=tonnes, report_hash=digest,
                             signature=signature)  # fmt: skip
        report = self.registry("cqc", cid)
        assert report.event is RegistryEventKind.VERIFICATION_ACCEPTED, report
        await self.op("issue_verified", report_id=report.report_id, tonnes=tonnes)

    async def buy(self, who: str, instrument: str, qty: int, seller: str = "forest") -> None:
        """`who` buys `qty` t from `seller` at the reference price (one trade)."""
        price = "78.00" if instrument == CCER else "80.00"
        await self.send(seller, type="new_order", instrument=instrument, side="sell", order_type="limit",
                        price=price, quantity=qty)  # fmt: skip
        await self.send(who, type="new_order", instrument=instrument, side="buy", order_type="limit",
                        price=price, quantity=qty, time_in_force="IOC")  # fmt: skip

    async def retire(self, who: str, qty: int, instrument: str = CCER, **fields: Any) -> str:
        return await self.send(who, type="retire_credits", instrument=instrument, quantity=qty,
                               beneficiary=f"{who} beneficiary", **fields)  # fmt: skip

    async def publish(self, version: str = "v1") -> str:
        return await self.op("publish_factor_table", version=version,
                             sha256=table_sha256(load_table_file(version)))  # fmt: skip

    async def drone(
        self, boundary: str = "cradle-to-grave", activities: Activities = DRONE_ACTIVITIES
    ) -> None:
        """drones registers SKY4 and records its activities (v1 factors)."""
        await self.act("drones", "register_product", product=DRONE, model="Skyward S4 inspection drone",
                       functional_unit="one drone over a 3-year service life", boundary=boundary)  # fmt: skip
        for stage, factor, amount in activities:
            cid = await self.act("drones", "record_activity", product=DRONE, stage=stage, factor=factor,
                                 amount=amount)  # fmt: skip
            assert not self.refused("drones", cid), self.answer("drones", cid)

    async def label(self, product: str = DRONE) -> RegistryReport:
        return self.registry("cqc", await self.act("cqc", "issue_label", product=product))

    async def claim(self, label: str, units: int, certificates: list[str], *, shipped: int = 0,
                    period: str = "2025", product: str = DRONE) -> RegistryReport:  # fmt: skip
        cid = await self.act("drones", "claim_neutral", product=product, label=label, period=period,
                             units=units, units_shipped=shipped or units,
                             certificates=certificates)  # fmt: skip
        return self.registry("drones", cid)

    async def retire_for(self, tonnes: int, purpose: str = f"product_claim:{DRONE}", **fields: Any) -> str:
        """drones buys `tonnes` of CCER from forest and retires them (SF1's, for SKY4's claim by default;
        its own SF3 and SF4 credits are older in its holding); the certificate id."""
        await self.buy("drones", CCER, tonnes)
        cid = await self.retire("drones", tonnes, purpose=purpose, **({"project": "SF1"} | fields))
        return str(self.certificate("drones", cid)["id"])

    def certificate(self, who: str, cid: str) -> dict[str, Any]:
        report = self.registry(who, cid)
        assert report.event is RegistryEventKind.RETIRED, report
        assert isinstance(report.certificate, dict)
        return report.certificate


async def world() -> World:
    """Listed CCER-2024 (offsets, any vintage) and CEA-2025 (allowances), factor table v1 published;
    forest owns SF1 (2024, 3000 t issued: 2700 t to forest, 300 t to BUFFER) and SF2 (2023, 500 t: 450 t),
    and holds 1000 t of CEA; drones owns SF3 (2025, 100 t: 90 t) and SF4 (a VCS project, 2016, 100 t:
    90 t); both have cash."""
    w = World(InProcessExchange(clock=FakeClock(start=START_NS, step=1_000_000)))
    ccer = {"symbol": CCER, "kind": "offset", "standard": "CCER", "registry": "CCER", "vintage": 2024,
            "reference_price": "78.00", "eligible_standards": ["CCER", "VCS"]}  # fmt: skip
    cea = {"symbol": CEA, "kind": "allowance", "standard": "CEA", "registry": "MEE", "vintage": 2025,
           "reference_price": "80.00"}  # fmt: skip
    await w.op("list_instrument", **ccer)
    await w.op("list_instrument", **cea)
    for p, key in KEYS.items():
        roles = ("verifier",) if p == "cqc" else ("trader",)
        await w.ex.submit([w.ex.register(p, key, roles=roles)])
    for p in ("forest", "drones", "other"):
        await w.op("deposit_cash", participant=p, amount="10000000.00")
    # cqc verifies forestry reports and product footprints (ISO 14065 scopes: docs/registry.md)
    await w.op("accredit_verifier", verifier="cqc", scopes=["forestry", "product_footprint"],
               expires="2030-12-31", public_key=w.public, accreditor="CNAS")  # fmt: skip
    for project, owner in (("SF1", "forest"), ("SF2", "forest"), ("SF3", "drones"), ("SF4", "drones")):
        admin_code, latitude, longitude = _SITES[project]
        vcs = project == "SF4"
        await w.op("register_project", project=project, owner=owner, instrument=CCER,
                   standard="VCS" if vcs else "CCER", methodology="VM0047" if vcs else "CCER-14-001-V01",
                   country="CN", project_type="afforestation", start_date="2015-06-01",
                   crediting_start="2015-06-01", crediting_end="2045-05-31", admin_code=admin_code,
                   latitude=latitude, longitude=longitude, origin_registry="VCS" if vcs else "CCER",
                   origin_id=project, validator="South China Validation Co.")  # fmt: skip
    await w.verified("SF1", 2024, 3000)
    await w.verified("SF2", 2023, 500)
    await w.verified("SF3", 2025, 100)
    await w.verified("SF4", 2016, 100)
    await w.publish("v1")
    await w.op("issue_credits", participant="forest", instrument=CEA, serial_start=1, serial_end=1000)
    return w
