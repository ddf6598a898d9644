"""The registry end to end over real Redis and the real services: verified issuance, retirement
certificates, product labels and neutrality claims, with every rejection path of the issue."""

from __future__ import annotations

import hashlib
import itertools
from decimal import Decimal
from typing import Any

import pytest

from services.cli.registry_view import registry_rows, serial_states
from shared.attestation import new_verifier_key, sign_report
from shared.client import ExchangeClient
from shared.domain.certificates import certificate_hash
from shared.domain.footprint import load_table_file
from shared.domain.labels import table_sha256
from shared.domain.ledger import BUFFER_ACCOUNT
from tests.integration.exchange import Exchange
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

HASH = hashlib.sha256(b"verification report").hexdigest()
_SITES = itertools.count(1)  # every project its own site: the same one would be held for review


def site() -> dict[str, str]:
    n = next(_SITES)
    return {"admin_code": "441200", "latitude": str(Decimal(20) + Decimal(n) / 20), "longitude": "112.5"}


class Registry:
    """One offset instrument with a project owner, an accredited verifier and a buyer."""

    def __init__(self, ex: Exchange, symbol: str, owner: ExchangeClient, verifier: ExchangeClient) -> None:
        self.ex, self.symbol, self.owner, self.verifier = ex, symbol, owner, verifier
        self.operator = ex.operator
        self.private_key, self.public_key = new_verifier_key()

    @classmethod
    async def make(cls, ex: Exchange, **window: Any) -> Registry:
        symbol = await ex.instrument("CCER", reference="78.00", kind="offset", **window)
        owner = await ex.participant("forest")
        verifier = await ex.participant("verifier", roles=("verifier",))
        reg = cls(ex, symbol, owner, verifier)
        # forestry reports and product footprints (labels): docs/registry.md, accreditation scopes
        scopes = ["forestry", "product_footprint"]
        await ex.op("accredit_verifier", verifier=verifier.participant, scopes=scopes, expires="2030-12-31",
                    public_key=reg.public_key)  # fmt: skip
        return reg

    async def project(self, owner: ExchangeClient | None = None, **extra: Any) -> str:
        project = self.ex.unique("P").replace("-", "")
        await self.ex.op(
            "register_project",
            project=project,
            owner=(owner or self.owner).participant,
            instrument=self.symbol,
            standard="CCER",
            methodology="CCER-14-001-V01",
            country="CN",
            project_type="afforestation",
            start_date="2021-01-01",
            crediting_start="2021-01-01",
            crediting_end="2040-12-31",
            origin_registry="CCER",
            origin_id=project,
            validator="validator",
            **(site() | extra),
        )
        return project

    async def verify(
        self,
        project: str,
        tonnes: int,
        period: tuple[str, str] = ("2024-01-01", "2024-12-31"),
        vintage: int = 2024,
        verifier: ExchangeClient | None = None,
    ) -> dict[str, Any]:
        """Submit a report and return the registry's answer to the verifier."""
        who = verifier or self.verifier
        cid = self.ex.unique("vr")
        await who.send(
            "registry",
            client_order_id=cid,
            action="submit_verification",
            args={
                "project": project,
                "vintage": vintage,
                "period_start": period[0],
                "period_end": period[1],
                "tonnes": tonnes,
                "report_hash": HASH,
                "signature": sign_report(self.private_key, project, *period, vintage, tonnes, HASH),
            },
        )
        return await answer(self.ex, who, cid)

    async def issue(self, report_id: str, tonnes: int) -> dict[str, Any] | None:
        """Ask for issuance; the registry's rejection, or None once the owner's block is reported."""
        cid = self.ex.unique("iss")
        await self.operator.operator("issue_verified", cid, report_id=report_id, tonnes=tonnes)
        seen: list[dict[str, Any]] = []

        async def answered() -> bool:
            seen.extend(await self.operator.reports(block_ms=20))
            seen.extend(await self.owner.reports(block_ms=20))
            return any(
                x.get("client_order_id") == cid
                or (x.get("event") == "credits_issued" and x.get("report_id") == report_id)
                for x in seen
            )

        await eventually(answered, timeout=10)
        rejected = [x for x in seen if x.get("client_order_id") == cid]
        return rejected[0] if rejected else None


async def answer(ex: Exchange, client: ExchangeClient, cid: str) -> dict[str, Any]:
    """The first report about `cid`: a registry answer or a rejection at the edge."""
    got = await ex.reports_until(client, lambda r: any(x.get("client_order_id") == cid for x in r))
    return next(x for x in got if x.get("client_order_id") == cid)


