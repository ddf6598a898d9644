"""A seeded signed-order load for the demo participants, and the whole-exchange consistency checks."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any, cast

import msgspec
from redis.asyncio import Redis

from services.checkpoint.due import CHECKPOINT, due_reason
from services.cli.demo import DEMO_INSTRUMENTS, DEMO_PARTICIPANTS
from services.cli.history import history
from services.cli.readmodel import ExchangeState, replay_entries
from services.cli.venue import Venue
from services.cli.views import conservation_problems
from services.intake.reports import PUBLISHED_TYPES, REPORTED_TYPES, Reporter
from services.runtime.digests import read_digests
from services.system import SYSTEM
from shared.client import ExchangeClient
from shared.config import Settings
from shared.domain.codec import decode_event
from shared.domain.events import OrderCancelled, OrderExpired, OrderRejected, TradeExecuted
from shared.domain.ledger import OPERATOR, OrderSubmitted, OrderVerified, TradeSettled
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.verify import verify_log
from shared.keys import Keys
from shared.order_reports import written_by_matching
from shared.reports import encode_report
from tests.support import eventually

__all__ = ["OrderLoad", "exchange_problems", "implied_reports", "log_entries", "settled_exchange"]

_json = msgspec.json.Decoder()


class OrderLoad:
    """Signed commands from every demo participant: limits (GTC/IOC), markets, cancels and replaces."""

    def __init__(self, venue: Venue, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clients = [venue.client(p) for p, *_ in DEMO_PARTICIPANTS]
        self.mids = {s["symbol"]: int(float(s["reference_price"]) * 100) for s in DEMO_INSTRUMENTS}
        self.open: dict[str, list[tuple[str, str]]] = {c.participant: [] for c in self.clients}
        self.sent = 0

    def _command(self, client: ExchangeClient) -> dict[str, Any]:
        rng, opened = self.rng, self.open[client.participant]
        self.sent += 1
        cid = f"{client.participant}-{self.sent}"
        symbol = rng.choice(list(self.mids))
        mid = self.mids[symbol] = max(100, self.mids[symbol] + rng.choice((-1, 0, 0, 1)))
        roll = rng.random()
        if opened and roll < 0.10:
            sym, orig = opened.pop(rng.randrange(len(opened)))
            return client.command(
                "cancel_order", client_order_id=cid, instrument=sym, orig_client_order_id=orig
            )
        if opened and roll < 0.16:
            i = rng.randrange(len(opened))
            sym, orig = opened[i]
            opened[i] = (sym, cid)
            price = f"{(self.mids[sym] + rng.randint(-8, 8)) / 100:.2f}"
            return client.command(
                "replace_order",
                client_order_id=cid,
                instrument=sym,
                orig_client_order_id=orig,
                price=price,
                quantity=rng.randint(1, 50) * 10,
            )
        side = rng.choice(("buy", "sell"))
        qty = rng.randint(1, 50) * 10
        if roll < 0.21:
            return client.command("new_order", client_order_id=cid, instrument=symbol, side=side,
                                  order_type="market", quantity=qty, time_in_force="IOC")  # fmt: skip
        tif = "IOC" if roll < 0.30 else "GTC"
        offset = rng.randint(-6, 10) * (1 if side == "sell" else -1)
        if tif == "GTC":
            opened.append((symbol, cid))
        price = f"{(mid + offset) / 100:.2f}"
        return client.command(
            "new_order",
            client_order_id=cid,
            instrument=symbol,
            side=side,
            order_type="limit",
            price=price,
            quantity=qty,
            time_in_force=tif,
        )

    async def burst(self, per_client: int) -> int:
        """Send `per_client` commands from every participant, pipelined per participant."""
        sends = [
            client.send_many([self._command(client) for _ in range(per_client)]) for client in self.clients
        ]
        await asyncio.gather(*sends)
        return per_client * len(self.clients)


async def log_entries(redis: Redis, settings: Settings) -> list[Entry]:
    """The whole log, page by page: archived segments (if it was trimmed) and the stream."""
    log, out, after = history(settings, redis), [], 0
    while page := await log.read(after, 10_000):
        out += page
        after = page[-1].seq
    return out


async def settled_exchange(
    redis: Redis, settings: Settings, timeout: float = 60.0, senders: tuple[str, ...] | None = None
) -> list[Entry]:
    """Wait until intake consumed and acked every command, the log stopped growing, the report
    publisher and every core's published digest reached the head; return the log."""
    state: dict[str, Any] = {"head": -1}

    async def consumed(sender: str) -> bool:
        in_key = settings.keys.commands(sender)
        if not await redis.exists(in_key):
            return True  # nothing sent yet
        info = await redis.xinfo_stream(in_key)
        groups = await redis.xinfo_groups(in_key)
        return bool(groups) and all(
            g["last-delivered-id"] == info["last-generated-id"] and not g["pending"] for g in groups
        )

    async def quiet() -> bool:
        streams = senders if senders is not None else tuple(p for p, *_ in DEMO_PARTICIPANTS)
        consumed_all = all([await consumed(s) for s in (OPERATOR, *streams)])
        head, _ = await RedisEventLog(redis, settings.keys).head()
        stable, state["head"] = head == state["head"], head
        if not (consumed_all and stable):
            await asyncio.sleep(0.5)  # the log must stay still across a service restart's gap
            return False
        entries = await log_entries(redis, settings)
        if not entries or entries[-1].seq != head:
            return False  # it moved while being read
        reported = max((e.seq for e in entries if e.type in PUBLISHED_TYPES), default=0)
        cursor = int(await redis.get(settings.keys.report_cursor) or 0)
        digests = await read_digests(redis, settings.keys)
        # The checkpoint process appends (and so moves the head) after the cores have settled.
        due = max((e.seq for e in entries if due_reason(e, settings.checkpoint_every)), default=0)
        signed = await redis.hget(settings.keys.positions, CHECKPOINT)
        if due > (int(signed[1:]) if signed else 0):
            return False
        if not (cursor >= reported and all(digests.get(c, (-1, ""))[0] == head for c in SYSTEM.core_names)):
            return False
        state["entries"] = entries
        # Still the same head once all of that was read: nothing was appended while it was checked.
        return (await RedisEventLog(redis, settings.keys).head())[0] == head

    await eventually(quiet, timeout=timeout, interval=0.2)
    return cast(list[Entry], state["entries"])


