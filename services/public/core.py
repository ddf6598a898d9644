"""The public projection: a pure fold of the log into what may be published (services/public/state.py).

It answers nothing (`decide` always returns []); its process writes the read model to the `pub:*` keys
after its batches (services/public/service.py). Deterministic: candles are bucketed by the entries'
event_ns, so a replay of the same log gives the same bytes and the same digest.
"""

from __future__ import annotations

import hashlib

import msgspec

from services.public.state import (
    INTERVALS,
    KEEP_CANDLES,
    KEEP_CHECKPOINTS,
    TAPE_LENGTH,
    Candle,
    Checkpoint,
    Claim,
    Issuance,
    Label,
    Market,
    Piece,
    Project,
    PublicCertificate,
    PublicState,
    Report,
    Reversal,
    Surrendered,
    Trade,
)
from shared.domain.certificates import Origin, serial_label, split_serials
from shared.domain.codec import Event, tags
from shared.domain.compliance import CreditsSurrendered
from shared.domain.events import (
    InstrumentHalted,
    InstrumentListed,
    InstrumentResumed,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    TradeExecuted,
)
from shared.domain.integrity import ProjectReviewed, ReversalReported
from shared.domain.ledger import BUFFER_ACCOUNT, CreditsIssued, LogCheckpoint, SerialRange
from shared.domain.registry import (
    CreditsRetired,
    LabelIssued,
    NeutralityClaimed,
    ProjectRegistered,
    VerificationAccepted,
)
from shared.domain.values import Side

__all__ = ["PublicProjection"]

_MarketEvent = (InstrumentListed | InstrumentHalted | InstrumentResumed | OrderAccepted | OrderCancelled
                | OrderExpired | OrderReplaced | TradeExecuted)  # fmt: skip
_MARKET = (InstrumentListed, InstrumentHalted, InstrumentResumed, OrderAccepted, OrderCancelled, OrderExpired,
           OrderReplaced, TradeExecuted)  # fmt: skip
_REGISTRY = (ProjectRegistered, ProjectReviewed, VerificationAccepted, CreditsIssued, CreditsRetired,
             CreditsSurrendered, ReversalReported, LabelIssued, NeutralityClaimed)  # fmt: skip
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PublicState)