def code(report: dict[str, Any]) -> str:
    return str(report["reason"]["code"])


async def retire(
    ex: Exchange, client: ExchangeClient, symbol: str, qty: int, purpose: str = "voluntary"
) -> dict[str, Any]:
    cid = ex.unique("ret")
    await client.send(
        "retire_credits",
        client_order_id=cid,
        instrument=symbol,
        quantity=qty,
        beneficiary="Skyward Drones FY2025",
        reason="product neutrality",
        purpose=purpose,
    )
    return await answer(ex, client, cid)


async def _published(ex: Exchange) -> bool:
    state = await ex.drained()
    return "v1" in state.registry.state.factor_tables


async def issued(reg: Registry, tonnes: int) -> tuple[str, str]:
    """A project with one accepted report and `tonnes` issued against it: (project, report id)."""
    project = await reg.project()
    accepted = await reg.verify(project, tonnes)
    assert accepted["event"] == "verification_accepted", accepted
    assert await reg.issue(accepted["report_id"], tonnes) is None
    return project, accepted["report_id"]


async def test_verified_issuance_buffer_trade_and_retirement_certificate(
    exchange: Exchange,
) -> None:
    """Verification -> issuance (10 % buffer, serials CCER-<project>-<vintage>-<start>-<end>) -> trade ->
    retirement: the certificate names the serials and hashes to what the log says; totals add up."""
    reg = await Registry.make(exchange)
    project, report_id = await issued(reg, 1000)
    buyer = await exchange.participant("buyer")
    await reg.owner.send(
        "new_order",
        client_order_id="s1",
        instrument=reg.symbol,
        side="sell",
        order_type="limit",
        price="78.00",
        quantity=100,
    )
    await buyer.send(
        "new_order",
        client_order_id="b1",
        instrument=reg.symbol,
        side="buy",
        order_type="limit",
        price="78.00",
        quantity=100,
    )
    await exchange.reports_until(buyer, lambda r: any(x["type"] == "settlement" for x in r))
    got = await retire(exchange, buyer, reg.symbol, 60)
    assert got["event"] == "retired", got
    cert = got["certificate"]
    assert [s["label"] for s in cert["serials"]] == [f"CCER-{project}-2024-1-60"]
    assert (cert["tonnes"], cert["vintages"], cert["beneficiary"]) == (60, [2024], "Skyward Drones FY2025")
    assert cert["hash"] == certificate_hash(cert)
    entry = (await exchange.log.read(cert["seq"] - 1, 1))[0]
    assert (entry.type, entry.hash.hex()) == ("CreditsRetired", cert["entry_hash"])
    state = await exchange.drained()
    rows = {(r.project, r.vintage): r for r in registry_rows(state) if r.instrument == reg.symbol}
    row = rows[(project, 2024)]
    assert (row.issued, row.held, row.frozen, row.retired, row.cancelled, row.buffer) == (
        1000,
        840,
        0,
        60,
        0,
        100,
    )
    assert [(b.start, b.end) for b in state.settlement.holdings(BUFFER_ACCOUNT)[reg.symbol]] == [(901, 1000)]
    assert state.registry.state.report_issued[report_id] == 1000
    assert serial_states(state)  # every serial in exactly one state (raises otherwise)


async def test_verification_rejections(exchange: Exchange) -> None:
    """Only accredited verifiers verify, never their own project, never a verified period twice, never
    a vintage the instrument does not pool, never an unknown project."""
    reg = await Registry.make(exchange, min_vintage=2024)
    project = await reg.project()
    assert code(await reg.verify(project, 10, verifier=reg.owner)) == "not_a_verifier"
    own = await reg.project(owner=reg.verifier)
    assert code(await reg.verify(own, 10)) == "conflict_of_interest"
    assert code(await reg.verify("NOPE", 10)) == "unknown_project"
    assert code(await reg.verify(project, 10, ("2023-01-01", "2023-12-31"), 2023)) == "ineligible_credits"
    assert (await reg.verify(project, 10))["event"] == "verification_accepted"
    assert code(await reg.verify(project, 10, ("2024-06-01", "2025-05-31"))) == "overlapping_period"
    assert (await reg.verify(project, 10, ("2025-01-01", "2025-12-31"), 2025))["event"] == (
        "verification_accepted"
    )
    assert code(await reg.verify(project, 10, ("2031-01-01", "2031-12-31"), 2031)) == "ex_ante_period"


