"""A running exchange for end-to-end tests: the four real service processes on the test's private Redis."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis

from services.cli.demo import wait_quiet
from services.cli.readmodel import ExchangeState, replay_log
from services.cli.supervisor import Supervisor
from services.intake.service import DEV_OPERATOR_SECRET
from shared.client import ExchangeClient
from shared.config import Settings
from shared.domain.ledger import OPERATOR
from shared.eventlog.redis_log import RedisEventLog
from tests.support import eventually

__all__ = ["Exchange"]

_json = msgspec.json.Decoder()


class Exchange:
    """Operator and client helpers over a live exchange; every name it makes is unique per call."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis, self.settings = redis, settings
        self.operator = ExchangeClient(redis, OPERATOR, DEV_OPERATOR_SECRET, settings.keys)
        self.log = RedisEventLog(redis, settings.keys)
        self._ids = itertools.count(1)
        self.supervisor: Supervisor | None = None

    async def start(self) -> None:
        self.supervisor = Supervisor(
            env={
                "REDIS_URL": self.settings.redis_url,
                "GREENEX_PREFIX": self.settings.prefix,
                "GREENEX_LOG_LEVEL": "WARNING",
            }
        )
        await self.supervisor.start()

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()

    def unique(self, stem: str) -> str:
        return f"{stem}{next(self._ids)}"

    async def op(self, action: str, **args: Any) -> None:
        await self.operator.operator(action, self.unique("op-"), **args)

    async def instrument(self, stem: str = "SZEA", reference: str = "58.00", **extra: Any) -> str:
        symbol = self.unique(f"{stem}-T")
        spec: dict[str, Any] = {"kind": "allowance", "standard": stem, "registry": "SZ", "vintage": 2025}
        await self.op("list_instrument", symbol=symbol, reference_price=reference, **(spec | extra))
        return symbol

    async def participant(
        self,
        stem: str,
        cash: str = "1000000.00",
        credits: dict[str, tuple[int, int]] | None = None,
        roles: tuple[str, ...] = ("trader",),
    ) -> ExchangeClient:
        name = self.unique(stem)
        secret = f"s3cret-{name}"
        await self.op("register_participant", participant=name, name=name.title(), secret=secret, roles=roles)
        await self.op("deposit_cash", participant=name, amount=cash)
        for symbol, (start, end) in (credits or {}).items():
            await self.op(
                "issue_credits", participant=name, instrument=symbol, serial_start=start, serial_end=end
            )
        return ExchangeClient(self.redis, name, secret, self.settings.keys)

    async def raw(self, data: bytes | str) -> None:
        """XADD exactly what a client in any language would: `XADD greenex:in * data <json>`."""
        await self.redis.execute_command(  # type: ignore[no-untyped-call]
            "XADD", self.settings.keys.commands, "*", "data", data
        )

    async def reports_until(
        self, client: ExchangeClient, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Collect the client's reports until `done(all so far)` holds."""
        got: list[dict[str, Any]] = []

        async def check() -> bool:
            got.extend(await client.reports(block_ms=50))
            return done(got)

        await eventually(check, timeout=timeout)
        return got

    async def drained(self, timeout: float = 15.0) -> ExchangeState:
        """Wait until the log stops growing with nothing unread (the demo's own check, with a shorter
        quiet spell), then rebuild the state from it."""
        await wait_quiet(self.redis, self.settings, quiet_s=0.3, timeout_s=timeout)
        return await replay_log(self.log)

    async def trades_feed(self) -> list[dict[str, Any]]:
        rows: list[tuple[bytes, dict[bytes, bytes]]] = await self.redis.xrange(  # type: ignore[assignment]
            self.settings.keys.trades
        )
        return [_json.decode(fields[b"data"]) for _, fields in rows]
