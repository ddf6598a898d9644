"""The public read model's documents: what the projection writes to `pub:*` and the web app serves.

Prices are integer fen (1/100 CNY), quantities integer tonnes, times nanoseconds since the epoch (UTC);
VWAP is the traded value over the volume in fen, rounded half up. Pure functions of the state.
"""

from __future__ import annotations

import datetime
import itertools
from typing import Any

import msgspec

from services.public.state import INTERVALS, Candle, Market, PublicCertificate, PublicState, Trade, vwap

__all__ = [
    "BOOK_LEVELS",
    "RECENT_CERTIFICATES",
    "book",
    "certificate_doc",
    "checkpoints_doc",
    "day_stats",
    "instrument_doc",
    "market_doc",
    "registry_doc",
    "update_doc",
]

BOOK_LEVELS = 10
RECENT_CERTIFICATES = 200  # the registry document lists the newest; the search and the export find every one


def _date(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.UTC).date().isoformat()


def book(m: Market, levels: int = BOOK_LEVELS) -> dict[str, Any]:
    bids = sorted(m.bids.items(), reverse=True)[:levels]
    asks = sorted(m.asks.items())[:levels]
    return {"bids": [list(b) for b in bids], "asks": [list(a) for a in asks]}


def _candle(c: Candle) -> dict[str, int]:
    return {"t": c.start, "o": c.open, "h": c.high, "l": c.low, "c": c.close, "v": c.volume, "n": c.trades,
            "vwap": vwap(c.value, c.volume)}  # fmt: skip


def _trade(t: Trade) -> dict[str, Any]:
    return {"id": t.trade_id, "ns": t.ns, "price": t.price, "qty": t.quantity, "aggressor": t.aggressor}


def day_stats(m: Market) -> dict[str, Any]:
    """The latest trading day's statistics (UTC days of the log's time), the reference price and the
    band the next day trades in (the reference does not roll: the band is the listed one)."""
    days = m.candles.get("1d", [])
    low = m.reference - m.reference * m.band_bps // 10_000
    high = m.reference + m.reference * m.band_bps // 10_000
    stats: dict[str, Any] = {"reference": m.reference, "band_low": low, "band_high": high,
                             "next_band_low": low, "next_band_high": high}  # fmt: skip
    if days:
        d = days[-1]
        stats.update(date=_date(d.start), open=d.open, high=d.high, low=d.low, close=d.close,
                     volume=d.volume, trades=d.trades, vwap=vwap(d.value, d.volume))  # fmt: skip
    else:
        stats.update(date="", open=0, high=0, low=0, close=0, volume=0, trades=0, vwap=0)
    stats["last"] = m.tape[-1].price if m.tape else 0
    return stats


def _info(m: Market) -> dict[str, Any]:
    return {"symbol": m.symbol, "kind": m.kind, "standard": m.standard, "vintage": m.vintage, "tick": m.tick,
            "lot": m.lot, "halted": m.halted}  # fmt: skip


def market_doc(s: PublicState) -> dict[str, Any]:
    """The overview: every instrument with its day and best prices."""
    rows = []
    for m in s.markets.values():
        b = book(m, 1)
        best = {"best_bid": b["bids"][0][0] if b["bids"] else 0,
                "best_ask": b["asks"][0][0] if b["asks"] else 0}
        rows.append(_info(m) | day_stats(m) | best)
    return {"seq": s.seq, "instruments": rows}


def instrument_doc(s: PublicState, symbol: str) -> dict[str, Any]:
    m = s.markets[symbol]
    daily = [_candle(c) | {"date": _date(c.start)} for c in m.candles.get("1d", [])]
    return {
        "seq": s.seq, **_info(m), "stats": day_stats(m), "book": book(m),
        "tape": [_trade(t) for t in reversed(m.tape)],
        "candles": {name: [_candle(c) for c in m.candles.get(name, [])] for name in INTERVALS},
        "daily": daily,
    }  # fmt: skip


def update_doc(s: PublicState, symbol: str, trades: list[Trade]) -> dict[str, Any]:
    """What one publication changed on an instrument: the live page applies it without a reload."""
    m = s.markets[symbol]
    return {
        "type": "market", "seq": s.seq, "symbol": symbol, "halted": m.halted, "stats": day_stats(m),
        "book": book(m), "trades": [_trade(t) for t in trades],
        "candles": {name: _candle(m.candles[name][-1]) for name in INTERVALS if m.candles.get(name)},
    }  # fmt: skip


def certificate_doc(c: PublicCertificate) -> dict[str, Any]:
    return {
        "id": c.id, "kind": c.kind, "beneficiary": c.beneficiary, "reason": c.reason, "purpose": c.purpose,
        "identifier": c.identifier, "instrument": c.instrument, "tonnes": c.tonnes,
        "serials": [msgspec.structs.asdict(p) for p in c.serials], "seq": c.seq, "date": _date(c.ns),
        "vintages": sorted({p.vintage for p in c.serials if p.vintage}), "scheme": c.scheme, "year": c.year,
    }  # fmt: skip


def registry_doc(s: PublicState) -> dict[str, Any]:
    """Everything of the registry but the certificates (their own hash, `pub:certificates`): the list here
    names the newest RECENT_CERTIFICATES by id with their date, beneficiary and tonnes, so the document
    stays small however many there are."""
    issued: dict[str, int] = {}
    for i in s.issuances:
        issued[i.project] = issued.get(i.project, 0) + i.end - i.start + 1
    retired: dict[str, int] = {}
    for c in s.certificates.values():
        for p in c.serials:
            retired[p.project] = retired.get(p.project, 0) + p.end - p.start + 1
    asdict = msgspec.structs.asdict
    return {
        "seq": s.seq,
        "projects": [asdict(p) | {"issued": issued.get(p.project, 0), "retired": retired.get(p.project, 0),
                                  "buffer": s.buffer.get(p.project, 0)} for p in s.projects.values()],
        "reports": [asdict(r) for r in s.reports.values()],
        "issuances": [asdict(i) | {"tonnes": i.end - i.start + 1} for i in s.issuances],
        "buffer_total": sum(s.buffer.values()),
        "reversals": [asdict(r) for r in s.reversals],
        "surrendered": [asdict(x) for x in s.surrendered.values()],
        "retirements": [{"id": c.id, "kind": c.kind, "beneficiary": c.beneficiary, "tonnes": c.tonnes,
                         "instrument": c.instrument, "date": _date(c.ns), "seq": c.seq}
                        for c in itertools.islice(reversed(s.certificates.values()), RECENT_CERTIFICATES)],
        "certificates_total": len(s.certificates),
        "labels": [asdict(label) | {"current": s.products.get(label.product) == label.label_id}
                   for label in s.labels.values()],
        "claims": [asdict(c) for c in s.claims.values()],
    }  # fmt: skip


def checkpoints_doc(s: PublicState) -> dict[str, Any]:
    newest = s.checkpoints[-1] if s.checkpoints else None
    return {
        "seq": s.seq, "public_key": newest.public_key if newest else "",
        "venue": newest.venue if newest else "",
        "checkpoints": [msgspec.structs.asdict(c) | {"date": _date(c.ns)} for c in reversed(s.checkpoints)],
    }  # fmt: skip