async def test_issuance_rejections(exchange: Exchange) -> None:
    """Offsets are never issued without a verification report, nor beyond the verified tonnes."""
    reg = await Registry.make(exchange)
    cid = exchange.unique("direct")
    await reg.operator.operator(
        "issue_credits",
        cid,
        participant=reg.owner.participant,
        instrument=reg.symbol,
        serial_start=1,
        serial_end=10,
    )
    edge = await answer(exchange, reg.operator, cid)
    assert (edge["exec_type"], code(edge)) == ("rejected", "unverified_issuance")
    got = await reg.issue("VR-999999", 10)
    assert got is not None
    assert (got["event"], code(got)) == ("rejected", "unverified_issuance")
    project = await reg.project()
    accepted = await reg.verify(project, 100)
    got = await reg.issue(accepted["report_id"], 101)
    assert got is not None
    assert code(got) == "over_issuance"
    assert await reg.issue(accepted["report_id"], 60) is None
    got = await reg.issue(accepted["report_id"], 41)
    assert got is not None
    assert code(got) == "over_issuance"
    state = await exchange.drained()
    assert state.registry.state.report_issued[accepted["report_id"]] == 60


async def test_retired_credits_never_sell_or_retire_again(exchange: Exchange) -> None:
    """Retired tonnes leave the holding for good: selling or retiring them again is refused."""
    reg = await Registry.make(exchange)
    await issued(reg, 100)  # 90 to the owner, 10 to the buffer
    assert (await retire(exchange, reg.owner, reg.symbol, 90))["event"] == "retired"
    again = await retire(exchange, reg.owner, reg.symbol, 1)
    assert (again["event"], code(again)) == ("rejected", "insufficient_credits")
    await reg.owner.send(
        "new_order",
        client_order_id="x1",
        instrument=reg.symbol,
        side="sell",
        order_type="limit",
        price="78.00",
        quantity=1,
    )
    sold = await answer(exchange, reg.owner, "x1")
    assert (sold["exec_type"], code(sold)) == ("rejected", "insufficient_credits")
    cid = exchange.unique("cancel")
    await reg.operator.operator(
        "cancel_credits",
        cid,
        participant=BUFFER_ACCOUNT,
        instrument=reg.symbol,
        quantity=4,
        reason="reversal: wildfire",
    )
    state = await exchange.drained()
    row = next(r for r in registry_rows(state) if r.instrument == reg.symbol)
    assert (row.issued, row.held, row.retired, row.cancelled, row.buffer) == (100, 0, 90, 4, 6)


