"""The participant's client library: typed, async, safe to retry.

    async with await TradingClient.connect(url, "acme", password, signing_key, venue="greenex-dev") as c:
        cid = await c.buy("SZEA-2025", 10, price="50.00")
        report = await c.outcome(cid)            # the exchange's first answer: ExecutionReport(new, ...)
        balances = await c.balances()            # cash and holdings, as of the query's place in the log
        orders = await c.open_orders()           # every open order (paged through for you)
        done = await c.mass_cancel("SZEA-2025")  # cancel them, and how many it cancelled
        async for report in c.reports():         # every report from here on, typed; resumes where it was
            ...

Every command carries a client order id (made here unless given): sending the same command again with
the same id is safe, because the exchange refuses the copy (`duplicate_client_order_id`) and executes
nothing twice. `outcome` raises `Rejected` with the exchange's reason code, `NoAnswer` after its timeout.
It logs in as the participant's own Redis user, which may write only its command stream and read only
its report stream (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar, cast

import msgspec
from redis.asyncio import Redis

from shared.client import ExchangeClient
from shared.keys import Keys
from shared.reports import (
    BalancesReport,
    CashReport,
    CashStatus,
    ExecType,
    ExecutionReport,
    MassCancelReport,
    OpenOrdersReport,
    OrderView,
    RegistryEventKind,
    RegistryReport,
    RejectReason,
    Report,
    SettlementReport,
)

__all__ = ["GreenexError", "NoAnswer", "Rejected", "TradingClient"]

_reports = msgspec.json.Decoder(Report)
SEEN_LIMIT = 100_000  # answers remembered for `outcome`
_R = TypeVar("_R")


def _refusal(report: Report) -> bool:
    """A report that refuses (a cancelled order's report carries a reason too, but is no refusal)."""
    if isinstance(report, ExecutionReport):
        return report.exec_type is ExecType.REJECTED
    if isinstance(report, RegistryReport):
        return report.event is RegistryEventKind.REJECTED
    return isinstance(report, CashReport) and report.status is CashStatus.REJECTED


class GreenexError(Exception):
    """Anything the exchange (or the way to it) did not do."""


class Rejected(GreenexError):  # noqa: N818  -- named as the exchange's answer
    """The exchange refused a command: `code` is its reason code (docs/protocol.md), `report` the report."""

    def __init__(self, report: Report, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.report, self.code, self.text = report, code, text


class NoAnswer(GreenexError):  # noqa: N818  -- named as what happened
    """No answer within the timeout: the command may still be decided; send it again with the same
    client order id to find out (a copy is refused, never executed)."""


class TradingClient:
    """One participant's session: commands on its own stream, typed reports from its report stream."""

    def __init__(self, redis: Redis, participant: str, signing_key: str, *, venue: str, prefix: str) -> None:
        self.redis = redis
        self._client = ExchangeClient(redis, participant, signing_key, Keys(prefix), venue=venue)
        self._ids = itertools.count(1)
        # The first report per client order id, newest last; the oldest are forgotten past SEEN_LIMIT (a
        # session that runs for days stays bounded: `outcome` is for commands sent minutes ago).
        self._seen: dict[str, Report] = {}
        self._unsettled: set[int] = set()  # trades of yours reported, not yet settled
        self._reading, self._reads = asyncio.Lock(), 0  # one XREAD at a time, and how many so far
        # Called with every report as it is read, whichever call reads it (`outcome` reads past others).
        self.listener: Callable[[Report], None] | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        participant: str,
        password: str,
        signing_key: str,
        *,
        venue: str = "greenex-dev",
        prefix: str = "greenex",
        from_start: bool = False,
    ) -> TradingClient:
        """Log in as the participant's Redis user; reports are read from now on (or from the first one
        the stream holds, with `from_start`)."""
        client = cls(Redis.from_url(url, username=participant, password=password), participant, signing_key,
                     venue=venue, prefix=prefix)  # fmt: skip
        if not from_start:
            await client._client.from_now()
        return client

    @property
    def participant(self) -> str:
        return self._client.participant

    @property
    def last_report_id(self) -> bytes:
        """Where `reports` goes on from: keep it to resume after a restart (`resume_from`)."""
        return self._client.last_report_id

    def resume_from(self, report_id: bytes) -> None:
        self._client.last_report_id = report_id

    # ------------------------------------------------------------------ commands

    async def buy(self, instrument: str, quantity: int, price: str | None = None, **options: Any) -> str:
        """A limit order at `price` (CNY), or a market order without one; returns its client order id.
        `time_in_force` ("GTC", "DAY", "IOC", "FOK") and `client_order_id` may be given."""
        return await self._order("buy", instrument, quantity, price, **options)

    async def sell(self, instrument: str, quantity: int, price: str | None = None, **options: Any) -> str:
        return await self._order("sell", instrument, quantity, price, **options)

    async def cancel(self, instrument: str, orig_client_order_id: str, *, client_order_id: str = "") -> str:
        cid = client_order_id or self._new_id("cxl")
        await self._client.send("cancel_order", client_order_id=cid, instrument=instrument,
                                orig_client_order_id=orig_client_order_id)  # fmt: skip
        return cid

    async def replace(
        self, instrument: str, orig_client_order_id: str, price: str, quantity: int, *,
        client_order_id: str = "",
    ) -> str:  # fmt: skip
        cid = client_order_id or self._new_id("rpl")
        await self._client.send(
            "replace_order", client_order_id=cid, instrument=instrument,
            orig_client_order_id=orig_client_order_id, price=price, quantity=quantity,
        )  # fmt: skip
        return cid

    async def retire(
        self, instrument: str, quantity: int, beneficiary: str, reason: str = "", *,
        client_order_id: str = "", purpose: str = "", identifier: str = "", project: str = "",
        vintage: int = 0, serials: Sequence[tuple[int, int]] = (),
    ) -> str:  # fmt: skip
        """Retire tonnes for good, for a declared `purpose` (corporate_inventory, product_claim:<product>,
        compliance, voluntary); only of `project`/`vintage`, or exactly the `serials` ranges, when given.
        The outcome is a registry report with the certificate."""
        cid = client_order_id or self._new_id("ret")
        chosen: dict[str, Any] = {"purpose": purpose, "identifier": identifier, "project": project,
                                  "vintage": vintage, "serials": [list(r) for r in serials]}  # fmt: skip
        await self._client.send("retire_credits", client_order_id=cid, instrument=instrument,
                                quantity=quantity, beneficiary=beneficiary, reason=reason,
                                **{k: v for k, v in chosen.items() if v})  # fmt: skip
        return cid

    async def surrender(
        self, scheme: str, year: int, instrument: str, quantity: int, *, client_order_id: str = ""
    ) -> str:
        """Surrender tonnes against your obligation under `scheme` for `year`; the outcome is a compliance
        report (`surrendered` with the certificate, or `rejected` with the reason)."""
        cid = client_order_id or self._new_id("sur")
        await self._client.send("surrender", client_order_id=cid, scheme=scheme, year=year,
                                instrument=instrument, quantity=quantity)  # fmt: skip
        return cid

    async def record_emissions(
        self, entity: str, scheme: str, year: int, tonnes: int, report_hash: str, *, client_order_id: str = ""
    ) -> str:
        """As an accredited verifier: an entity's verified emissions of a compliance year (its obligation)."""
        cid = client_order_id or self._new_id("em")
        args = {"entity": entity, "scheme": scheme, "year": year, "tonnes": tonnes}
        await self._client.send("registry", client_order_id=cid, action="record_emissions",
                                args={**args, "report_hash": report_hash})  # fmt: skip
        return cid

    async def mass_cancel(
        self, instrument: str = "", side: str | None = None, *, client_order_id: str = "",
        timeout: float = 10.0,
    ) -> MassCancelReport:  # fmt: skip
        """Cancel your open orders (of one instrument and/or side, or all) and wait until it is done: each
        cancelled order is reported first (under this request's id), then the count."""
        cid = client_order_id or self._new_id("mc")
        fields: dict[str, Any] = {"instrument": instrument} if instrument else {}
        if side is not None:
            fields["side"] = side
        await self._client.send("mass_cancel", client_order_id=cid, **fields)
        return await self._answer(cid, MassCancelReport, timeout)

    async def balances(self, *, timeout: float = 10.0) -> BalancesReport:
        """Your cash and holdings after every log entry before the query (every report about those came
        before the answer)."""
        return await self._query(BalancesReport, timeout, query="balances")

    async def open_orders(self, instrument: str = "", *, timeout: float = 10.0) -> list[OrderView]:
        """Every open order of yours (of one instrument, or all), by order id; asks page after page."""
        orders: list[OrderView] = []
        while True:
            fields: dict[str, Any] = {"instrument": instrument} if instrument else {}
            if orders:
                fields["after_order_id"] = orders[-1].order_id
            page = await self._query(OpenOrdersReport, timeout, query="open_orders", **fields)
            orders.extend(page.orders)
            if not page.more:
                return orders

    async def order_status(self, orig_client_order_id: str, *, timeout: float = 10.0) -> ExecutionReport:
        """An open order's status (exec_type `order_status`); Rejected `unknown_order` when it is not open."""
        return await self._query(ExecutionReport, timeout, query="order_status",
                                 orig_client_order_id=orig_client_order_id)  # fmt: skip

    async def _query(self, kind: type[_R], timeout: float, **fields: Any) -> _R:
        """Ask, and ask again after a pause while the exchange throttles queries (`rate_limited`: refused
        at once, nothing logged): a query changes nothing, so asking twice is harmless."""
        deadline, pause = time.monotonic() + timeout, 0.02
        while True:
            cid = self._new_id("q")
            await self._client.send("query", client_order_id=cid, **fields)
            try:
                return await self._answer(cid, kind, max(0.1, deadline - time.monotonic()))
            except Rejected as refused:
                if refused.code != "rate_limited" or time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(1.0, pause * 2)

    async def sync(self, *, timeout: float = 10.0) -> BalancesReport:
        """Wait until the exchange has reported everything your earlier commands caused, and every trade
        of yours reported by then has settled; returns the balances at the query (before those
        settlements). After it, your next command is decided on a state that no longer depends on timing."""
        balances = await self.balances(timeout=timeout)
        deadline = time.monotonic() + timeout
        while self._unsettled:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoAnswer(f"trades {sorted(self._unsettled)} not settled within {timeout:.0f} s")
            await self._read(500, max(1, int(min(left, 1.0) * 1000)))
        return balances

    async def _answer(self, client_order_id: str, kind: type[_R], timeout: float) -> _R:
        """The report of type `kind` that answers the command, or Rejected / NoAnswer."""
        report = await self.outcome(client_order_id, timeout, final=kind)
        if not isinstance(report, kind):
            raise GreenexError(f"unexpected answer to {client_order_id}: {report!r}")
        return report

    async def _order(
        self, side: str, instrument: str, quantity: int, price: str | None, *, client_order_id: str = "",
        time_in_force: str = "GTC",
    ) -> str:  # fmt: skip
        cid = client_order_id or self._new_id("ord")
        order: dict[str, Any] = {"order_type": "limit" if price is not None else "market"}
        if price is not None:
            order["price"] = price
        await self._client.send("new_order", client_order_id=cid, instrument=instrument, side=side,
                                quantity=quantity, time_in_force=time_in_force, **order)  # fmt: skip
        return cid

    def _new_id(self, kind: str) -> str:
        return f"{kind}-{time.time_ns():x}-{next(self._ids)}"

    # ------------------------------------------------------------------ reports

    async def reports(self, *, block_ms: int = 1000, count: int = 500) -> AsyncIterator[Report]:
        """Every report from `last_report_id` on, typed, waiting for more (forever: break out)."""
        while True:
            for raw in await self._read(count, block_ms):
                yield raw

    async def outcome(self, client_order_id: str, timeout: float = 10.0, *, final: type = object) -> Report:
        """The exchange's first answer to a command (its own report, or one it already read); raises
        Rejected with the reason code, NoAnswer after `timeout` seconds. With `final`, waits past other
        reports for a refusal or one of that type (a mass cancel's count comes after its cancels)."""
        deadline = time.monotonic() + timeout
        while True:
            report = self._seen.get(client_order_id)
            if report is not None and (isinstance(report, final) or _refusal(report)):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoAnswer(f"no answer to {client_order_id} within {timeout:.0f} s")
            await self._read(500, max(1, int(min(left, 1.0) * 1000)))
        if _refusal(report) and isinstance(reason := getattr(report, "reason", None), RejectReason):
            raise Rejected(report, str(reason.code), reason.text)
        return report

    async def _read(self, count: int, block_ms: int) -> list[Report]:
        """One read of the report stream at a time: calls awaiting answers together share it (each would
        otherwise read the same reports again from the same id). A caller that waited while another read
        gets nothing back and looks at what that read found first."""
        generation = self._reads
        async with self._reading:
            if self._reads != generation:
                return []
            out = [_reports.decode(data) for data in await self._client.report_data(count, block_ms)]
            self._reads += 1
        for report in out:
            if isinstance(report, ExecutionReport) and report.exec_type is ExecType.TRADE:
                self._unsettled.add(cast(int, report.trade_id))
            elif isinstance(report, SettlementReport):
                self._unsettled.discard(report.trade_id)
            if self.listener is not None:
                self.listener(report)
            cid = getattr(report, "client_order_id", None)
            # The first report answers a command, but a mass cancel's count is its final word.
            final = isinstance(report, MassCancelReport)
            if isinstance(cid, str) and cid and (final or cid not in self._seen):
                self._seen[cid] = report
                if len(self._seen) > SEEN_LIMIT:
                    del self._seen[next(iter(self._seen))]
        return out

    # ------------------------------------------------------------------ lifetime

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> TradingClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
