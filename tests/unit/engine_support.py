"""Builders for matching-core scenarios: an instrument, orders by participant, compact trade views."""

from __future__ import annotations

import itertools

from services.matching.engine import MatchingEngine, SelfTradePrevention
from shared.domain.commands import CancelOrder, PlaceOrder, ReplaceOrder
from shared.domain.events import EngineEvent, TradeExecuted
from shared.domain.instruments import Instrument, InstrumentKind
from shared.domain.values import OrderType, Side, TimeInForce

__all__ = ["SZEA", "Scenario", "kinds", "szea", "trades"]


def szea(**overrides: object) -> Instrument:
    """Shenzhen allowance, reference 58.00 CNY, tick 0.01, lot 1 t, band +-10 % (52.20 .. 63.80)."""
    fields: dict[str, object] = {
        "symbol": "SZEA-2025",
        "kind": InstrumentKind.ALLOWANCE,
        "standard": "SZEA",
        "registry": "SZ",
        "vintage": 2025,
        "reference_price": 5800,
    }
    fields.update(overrides)
    return Instrument(**fields)  # type: ignore[arg-type]


SZEA = "SZEA-2025"


class Scenario:
    """Drives one engine with readable calls; client order ids are `<participant>-<n>`."""

    def __init__(
        self, *instruments: Instrument, stp: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING
    ):
        self.engine = MatchingEngine(instruments or (szea(),), stp=stp)
        self._ids = itertools.count(1)
        self._clids = itertools.count(1)

    def order(
        self,
        participant: str,
        side: str,
        qty: int,
        price: int = 0,
        *,
        tif: str = "GTC",
        kind: str = "limit",
        clid: str | None = None,
        symbol: str = SZEA,
    ) -> list[EngineEvent]:
        cmd = PlaceOrder(
            order_id=next(self._ids),
            participant=participant,
            client_order_id=clid or f"{participant}-{next(self._clids)}",
            instrument=symbol,
            side=Side(side),
            order_type=OrderType(kind),
            price=price,
            quantity=qty,
            time_in_force=TimeInForce(tif),
        )
        return self.engine.decide(cmd)

    def cancel(self, participant: str, orig: str, *, symbol: str = SZEA) -> list[EngineEvent]:
        return self.engine.decide(
            CancelOrder(
                participant=participant,
                client_order_id=f"{participant}-c{next(self._clids)}",
                instrument=symbol,
                orig_client_order_id=orig,
            )
        )

    def replace(
        self,
        participant: str,
        orig: str,
        price: int,
        qty: int,
        *,
        clid: str | None = None,
        symbol: str = SZEA,
    ) -> list[EngineEvent]:
        return self.engine.decide(
            ReplaceOrder(
                participant=participant,
                client_order_id=clid or f"{participant}-r{next(self._clids)}",
                instrument=symbol,
                orig_client_order_id=orig,
                price=price,
                quantity=qty,
            )
        )

    def depth(
        self, levels: int = 10, symbol: str = SZEA
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self.engine.book(symbol).depth(levels)


def trades(events: list[EngineEvent]) -> list[tuple[int, int, int, int]]:
    """(price, qty, maker order id, taker order id) of each trade, in order."""
    return [
        (e.price, e.quantity, e.maker_order_id, e.taker_order_id)
        for e in events
        if isinstance(e, TradeExecuted)
    ]


def kinds(events: list[EngineEvent]) -> list[str]:
    return [type(e).__name__ for e in events]
