"""A running exchange for end-to-end tests: the real service processes on the test's private Redis, each
logged in as its own ACL user, with operator and participant helpers that log in as theirs."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgspec
from redis.asyncio import Redis

from services.cli.demo import wait_quiet
from services.cli.local import service_env
from services.cli.provision import ACL_FILE, apply_acl, init_keys
from services.cli.readmodel import ExchangeState, replay_log
from services.cli.supervisor import ROOT, Supervisor, partitioned
from services.cli.venue import Venue
from services.system import SYSTEM
from shared.client import ExchangeClient
from shared.config import ADMIN, OPERATOR_USER, Settings
from shared.eventlog.redis_log import RedisEventLog
from tests.redis_server import RedisServer
from tests.support import eventually

__all__ = ["Exchange", "Provisioned", "exchange_settings", "provisioned", "run_greenex", "running_exchange"]

_json = msgspec.json.Decoder()


def exchange_settings(redis_url: str, prefix: str, keys_dir: Path, **extra: Any) -> Settings:
    return Settings(redis_url=redis_url, prefix=prefix, keys_dir=str(keys_dir), venue="greenex-test", **extra)


@contextlib.asynccontextmanager
async def running_exchange(
    redis_url: str, keys_dir: Path, stem: str, **extra: Any
) -> AsyncIterator[Exchange]:
    """An exchange on the test session's Redis under a fresh prefix `<stem><hex>`, its processes running,
    stopped (and its participants' users deleted) on the way out."""
    settings = exchange_settings(redis_url, f"{stem}{uuid.uuid4().hex[:8]}", keys_dir, **extra)
    redis = Redis.from_url(redis_url)
    ex = Exchange(redis, settings)
    await ex.start()
    try:
        yield ex
    finally:
        await ex.stop()
        await redis.aclose()


@dataclass
class Provisioned:
    """An exchange's private Redis, started with its key ring's ACL file (default user locked), and what
    a test drives it with: the admin's connection, a venue, the services' environment."""

    settings: Settings
    venue: Venue
    redis: Redis  # as admin
    env: dict[str, str]  # what each service process (and a CLI run as the operator) reads
    log_dir: Path

    def supervisor(self) -> Supervisor:
        """The real service processes of the map, not yet started."""
        return Supervisor(env=self.env, log_dir=self.log_dir)


def provisioned(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path, prefix: str, **extra: Any
) -> Provisioned:
    keys_dir = tmp_path / "keys"
    server = redis_server_factory(extra_args=("--aclfile", str(keys_dir / ACL_FILE)))
    settings = exchange_settings(server.url, prefix, keys_dir, **extra)
    init_keys(settings, SYSTEM)
    server.start()
    venue = Venue(settings)
    env = service_env(settings, GREENEX_LOG_LEVEL="WARNING")
    return Provisioned(settings, venue, venue.redis(ADMIN), env, tmp_path / "logs")


def run_greenex(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The greenex command in its own process, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


class Exchange:
    """Operator and client helpers over a live exchange; every name it makes is unique per call.

    `redis` is the test's own connection (the server's default user, which tests keep on to look at
    anything); the exchange itself never uses it."""

    def __init__(self, redis: Redis, settings: Settings, env: dict[str, str] | None = None) -> None:
        self.redis, self.settings, self.env = redis, settings, env or {}
        self.venue = Venue(settings)
        self._ids = itertools.count(1)
        self.supervisor: Supervisor | None = None

    @property
    def operator(self) -> ExchangeClient:
        return self.venue.operator

    @property
    def log(self) -> RedisEventLog:
        return RedisEventLog(self.redis, self.settings.keys)

    async def provision(self) -> None:
        """The key ring and every role's Redis user, on the test's server (its default user stays on)."""
        init_keys(self.settings, SYSTEM)
        await apply_acl(self.redis, self.settings, SYSTEM, lock_default=False)

    async def start(self) -> None:
        await self.provision()
        self.supervisor = Supervisor(
            env=service_env(self.settings, GREENEX_LOG_LEVEL="WARNING", **self.env),
            services=partitioned(self.settings.partitions),
        )
        await self.supervisor.start()

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.venue.offboard()
        await self.venue.aclose()

    def unique(self, stem: str) -> str:
        return f"{stem}{next(self._ids)}"

    async def op(self, action: str, **args: Any) -> bytes:
        # Not "op-<n>": the demo seed (seed_exchange) numbers its own operator commands that way.
        return await self.operator.operator(action, self.unique("t-op-"), **args)

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
        """A new participant: its own Redis user and signing key, funded; its client logged in as it."""
        name = self.unique(stem.lower())
        await self.venue.onboard(name, name.title(), roles=roles)
        await self.op("deposit_cash", participant=name, amount=cash)
        client = self.venue.client(name)
        # The deposit's own report comes first on the new stream: the client reads on from after it.
        deposited = await self._deposit_report(name)
        for symbol, (start, end) in (credits or {}).items():
            await self.op(
                "issue_credits", participant=name, instrument=symbol, serial_start=start, serial_end=end
            )
        client.last_report_id = deposited
        return client

    async def _deposit_report(self, participant: str) -> bytes:
        stream, found = self.settings.keys.reports(participant), b""

        async def reported() -> bool:
            nonlocal found
            rows: Any = await self.redis.xrange(stream)
            found = next((row_id for row_id, fields in rows if b'"deposited"' in fields[b"data"]), b"")
            return bool(found)

        await eventually(reported, timeout=15)
        return found

    async def raw(self, client: ExchangeClient, data: bytes | str) -> bytes:
        """XADD exactly what a client in any language would, as itself: `XADD <its stream> * data <json>`."""
        return cast(bytes, await client.redis.xadd(client.in_key, {"data": data}))

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
        await wait_quiet(self.venue, quiet_s=0.3, timeout_s=timeout)
        return await replay_log(RedisEventLog(self.venue.redis(OPERATOR_USER), self.settings.keys))

    async def trades_feed(self) -> list[dict[str, Any]]:
        rows: list[tuple[bytes, dict[bytes, bytes]]] = await self.redis.xrange(  # type: ignore[assignment]
            self.settings.keys.trades
        )
        return [_json.decode(fields[b"data"]) for _, fields in rows]
