"""Name the first difference between a live core (from its snapshot) and the same core replayed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.matching.processor import MatchingProcessor
from services.settlement.core import Settlement
from services.verification.core import Verification
from services.verification.registry import Registry

__all__ = ["first_difference", "restore_core"]

Core = MatchingProcessor | Verification | Settlement | Registry


def restore_core(name: str, state: bytes) -> Core:
    if name == "matching":
        return MatchingProcessor.restore(state)
    if name == "verification":
        return Verification.restore(state)
    if name == "settlement":
        return Settlement.restore(state)
    if name == "registry":
        return Registry.restore(state)
    raise KeyError(name)


def first_difference(live: Core, replayed: Core) -> str | None:
    """A readable first difference (an account, an order, a book), or None when the states are equal."""
    if live.digest() == replayed.digest():
        return None
    found: str | None = None
    if isinstance(live, MatchingProcessor) and isinstance(replayed, MatchingProcessor):
        found = _matching(live, replayed)
    elif isinstance(live, Verification) and isinstance(replayed, Verification):
        found = _verification(live, replayed)
    elif isinstance(live, Settlement) and isinstance(replayed, Settlement):
        found = _settlement(live, replayed)
    elif isinstance(live, Registry) and isinstance(replayed, Registry):
        found = _registry(live, replayed)
    return found or "the states differ in internal bookkeeping (no account or order differs)"


def _first(keys: Iterable[Any], live: dict[Any, Any], replayed: dict[Any, Any], what: str) -> str | None:
    for key in sorted(set(keys)):
        a, b = live.get(key), replayed.get(key)
        if a != b:
            return f"{what} {key}: live {a!r} != replayed {b!r}"
    return None


def _matching(live: MatchingProcessor, replayed: MatchingProcessor) -> str | None:
    def orders(proc: MatchingProcessor, symbol: str) -> dict[int, tuple[Any, ...]]:
        book = proc.engine.books.get(symbol)
        if book is None:
            return {}
        return {
            o.order_id: (o.side, o.price, o.leaves, o.cum, o.client_order_id) for o in book.orders.values()
        }

    symbols = set(live.engine.books) | set(replayed.engine.books)
    for symbol in sorted(symbols):
        a, b = orders(live, symbol), orders(replayed, symbol)
        if diff := _first(a.keys() | b.keys(), a, b, f"{symbol} order"):
            return diff
        halted = [
            p.engine.books[symbol].halted if symbol in p.engine.books else None for p in (live, replayed)
        ]
        if halted[0] != halted[1]:
            return f"{symbol} halted: live {halted[0]} != replayed {halted[1]}"
    if live.engine.next_trade_id != replayed.engine.next_trade_id:
        return f"next trade id: live {live.engine.next_trade_id} != replayed {replayed.engine.next_trade_id}"
    return None


def _verification(live: Verification, replayed: Verification) -> str | None:
    accounts = live.state.accounts.keys() | replayed.state.accounts.keys()
    a = {p: live.account(p) for p in accounts}
    b = {p: replayed.account(p) for p in accounts}
    if diff := _first(accounts, a, b, "account"):
        return diff
    orders = live.state.orders.keys() | replayed.state.orders.keys()
    return _first(orders, live.state.orders, replayed.state.orders, "open order")


def _settlement(live: Settlement, replayed: Settlement) -> str | None:
    a, b = live.balances(), replayed.balances()
    if diff := _first(a.keys() | b.keys(), a, b, "cash of account"):
        return diff
    accounts = sorted(a.keys() | b.keys())
    ha = {p: live.holdings(p) for p in accounts}
    hb = {p: replayed.holdings(p) for p in accounts}
    return _first(accounts, ha, hb, "holdings of account")


def _registry(live: Registry, replayed: Registry) -> str | None:
    a, b = live.totals(), replayed.totals()
    if diff := _first(a.keys() | b.keys(), a, b, "registry totals"):
        return diff
    certificates = live.state.certificates.keys() | replayed.state.certificates.keys()
    return _first(certificates, live.state.certificates, replayed.state.certificates, "certificate")