class PublicProjection:
    """Folds the public part of the log; remembers what changed since its shell last published."""

    name = "projection"
    inputs = tags(*_MARKET, *_REGISTRY, LogCheckpoint)
    answers_to: frozenset[str] = frozenset()  # it answers nothing: it only folds

    def __init__(self) -> None:
        self.state = PublicState()
        self.touched: set[str] = set()  # instruments whose market changed since the shell looked
        self.new_trades: dict[str, list[Trade]] = {}  # since the shell looked, per instrument
        self.registry_changed = False
        self.new_certificates: set[str] = set()
        self.checkpoints_changed = False

    def decide(self, seq: int, event_ns: int, event: Event) -> list[Event]:
        self.state.seq = seq
        if isinstance(event, _MarketEvent):
            self._market(event_ns, event)
        elif isinstance(event, LogCheckpoint):
            self._checkpoint(event_ns, event)
        else:
            self._registry(seq, event_ns, event)
        return []

    # ---------------------------------------------------------------- market

    def _market(self, ns: int, ev: _MarketEvent) -> None:
        if isinstance(ev, InstrumentListed):
            i = ev.instrument
            self.state.markets[i.symbol] = Market(
                i.symbol, str(i.kind), i.standard, i.vintage, i.tick_size, i.lot_size, i.reference_price,
                i.band_bps, candles={name: [] for name in INTERVALS},
            )  # fmt: skip
            self.touched.add(i.symbol)
            return
        if isinstance(ev, InstrumentHalted | InstrumentResumed):
            self.state.markets[ev.instrument].halted = isinstance(ev, InstrumentHalted)
        elif isinstance(ev, OrderAccepted):
            self.state.orders[ev.order_id] = (ev.instrument, str(ev.side), ev.price, 0)
            self._leaves(ev.order_id, ev.quantity)
        elif isinstance(ev, TradeExecuted):
            self._leaves(ev.maker_order_id, ev.maker_leaves)
            self._leaves(ev.taker_order_id, ev.taker_leaves)
            self._trade(ns, ev)
        elif isinstance(ev, OrderCancelled | OrderExpired):
            self._leaves(ev.order_id, 0)
        elif isinstance(ev, OrderReplaced):
            self._leaves(ev.order_id, 0)
            self.state.orders[ev.order_id] = (ev.instrument, str(ev.side), ev.price, 0)
            self._leaves(ev.order_id, ev.leaves)
        self.touched.add(ev.instrument)

    def _leaves(self, order_id: int, leaves: int) -> None:
        """Set a resting order's open tonnes, keeping its price level's total; a market order (price 0)
        never rests, so it joins no level."""
        order = self.state.orders.get(order_id)
        if order is None:
            return
        symbol, side, price, before = order
        if price:
            levels = self.state.markets[symbol].bids if side == Side.BUY else self.state.markets[symbol].asks
            total = levels.get(price, 0) + leaves - before
            if total:
                levels[price] = total
            else:
                levels.pop(price, None)
        if leaves:
            self.state.orders[order_id] = (symbol, side, price, leaves)
        else:
            del self.state.orders[order_id]

    def _trade(self, ns: int, ev: TradeExecuted) -> None:
        market = self.state.markets[ev.instrument]
        aggressor = "sell" if ev.maker_side == Side.BUY else "buy"
        trade = Trade(ev.trade_id, ns, ev.price, ev.quantity, aggressor)
        market.tape.append(trade)
        if len(market.tape) > TAPE_LENGTH:
            del market.tape[0]
        self.new_trades.setdefault(ev.instrument, []).append(trade)
        for name, width in INTERVALS.items():
            candles, start = market.candles[name], ns - ns % width
            if candles and candles[-1].start == start:
                c = candles[-1]
                c.high, c.low, c.close = max(c.high, ev.price), min(c.low, ev.price), ev.price
                c.volume, c.trades = c.volume + ev.quantity, c.trades + 1
                c.value += ev.price * ev.quantity
            else:
                candles.append(Candle(start, ev.price, ev.price, ev.price, ev.price, ev.quantity, 1,
                                      ev.price * ev.quantity))  # fmt: skip
                if len(candles) > KEEP_CANDLES[name]:
                    del candles[0]

    # ---------------------------------------------------------------- registry

    def _registry(self, seq: int, ns: int, ev: Event) -> None:
        s = self.state
        self.registry_changed = True
        if isinstance(ev, ProjectRegistered):
            s.projects[ev.project] = Project(
                ev.project, ev.name, ev.instrument, ev.standard, ev.methodology, ev.country, ev.project_type,
                ev.buffer_bps, str(ev.status), ns,
            )  # fmt: skip
        elif isinstance(ev, ProjectReviewed) and ev.project in s.projects:
            status = "registered" if ev.approved else "rejected"
            s.projects[ev.project] = msgspec.structs.replace(s.projects[ev.project], status=status)
        elif isinstance(ev, VerificationAccepted):
            s.reports[ev.report_id] = Report(
                ev.report_id, ev.project, ev.verifier, ev.vintage, ev.period_start, ev.period_end, ev.tonnes,
                ev.report_hash, ns,
            )  # fmt: skip
        elif isinstance(ev, CreditsIssued):
            self._issued(seq, ns, ev)
        elif isinstance(ev, CreditsRetired):
            kind = str(ev.kind)
            if ev.participant == BUFFER_ACCOUNT:
                for piece in self._pieces(ev.instrument, ev.serials):
                    tonnes = piece.end - piece.start + 1
                    s.buffer[piece.project] = s.buffer.get(piece.project, 0) - tonnes
            self._certify(PublicCertificate(
                ev.certificate_id, kind, ev.beneficiary, ev.reason, ev.purpose, ev.identifier, ev.instrument,
                ev.tonnes, self._pieces(ev.instrument, ev.serials), seq, ev.retired_ns or ns,
            ))  # fmt: skip
        elif isinstance(ev, CreditsSurrendered):
            self._surrendered(seq, ns, ev)
        elif isinstance(ev, ReversalReported):
            s.reversals.append(Reversal(ev.project, ev.instrument, ev.tonnes, seq, ns))
        elif isinstance(ev, LabelIssued):
            self._label(ev)
        elif isinstance(ev, NeutralityClaimed):
            s.claims[ev.claim_id] = Claim(
                ev.claim_id, ev.product, ev.label_id, ev.units, ev.units_shipped, ev.footprint_grams,
                ev.required_tonnes, ev.covered_tonnes, ev.certificates, ev.serials, ev.period_start,
                ev.period_end, ev.standards,
            )  # fmt: skip

    def _issued(self, seq: int, ns: int, ev: CreditsIssued) -> None:
        s, r = self.state, ev.serials
        blocks = s.origins.setdefault(ev.instrument, [])
        blocks.append(Origin(r.start, r.end, ev.standard, ev.project, ev.vintage))
        if len(blocks) > 1 and blocks[-2].start > r.start:
            blocks.sort(key=lambda o: o.start)
        if ev.project:  # verified issuance; allowances are allocated to accounts and not listed one by one
            s.issuances.append(Issuance(seq, ev.instrument, ev.project, ev.vintage, ev.report_id, r.start,
                                        r.end, ev.buffer, ns))  # fmt: skip
        if ev.buffer:
            s.buffer[ev.project] = s.buffer.get(ev.project, 0) + r.tonnes

    def _pieces(self, instrument: str, serials: tuple[SerialRange, ...]) -> tuple[Piece, ...]:
        blocks = self.state.origins.get(instrument, [])
        return tuple(
            Piece(serial_label(instrument, o, p.start, p.end), p.start, p.end, o.project if o else "",
                  o.vintage if o else 0)
            for block in serials
            for p, o in split_serials(blocks, block)
        )  # fmt: skip

    def _certify(self, cert: PublicCertificate) -> None:
        self.state.certificates[cert.id] = cert
        self.new_certificates.add(cert.id)

    def _surrendered(self, seq: int, ns: int, ev: CreditsSurrendered) -> None:
        key = f"{ev.scheme}/{ev.year}/{ev.instrument}"
        agg = self.state.surrendered.setdefault(key, Surrendered(ev.scheme, ev.year, ev.instrument))
        agg.tonnes += ev.tonnes
        agg.offsets += ev.tonnes if ev.offset else 0
        self._certify(PublicCertificate(
            ev.certificate_id, "surrender", "", f"compliance {ev.scheme} {ev.year}", "", "", ev.instrument,
            ev.tonnes, self._pieces(ev.instrument, ev.serials), seq, ns, ev.scheme, ev.year,
        ))  # fmt: skip

    def _label(self, ev: LabelIssued) -> None:
        s = self.state
        s.labels[ev.label_id] = Label(
            ev.label_id, ev.product, ev.model, ev.verifier, ev.functional_unit, ev.boundary,
            tuple((st.stage, st.grams, st.included) for st in ev.stages), ev.total_grams, ev.factor_tables,
            ev.issued_ns, ev.valid_until, ev.supersedes,
        )  # fmt: skip
        s.products[ev.product] = ev.label_id
        for claim_id in ev.superseded_claims:
            if claim_id in s.claims:
                s.claims[claim_id].superseded = True

    def _checkpoint(self, ns: int, ev: LogCheckpoint) -> None:
        self.state.checkpoints.append(
            Checkpoint(ev.seq, ev.link, ev.previous, ev.public_key, ev.signature, ev.reason, ev.venue, ns)
        )
        if len(self.state.checkpoints) > KEEP_CHECKPOINTS:
            del self.state.checkpoints[0]
        self.checkpoints_changed = True

    # ---------------------------------------------------------------- the Processor port

    def snapshot(self) -> bytes:
        return _encoder.encode(self.state)

    def restore(self, data: bytes) -> None:
        try:
            state = _decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not a public projection snapshot: {exc}") from exc
        self.state = state
        self.touch_everything()

    def touch_everything(self) -> None:
        """Mark the whole read model for publication (after a restore, or at a process's start)."""
        self.touched = set(self.state.markets)
        self.registry_changed = self.checkpoints_changed = True
        self.new_certificates = set(self.state.certificates)

    def digest(self) -> str:
        return hashlib.sha256(self.snapshot()).hexdigest()

    def first_difference(self, other: PublicProjection) -> str | None:
        """The first part of two public states that differs, for an operator."""
        for field in msgspec.structs.fields(PublicState):
            if getattr(self.state, field.name) != getattr(other.state, field.name):
                return f"public {field.name} differs"
        return None
