"""Rich renderings of the read models: books, balances, holdings by serial block, the demo summary."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from services.cli.book_cli import print_depth
from services.cli.compliance_view import compliance_lines
from services.cli.readmodel import ExchangeState
from services.cli.registry_cli import print_chain, print_registry
from services.cli.registry_view import registry_rows
from shared.domain.ledger import SerialRange
from shared.domain.values import fen_for_people, fen_to_price
from shared.reports import DepthView

__all__ = [
    "conservation_problems",
    "print_balances",
    "print_book",
    "print_depth",
    "print_summary",
    "session_lines",
]


def print_book(console: Console, state: ExchangeState, symbol: str, levels: int = 10) -> None:
    book = state.matching.engine.book(symbol)
    bids, asks = book.depth(levels)
    depth = DepthView(
        instrument=symbol, halted=book.halted, bids=[(fen_to_price(p), q) for p, q in bids],
        asks=[(fen_to_price(p), q) for p, q in asks],
    )  # fmt: skip
    print_depth(console, depth)


def print_balances(
    console: Console, state: ExchangeState, participant: str | None = None, serials: bool = False
) -> None:
    """Cash, and per instrument the tonnes held by project and vintage (the serial blocks on request)."""
    title = "Balances and holdings" + (" (serial blocks, oldest first)" if serials else "")
    table = Table(title=title)
    columns = ("account", "cash CNY", "instrument", "tonnes", "by project and vintage")
    for col in (*columns, *(("serial blocks",) if serials else ())):
        table.add_column(col, justify="right" if col in ("cash CNY", "tonnes") else "left")
    balances = state.settlement.balances()
    for account in sorted(balances):
        if participant is not None and account != participant:
            continue
        holdings = state.settlement.holdings(account)
        first = True
        for symbol in sorted(holdings) or [""]:
            blocks = holdings.get(symbol, [])
            row = [
                account if first else "",
                fen_for_people(balances[account]) if first else "",
                symbol,
                f"{sum(b.tonnes for b in blocks):,}" if symbol else "",
                _by_origin(state, symbol, blocks),
            ]
            if serials:
                row.append(", ".join(f"{b.start}-{b.end}" for b in blocks))
            table.add_row(*row)
            first = False
    console.print(table)


def _by_origin(state: ExchangeState, symbol: str, blocks: list[SerialRange]) -> str:
    """Tonnes per (project, vintage) of the blocks, from where the registry issued each serial."""
    totals: dict[str, int] = {}
    origins = state.registry.state.origins
    for block in blocks:
        for piece, origin in origins.split(symbol, block):
            if origin is not None and origin.project:
                where = f"{origin.project} {origin.vintage}"
            else:  # an allowance: its vintage is the instrument's
                listed = state.registry.state.instruments.get(symbol)
                where = f"vintage {listed.vintage}" if listed is not None and listed.vintage else "-"
            totals[where] = totals.get(where, 0) + piece.tonnes
    return ", ".join(f"{where}: {tonnes:,} t" for where, tonnes in sorted(totals.items()))


def conservation_problems(state: ExchangeState) -> list[str]:
    """Totals that fail to add up: cash vs deposits, tonnes vs issuance, negatives, double-held serials."""
    problems: list[str] = []
    try:
        state.settlement.check_invariants()
        state.verification.check_invariants()
    except AssertionError as exc:
        problems.append(str(exc))
    cash = sum(state.settlement.balances().values())
    if cash != state.deposited - state.withdrawn:
        problems.append(f"cash {cash} != deposited {state.deposited} - withdrawn {state.withdrawn}")
    held: dict[str, int] = {}
    for account in state.settlement.balances():
        for symbol, blocks in state.settlement.holdings(account).items():
            held[symbol] = held.get(symbol, 0) + sum(b.tonnes for b in blocks)
    for symbol in state.issued:  # retired, cancelled, surrendered serials left the holdings, were issued
        out = sum(r.tonnes for r in state.settlement.retired(symbol))
        if out:
            held[symbol] = held.get(symbol, 0) + out
    if held != state.issued:
        problems.append(f"held + retired {held} != issued {state.issued}")
    try:
        # registry_rows also checks that no serial is in two states or accounts
        problems.extend(
            f"issued != accounted in {row}" for row in registry_rows(state) if row.issued != row.accounted
        )
    except AssertionError as exc:
        problems.append(str(exc))
    return problems


_ORDER_COMMANDS = ("new_order", "cancel_order", "replace_order")
_AMENDS = ("cancel_order", "replace_order")


def session_lines(state: ExchangeState) -> list[str]:
    """The session's counts, each line adding up: commands logged, then what became of the orders."""
    c, refused = state.counts, state.refusals
    new, cancels, replaces = (c.get(t, 0) for t in ("OrderSubmitted", "CancelSubmitted", "ReplaceSubmitted"))
    at_intake = sum(refused.get(("intake", command), 0) for command in _ORDER_COMMANDS)
    by_verification = refused.get(("verification", "new_order"), 0)
    by_matching = refused.get(("matching", "new_order"), 0)
    verified = c.get("OrderVerified", 0)
    others = sum(n for (who, command), n in refused.items() if who != "intake" and command in _AMENDS)
    return [
        f"commands logged {new + cancels + replaces + at_intake:,} = new orders {new:,} "
        f"+ cancels {cancels:,} + replaces {replaces:,} + refused by intake {at_intake:,}",
        f"new orders {new:,} = verified {verified:,} + refused by verification {by_verification:,} "
        f"(funds, credits, limits); of the verified, refused by matching {by_matching:,}",
        f"cancels and replaces refused {others:,}; trades {c.get('TradeExecuted', 0):,}, "
        f"settled {c.get('TradeSettled', 0):,}",
        f"queries {c.get('QuerySubmitted', 0):,} = balances {c.get('BalancesAnswered', 0):,} "
        f"+ open orders {c.get('OpenOrdersAnswered', 0):,} + order status {c.get('OrderStatusAnswered', 0):,}"
        f"; mass cancels {c.get('MassCancelled', 0):,}",
    ]


def print_summary(console: Console, state: ExchangeState) -> None:
    trades = state.counts.get("TradeExecuted", 0)
    settled = state.counts.get("TradeSettled", 0)
    console.rule("greenex demo summary")
    console.print(f"log length {state.seq}, head hash {state.head_hash.hex()}")
    for line in session_lines(state):
        console.print(line, highlight=False)
    for symbol in sorted(state.matching.engine.books):
        print_book(console, state, symbol, levels=5)
    print_balances(console, state)
    if state.registry.state.projects:
        print_registry(console, state)
        print_chain(console, state)
    for line in compliance_lines(state):
        console.print(line, highlight=False)
    problems = conservation_problems(state)
    if trades != settled:
        problems.append(f"{trades} trades but {settled} settlements")
    if problems:
        console.print("[bold red]CONSERVATION CHECK FAILED[/]")
        for p in problems:
            console.print(f"  - {p}")
    else:
        cash = fen_for_people(state.deposited - state.withdrawn)
        console.print(
            f"[bold green]conservation OK[/]: cash {cash} CNY incl. fees = deposits; "
            f"tonnes held + retired, cancelled or surrendered = issued {state.issued}; no negative balance; "
            "no serial held twice"
        )
    console.print(f"state digest {state.digest()}")
