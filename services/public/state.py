"""The public projection's state: only what may be published, as canonical msgspec structs.

No participant id, secret or per-account quantity is ever stored here: resting orders are kept by their
anonymous order id (to keep the L2 book), certificates without the account that retired, labels and
claims without their maker. Money is integer fen, quantities integer tonnes.
"""

from __future__ import annotations

import msgspec

from shared.domain.certificates import Origin

__all__ = [
    "INTERVALS",
    "KEEP_CANDLES",
    "KEEP_CHECKPOINTS",
    "TAPE_LENGTH",
    "Candle",
    "Checkpoint",
    "Claim",
    "Issuance",
    "Label",
    "Market",
    "Piece",
    "Project",
    "PublicCertificate",
    "PublicState",
    "Report",
    "Reversal",
    "Surrendered",
    "Trade",
    "vwap",
]

# Candle widths (ns) by name; every candle is bucketed by the log's event_ns, never a wall clock.
INTERVALS: dict[str, int] = {"1m": 60_000_000_000, "1h": 3_600_000_000_000, "1d": 86_400_000_000_000}
KEEP_CANDLES: dict[str, int] = {"1m": 1440, "1h": 720, "1d": 100_000}  # a day of minutes, a month of hours
TAPE_LENGTH = 100
KEEP_CHECKPOINTS = 50


def vwap(value: int, volume: int) -> int:
    """Volume-weighted average price in integer fen, rounded half up (value is sum of fen x tonnes)."""
    return (2 * value + volume) // (2 * volume) if volume else 0


class Candle(msgspec.Struct, array_like=True):
    """One bucket: start (ns), open, high, low, close (fen), volume (t), trades, value (fen x t)."""

    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int
    value: int


class Trade(msgspec.Struct, frozen=True, array_like=True):
    trade_id: int
    ns: int
    price: int
    quantity: int
    aggressor: str  # buy | sell: the side of the order that took liquidity


class Market(msgspec.Struct):
    """One instrument's public market."""

    symbol: str
    kind: str
    standard: str
    vintage: int
    tick: int
    lot: int
    reference: int  # fen: the centre of the daily band
    band_bps: int
    halted: bool = False
    bids: dict[int, int] = msgspec.field(default_factory=dict)  # price -> resting tonnes
    asks: dict[int, int] = msgspec.field(default_factory=dict)
    tape: list[Trade] = msgspec.field(default_factory=list)  # newest last
    candles: dict[str, list[Candle]] = msgspec.field(default_factory=dict)


class Project(msgspec.Struct, frozen=True):
    project: str
    name: str
    instrument: str
    standard: str
    methodology: str
    country: str
    project_type: str
    buffer_bps: int
    status: str
    registered_ns: int


class Report(msgspec.Struct, frozen=True):
    report_id: str
    project: str
    verifier: str  # an accredited verifier's id: a public role, who signs a public statement
    vintage: int
    period_start: str
    period_end: str
    tonnes: int
    report_hash: str
    accepted_ns: int


class Issuance(msgspec.Struct, frozen=True):
    seq: int
    instrument: str
    project: str
    vintage: int
    report_id: str
    start: int
    end: int
    buffer: bool
    ns: int


class Piece(msgspec.Struct, frozen=True, array_like=True):
    label: str
    start: int
    end: int
    project: str
    vintage: int


class PublicCertificate(msgspec.Struct, frozen=True):
    """A retirement, cancellation or surrender, as the public sees it: no account id."""

    id: str
    kind: str  # retire | cancel | surrender
    beneficiary: str
    reason: str
    purpose: str
    identifier: str
    instrument: str
    tonnes: int
    serials: tuple[Piece, ...]
    seq: int  # the log entry that took the tonnes out of the market
    ns: int
    scheme: str = ""  # surrenders: the compliance scheme and year
    year: int = 0


class Reversal(msgspec.Struct, frozen=True):
    project: str
    instrument: str
    tonnes: int
    seq: int
    ns: int


class Surrendered(msgspec.Struct):
    """Tonnes surrendered per scheme, year and instrument (aggregated over every entity)."""

    scheme: str
    year: int
    instrument: str
    tonnes: int = 0
    offsets: int = 0  # of which offsets


class Label(msgspec.Struct, frozen=True):
    label_id: str
    product: str
    model: str
    verifier: str
    functional_unit: str
    boundary: str
    stages: tuple[tuple[str, int, bool], ...]  # stage, g CO2e per unit, inside the boundary
    total_grams: int
    factor_tables: tuple[str, ...]
    issued_ns: int
    valid_until: str
    supersedes: str


class Claim(msgspec.Struct):
    claim_id: str
    product: str
    label_id: str
    units: int
    units_shipped: int
    footprint_grams: int
    required_tonnes: int
    covered_tonnes: int
    certificates: tuple[str, ...]
    serials: tuple[str, ...]
    period_start: str
    period_end: str
    standards: tuple[str, ...]
    superseded: bool = False


class Checkpoint(msgspec.Struct, frozen=True):
    seq: int
    link: str
    previous: int
    public_key: str
    signature: str
    reason: str
    venue: str
    ns: int


class PublicState(msgspec.Struct):
    seq: int = 0
    markets: dict[str, Market] = msgspec.field(default_factory=dict)
    # order id -> (instrument, side, price, leaves): anonymous, to keep the L2 book exact
    orders: dict[int, tuple[str, str, int, int]] = msgspec.field(default_factory=dict)
    projects: dict[str, Project] = msgspec.field(default_factory=dict)
    reports: dict[str, Report] = msgspec.field(default_factory=dict)
    issuances: list[Issuance] = msgspec.field(default_factory=list)
    origins: dict[str, list[Origin]] = msgspec.field(default_factory=dict)  # instrument -> issued blocks
    certificates: dict[str, PublicCertificate] = msgspec.field(default_factory=dict)
    buffer: dict[str, int] = msgspec.field(default_factory=dict)  # project -> tonnes in the buffer pool
    reversals: list[Reversal] = msgspec.field(default_factory=list)
    surrendered: dict[str, Surrendered] = msgspec.field(default_factory=dict)  # "<scheme>/<year>/<instr>"
    labels: dict[str, Label] = msgspec.field(default_factory=dict)
    products: dict[str, str] = msgspec.field(default_factory=dict)  # product -> current label id
    claims: dict[str, Claim] = msgspec.field(default_factory=dict)
    checkpoints: list[Checkpoint] = msgspec.field(default_factory=list)  # newest last
