"""Prices from clients: off the tick is `invalid_tick` (also finer than a fen), and every refusal speaks
CNY, the unit clients send."""

from __future__ import annotations

import pytest

from shared.domain.base import Refused
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.reasons import Reason
from shared.domain.rules import price_in_fen, price_problem

INST = Instrument(
    symbol="CEA-2025", kind=InstrumentKind.ALLOWANCE, standard="CEA", registry="CN", vintage=2025,
    reference_price=5000, tick_size=5, band_bps=1000,
)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "reason"),
    [("58.005", Reason.INVALID_TICK), ("1.0001", Reason.INVALID_TICK), ("abc", Reason.MALFORMED),
     ("1e-999999", Reason.MALFORMED), ("NaN", Reason.MALFORMED), ("", Reason.MALFORMED)],
)
def test_a_price_that_is_no_fen_amount_is_refused_with_its_reason(text: str, reason: Reason) -> None:
    with pytest.raises(Refused) as refused:
        price_in_fen(text)
    assert refused.value.reason is reason


def test_prices_in_fen_and_refusals_in_cny() -> None:
    assert price_in_fen("50.00") == 5000
    off_tick = (Reason.INVALID_TICK, "price 50.03 CNY is not a multiple of the tick 0.05")
    assert price_problem(INST, 5003) == off_tick
    reason, text = price_problem(INST, 9000) or (None, "")
    assert reason is Reason.OUTSIDE_PRICE_BAND
    assert text == "price 90.00 CNY is outside today's band 45.00-55.00 CNY"