async def exchange_problems(redis: Redis, settings: Settings, entries: list[Entry]) -> list[str]:
    """Everything that must hold after any crash: nothing lost, nothing doubled, books balance."""
    problems: list[str] = []
    report = await verify_log(history(settings, redis))
    if not report.ok or report.count != len(entries):
        problems.append(f"log does not verify: {report}")
    state = replay_entries(entries)
    problems += conservation_problems(state)
    events = [(e.seq, e.producer, decode_event(e.body)) for e in entries]
    problems += _outcome_problems(state, events)
    problems += await _report_problems(redis, settings, entries)
    live = await read_digests(redis, settings.keys)
    for core in SYSTEM.core_names:
        if live.get(core) != (state.seq, state.core(core).digest()):
            problems.append(f"{core}: live digest {live.get(core)} != replayed at seq {state.seq}")
    return problems


def _outcome_problems(state: ExchangeState, events: list[tuple[int, str, Any]]) -> list[str]:
    submitted = [ev.order_id for _, _, ev in events if isinstance(ev, OrderSubmitted)]
    verdicts: Counter[int] = Counter()  # verification's answer to each submission: exactly one
    where: dict[int, list[int]] = {}
    terminal: Counter[int] = Counter()
    trades: Counter[int] = Counter()
    settled: Counter[int] = Counter()
    for seq, producer, ev in events:
        refused = isinstance(ev, OrderRejected) and ev.command == "new_order" and producer == "verification"
        if isinstance(ev, OrderVerified) or refused:
            verdicts[ev.order_id] += 1
            where.setdefault(ev.order_id, []).append(seq)
        ends = isinstance(ev, OrderCancelled | OrderExpired)
        if ends or (isinstance(ev, OrderRejected) and ev.command == "new_order"):
            terminal[ev.order_id] += 1
        elif isinstance(ev, TradeExecuted):
            trades[ev.trade_id] += 1
            terminal[ev.maker_order_id] += ev.maker_leaves == 0
            terminal[ev.taker_order_id] += ev.taker_leaves == 0
        elif isinstance(ev, TradeSettled):
            settled[ev.trade_id] += 1
    resting = {oid for book in state.matching.engine.books.values() for oid in book.orders}
    out = [
        f"order {oid}: {verdicts[oid]} verification answers (seqs {where.get(oid)})"
        for oid in submitted
        if verdicts[oid] != 1
    ]
    out += [
        f"order {oid}: {terminal[oid]} terminal outcomes, resting={oid in resting}"
        for oid in submitted
        if terminal[oid] + (oid in resting) != 1
    ]
    out += [f"trade {t}: executed {n} times" for t, n in trades.items() if n != 1]
    out += [f"trade {t}: settled {settled[t]} times" for t in trades if settled[t] != 1]
    out += [f"settlement of unknown trade {t}" for t in settled if t not in trades]
    return out


def implied_reports(entries: list[Entry], exchange: Keys) -> dict[str, list[dict[str, Any]]]:
    """The reports the log implies, by stream (each participant's, the trade tape), in log order, as a
    client decodes them."""
    reporter = Reporter()
    wanted: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry.type in REPORTED_TYPES:
            for delivery in reporter.reports(entry.seq, decode_event(entry.body)):
                who = delivery.participant
                stream = exchange.trades if who is None else exchange.reports(who)
                wanted.setdefault(stream, []).append(_json.decode(encode_report(delivery.report)))
    return wanted


async def _report_problems(redis: Redis, settings: Settings, entries: list[Entry]) -> list[str]:
    """Each participant's stream holds exactly the reports the log implies, once each. Matching's
    reports are in log order among themselves, and so are the publisher's (docs/protocol.md, "Report
    order"); between the two, each report's seq gives the log order."""
    wanted = implied_reports(entries, settings.keys)
    out: list[str] = []
    for stream, reports in wanted.items():
        rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(stream))
        got = [r for r in (_json.decode(f[b"data"]) for _, f in rows) if r.get("seq", 0) is not None]
        keys = Counter((r.get("seq"), r.get("client_order_id"), r.get("exec_type")) for r in got)
        if dupes := [k for k, n in keys.items() if n > 1 and k[2] is not None]:
            out.append(f"{stream}: duplicate reports {dupes[:3]}")
        for family in (True, False):
            seqs = [r["seq"] for r in got if written_by_matching(r) is family]
            if seqs != sorted(seqs):
                out.append(f"{stream}: {'matching' if family else 'publisher'} reports out of log order")
        got = sorted(got, key=lambda r: int(r["seq"]))  # stable: one entry's reports keep their order
        if got != reports:
            missing = [r for r in reports if r not in got]
            extra = [r for r in got if r not in reports]
            out.append(
                f"{stream}: {len(got)} reports, expected {len(reports)}; "
                f"missing {missing[:2]} extra {extra[:2]} (of {len(missing)}, {len(extra)})"
            )
    return out
