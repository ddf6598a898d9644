"""Retirement records (issue 15, item 4): date, purpose, beneficiary and identifier on the certificate, and
the retiring holder's choice of blocks (project, vintage or serial ranges), only from what it holds free."""

from __future__ import annotations

from services.settlement.core import Settlement
from services.verification.core import Verification
from shared.domain.certificates import SerialOrigins, certificate, certificate_hash
from shared.domain.ledger import SerialRange
from shared.domain.registry import CreditsRetired, RetirementKind
from tests.unit.registry_world import CCER, World, world


def _ranges(cert: dict[str, object]) -> list[tuple[int, int]]:
    serials = cert["serials"]
    assert isinstance(serials, list)
    return [(s["start"], s["end"]) for s in serials]


def _cores(w: World) -> tuple[Settlement, Verification]:
    settlement, verification = w.ex.core("settlement").processor, w.ex.core("verification").processor
    assert isinstance(settlement, Settlement)
    assert isinstance(verification, Verification)
    return settlement, verification


async def test_a_certificate_states_date_purpose_beneficiary_and_identifier() -> None:
    """The record says when (the log's date), what for, for whom and under which reference; all of it is
    under the certificate's hash."""
    w = await world()
    cid = await w.retire("forest", 5, purpose="product_claim:SKY4", identifier="PO-2025-117")
    cert = w.certificate("forest", cid)
    assert (cert["date"], cert["purpose"], cert["beneficiary"], cert["identifier"]) == (
        "2025-06-01", "product_claim:SKY4", "forest beneficiary", "PO-2025-117"
    )  # fmt: skip
    for purpose in ("corporate_inventory", "compliance", "voluntary"):
        assert w.certificate("forest", await w.retire("forest", 1, purpose=purpose))["purpose"] == purpose


async def test_an_unknown_purpose_is_refused_at_the_edge() -> None:
    """Purposes are a closed set (plus product_claim:<product id>)."""
    w = await world()
    for purpose in ("scope1", "product_claim:", "product_claim:bad id"):
        assert w.refused("forest", await w.retire("forest", 1, purpose=purpose)) == "malformed"


def test_certificates_logged_before_records_keep_their_hash() -> None:
    """An old CreditsRetired (no date, purpose or identifier) gives the same body it always did."""
    old = CreditsRetired(
        certificate_id="RC-9", participant="d", beneficiary="b", reason="r", instrument=CCER,
        serials=(SerialRange(1, 2),), tonnes=2, kind=RetirementKind.RETIRE, client_order_id="x",
        request_seq=8,
    )  # fmt: skip
    body = certificate(old, 10, b"\x01" * 32, SerialOrigins())
    assert set(body) == {"id", "kind", "participant", "beneficiary", "reason", "instrument", "serials",
                         "tonnes", "vintages", "seq", "entry_hash", "hash"}  # fmt: skip
    assert body["hash"] == certificate_hash(body)


async def test_the_holder_chooses_a_vintage_or_a_project() -> None:
    """forest holds SF1 2024 (serials 1-2700) before SF2 2023 (3001-3450): first in, first out would
    retire 2024 serials; asking for vintage 2023 (or project SF2) retires the oldest of those instead."""
    w = await world()
    by_vintage = w.certificate("forest", await w.retire("forest", 5, purpose="voluntary", vintage=2023))
    assert _ranges(by_vintage) == [(3001, 3005)]
    assert by_vintage["vintages"] == [2023]
    by_project = w.certificate("forest", await w.retire("forest", 3, purpose="voluntary", project="SF2"))
    assert _ranges(by_project) == [(3006, 3008)]
    both = w.certificate("forest", await w.retire("forest", 2, purpose="voluntary", project="SF1",
                                                  vintage=2024))  # fmt: skip
    assert _ranges(both) == [(1, 2)]
    none = await w.retire("forest", 1, purpose="voluntary", project="SF1", vintage=2023)
    assert w.refused("forest", none) == "serials_not_free"


async def test_explicit_serial_ranges_retire_exactly_those() -> None:
    """Two ranges across both projects leave the market; the holding keeps the rest in its order."""
    w = await world()
    cid = await w.retire("forest", 15, purpose="voluntary", serials=[[3100, 3109], [11, 15]])
    assert _ranges(w.certificate("forest", cid)) == [(11, 15), (3100, 3109)]
    settlement, verification = _cores(w)
    assert settlement.holdings("forest")[CCER] == [
        SerialRange(1, 10), SerialRange(16, 2700), SerialRange(3001, 3099), SerialRange(3110, 3450)
    ]  # fmt: skip
    assert verification.account("forest")[2][CCER] == (3135, 0)
    settlement.check_invariants()
    verification.check_invariants()


async def test_serials_frozen_by_open_sells_or_not_held_are_refused_and_nothing_stays_frozen() -> None:
    """A resting sell of 900 t freezes the oldest eligible serials (1-900): retiring 1-5 is refused
    (`serials_not_free`), as are serials forest never held; the refused retirement freezes nothing, and
    the free serials 901-905 still retire. The sell then delivers exactly its frozen serials."""
    w = await world()
    await w.send("forest", type="new_order", instrument=CCER, side="sell", order_type="limit", price="80.00",
                 quantity=900)  # fmt: skip
    frozen = await w.retire("forest", 5, purpose="voluntary", serials=[[1, 5]])
    assert w.refused("forest", frozen) == "serials_not_free"
    assert "frozen for sells" in str(w.registry("forest", frozen).reason)
    elsewhere = await w.retire("forest", 5, purpose="voluntary", serials=[[3700, 3704]])
    assert w.refused("forest", elsewhere) == "serials_not_free"
    settlement, verification = _cores(w)
    assert verification.account("forest")[2][CCER] == (3150, 900)  # only the sell's freeze
    free = await w.retire("forest", 5, purpose="voluntary", serials=[[901, 905]])
    assert _ranges(w.certificate("forest", free)) == [(901, 905)]
    await w.send("drones", type="new_order", instrument=CCER, side="buy", order_type="limit", price="80.00",
                 quantity=900)  # fmt: skip
    assert settlement.holdings("drones")[CCER][-1] == SerialRange(1, 900)  # after its own SF3 and SF4
    settlement.check_invariants()
    verification.check_invariants()


async def test_serial_ranges_must_add_up_to_the_quantity() -> None:
    """The ranges are the retirement: 10 t named, 12 t asked for is malformed, as are overlapping ranges."""
    w = await world()
    assert w.refused("forest", await w.retire("forest", 12, purpose="voluntary", serials=[[1, 10]])) == (
        "malformed"
    )
    overlap = await w.retire("forest", 10, purpose="voluntary", serials=[[1, 5], [5, 9]])
    assert w.refused("forest", overlap) == "malformed"