async def test_product_label_and_neutrality_claim(exchange: Exchange) -> None:
    """A verified footprint label, then a neutral claim accepted only with enough of the maker's own,
    unused retirement certificates; a verifier cannot label its own product."""
    reg = await Registry.make(exchange)
    await issued(reg, 100)
    maker, product = reg.owner, exchange.unique("drone")

    async def act(client: ExchangeClient, action: str, **args: Any) -> dict[str, Any]:
        cid = exchange.unique("a")
        await client.send("registry", client_order_id=cid, action=action, args=args)
        return await answer(exchange, client, cid)

    registered = await act(
        maker,
        "register_product",
        product=product,
        model="SKY-4",
        boundary="cradle-to-grave",
        functional_unit="one drone over a 3-year life",
    )
    assert registered["event"] == "product_registered"
    # Factors come from a table published into the log (a second publication is refused: harmless).
    await exchange.op("publish_factor_table", version="v1", sha256=table_sha256(load_table_file("v1")))
    await eventually(lambda: _published(exchange), timeout=10)
    unknown = await act(
        maker, "record_activity", product=product, stage="materials", factor="unobtainium", amount="1"
    )
    assert code(unknown) == "unknown_factor"
    for stage, factor, amount in (
        ("materials", "aluminium_primary", "1.2"),
        ("materials", "battery_li_ion_capacity", "0.1"),
        ("use", "electricity_cn_grid", "150"),
    ):
        await maker.send(
            "registry",
            client_order_id=exchange.unique("a"),
            action="record_activity",
            args={"product": product, "stage": stage, "factor": factor, "amount": amount},
        )
    for stage in ("production", "distribution", "end_of_life"):
        cut = await act(maker, "declare_cutoff", product=product, stage=stage,
                        justification="below 1 % of the footprint in the screening study")  # fmt: skip
        assert cut["event"] == "cut_off_declared", cut
    own = await act(maker, "issue_label", product=product)
    assert code(own) == "not_a_verifier"
    label = await act(reg.verifier, "issue_label", product=product)
    # 1.2 x 16.1 + 0.1 x 75 + 150 x 0.5703 kg = 19.32 + 7.5 + 85.545 = 112.365 kg
    assert (label["event"], label["total_grams"]) == ("label_issued", 112_365)
    purpose = f"product_claim:{product}"
    first = await retire(exchange, maker, reg.symbol, 5, purpose)
    terms = {"product": product, "label": label["label_id"], "period": "2025", "units_shipped": 100}
    short = await act(maker, "claim_neutral", units=100, certificates=[first["certificate"]["id"]], **terms)
    assert code(short) == "insufficient_retirements"  # 100 x 112.365 kg = 11.24 t -> 12 t needed
    scope1 = await retire(exchange, maker, reg.symbol, 7, "corporate_inventory")
    other = await act(maker, "claim_neutral", units=1, certificates=[scope1["certificate"]["id"]], **terms)
    assert code(other) == "retirement_purpose_mismatch"
    second = await retire(exchange, maker, reg.symbol, 7, purpose)
    certs = [first["certificate"]["id"], second["certificate"]["id"]]
    claim = await act(maker, "claim_neutral", units=100, certificates=certs, **terms)
    assert (claim["event"], claim["required_tonnes"]) == ("neutrality_claimed", 12)
    reused = await act(maker, "claim_neutral", units=1, certificates=certs[:1], **terms)
    assert code(reused) == "certificate_unusable"
    verifier_product = exchange.unique("proj")
    await act(
        reg.verifier,
        "register_product",
        product=verifier_product,
        model="V",
        boundary="cradle-to-gate",
        functional_unit="one unit",
    )
    await reg.verifier.send(
        "registry",
        client_order_id=exchange.unique("a"),
        action="record_activity",
        args={
            "product": verifier_product,
            "stage": "production",
            "factor": "electricity_cn_grid",
            "amount": "10",
        },
    )
    conflict = await act(reg.verifier, "issue_label", product=verifier_product)
    assert code(conflict) == "conflict_of_interest"


async def test_a_sell_of_credits_the_window_now_excludes_is_refused(exchange: Exchange) -> None:
    """After set_eligibility excludes vintage 2024, selling those credits gets ineligible_credits on the
    seller's report stream, and nothing else changes: no order rests, nothing is frozen or moved."""
    reg = await Registry.make(exchange)
    await issued(reg, 100)  # 90 t of vintage 2024 to the owner
    before = await exchange.drained()
    await exchange.op("set_eligibility", instrument=reg.symbol, min_vintage=2025)
    await reg.owner.send(
        "new_order",
        client_order_id="late1",
        instrument=reg.symbol,
        side="sell",
        order_type="limit",
        price="78.00",
        quantity=10,
    )
    sold = await answer(exchange, reg.owner, "late1")
    assert (sold["exec_type"], code(sold)) == ("rejected", "ineligible_credits")
    after = await exchange.drained()
    owner = reg.owner.participant
    assert after.verification.account(owner) == before.verification.account(owner)
    assert after.verification.account(owner)[2][reg.symbol] == (90, 0)
    assert after.settlement.holdings(owner) == before.settlement.holdings(owner)
    assert not after.matching.engine.books[reg.symbol].orders
    assert serial_states(after)


async def test_a_reversal_cancels_pooled_buffer_tonnes_and_the_operator_owns_no_project(
    exchange: Exchange,
) -> None:
    """report_reversal cancels BUFFER tonnes linked to the loss event, shown on the project; a project
    owned by the operator never enters the log."""
    reg = await Registry.make(exchange)
    project, _ = await issued(reg, 100)  # 10 t to the buffer
    cid = exchange.unique("rev")
    await reg.operator.operator("report_reversal", cid, project=project, tonnes=4, description="wildfire")
    state = await exchange.drained()
    reversal = state.registry.state.reversals[cid]
    assert (reversal.cancelled, reversal.certificate[:3]) == (4, "RC-")
    row = next(r for r in registry_rows(state) if r.instrument == reg.symbol)
    assert (row.issued, row.cancelled, row.buffer) == (100, 4, 6)
    cid = exchange.unique("own")
    await reg.operator.operator("register_project", cid, project=cid, owner="operator", instrument=reg.symbol,
                                standard="CCER")  # fmt: skip
    refused = await answer(exchange, reg.operator, cid)
    assert code(refused) == "reserved_owner"
