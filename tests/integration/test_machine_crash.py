"""A machine crash under `appendfsync always`: no report a client read is missing from the log after it.

What is simulated. An exchange of real service processes runs on a private Redis with `appendonly yes`,
`appendfsync always` and the ring's ACL file, trading a seeded signed load, while every participant's
client reads its report stream. At one instant, with orders still flowing, the test takes the list of
every report the clients have read, freezes Redis (SIGSTOP: it writes nothing more), copies its AOF
directory (Redis 7: a manifest plus base and incr files), then kills Redis and every service with
SIGKILL. A new Redis started from the copy is the machine after its reboot. Checked: each report a
client read is still on its stream, at the same place; the entry at the report's `seq` is in the
restored log and implies exactly that report (a trade's `trade_id` names the TradeExecuted at that
seq, a settlement's the TradeSettled); the log verifies (ChainVerifier: links, producer tags, each
answer once); and after the services restart on the restored Redis and trade on, no trade id a client
saw names a different trade, and the whole exchange is consistent (exchange_problems).

What it proves, and what not. Copying a file reads the page cache, so the copy holds what Redis had
handed to write(2), not only what had reached the disk: this test shows that Redis writes an entry
(and the report derived from it) to its AOF before it replies to anyone who reads it, and that the
exchange stays consistent when it restarts from any such cut. It does not observe an fsync. What makes
the copy equal to what survives a power cut is Redis's documented behaviour under `always`: the
write and the fsync both happen in the same turn of its event loop, before the replies are sent. Under
`everysec` this same copy would pass too (the write happens before the reply there as well) although a
power cut can then lose up to about a second of acknowledged writes (docs/operations.md, "Durability
profiles", says what a client must do about it). The everysec case below shows that loss mode by
cutting the copy back to the size the AOF had one second before the instant, as if the last background
fsync had run then: reports the clients read are gone, and their trade ids go to other trades after
the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from redis.asyncio import Redis

from services.cli.demo import DEMO_PARTICIPANTS, seed_exchange
from services.cli.local import service_env
from services.cli.provision import ACL_FILE, Credentials, init_keys
from services.cli.supervisor import Supervisor
from services.cli.venue import Venue
from services.system import SYSTEM
from shared.client import ExchangeClient
from shared.config import ADMIN, Settings
from shared.domain.codec import decode_event
from shared.domain.events import TradeExecuted
from shared.domain.ledger import TradeSettled
from shared.eventlog.entry import Entry
from shared.eventlog.verify import ChainVerifier
from tests.integration.exchange import exchange_settings
from tests.integration.load_support import (
    OrderLoad,
    exchange_problems,
    implied_reports,
    log_entries,
    settled_exchange,
)
from tests.redis_server import RedisServer
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

SEED, PER_CLIENT = 11, 12
# The instant: orders have flowed this long and the clients have read this many trade reports (longer
# than the everysec cut below, so that what it cuts is load, not the seeding).
FLOW_BEFORE_THE_CRASH_S, TRADES_BEFORE_THE_CRASH = 2.5, 150
BURSTS_AFTER = 4
AOF_DIR = "appendonlydir"  # Redis 7's default appenddirname


@dataclass
class ReportReader:
    """Every participant's client reading its report stream until told to stop; `read` is what each
    has read, in order."""

    clients: list[ExchangeClient]
    read: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stopping: bool = False

    async def run(self) -> None:
        while not self.stopping:
            for client in self.clients:
                self.read.setdefault(client.participant, []).extend(await client.reports(count=500))
            await asyncio.sleep(0.005)

    def trades(self) -> int:
        return sum(r.get("exec_type") == "trade" for reports in self.read.values() for r in reports)


@dataclass
class AofSizes:
    """The incr AOF file's size, sampled every 20 ms: what was written when (for the everysec cut)."""

    folder: Path
    samples: list[tuple[float, int]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), _incr_file(self.folder).stat().st_size))
            await asyncio.sleep(0.02)

    def size_at(self, when: float) -> int:
        """The size last sampled at or before `when` (the sampling must have begun by then)."""
        sizes = [size for at, size in self.samples if at <= when]
        assert sizes, "no AOF size sampled that early"
        return sizes[-1]


def _incr_file(folder: Path) -> Path:
    """The AOF file Redis appends to: the manifest's last `type i` line."""
    lines = [line.split() for line in (folder / "appendonly.aof.manifest").read_text().splitlines()]
    return folder / [words[1] for words in lines if words[-1] == "i"][-1]


async def _flow(load: OrderLoad) -> None:
    """Bursts of signed orders until cancelled (the machine dies under it)."""
    while True:
        await load.burst(PER_CLIENT)
        await asyncio.sleep(0.02)


def _server(factory: Callable[..., RedisServer], keys_dir: Path, appendfsync: str) -> RedisServer:
    # No automatic AOF rewrite: a rewrite swaps files under the manifest while the copy is taken.
    durability = ("--appendfsync", appendfsync, "--auto-aof-rewrite-percentage", "0")
    return factory(appendonly=True, extra_args=("--aclfile", str(keys_dir / ACL_FILE), *durability))


def _services(settings: Settings, logs: Path) -> Supervisor:
    return Supervisor(env=service_env(settings, GREENEX_LOG_LEVEL="WARNING"), log_dir=logs)


async def test_under_always_a_machine_crash_loses_no_report_a_client_read(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """Every report a client read before the machine died is on its stream and implied by the restored
    log, which verifies; after the restart and more trading no trade id a client saw names another
    trade, and the exchange is consistent."""
    crash = await _trade_until_the_machine_dies(redis_server_factory, tmp_path, "always")
    missing, reused = await _reboot_and_trade_on(redis_server_factory, tmp_path, crash)
    assert missing == []
    assert reused == []


async def test_under_everysec_a_machine_crash_can_lose_what_a_client_read(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """The loss docs/operations.md names for everysec, shown: with the disk as of a second before the
    instant (the last background fsync, at worst), reports a client read are gone, and trade ids it
    saw go to other trades after the restart; the exchange itself is consistent all the same."""
    crash = await _trade_until_the_machine_dies(redis_server_factory, tmp_path, "everysec")
    os.truncate(_incr_file(crash.disk), crash.sizes.size_at(crash.instant - 1.0))
    missing, reused = await _reboot_and_trade_on(redis_server_factory, tmp_path, crash)
    assert missing, "everysec with the disk a second behind lost nothing a client read"
    assert reused, "no trade id a client saw went to another trade"


@dataclass(frozen=True)
class Crash:
    """What the clients had read when the machine died, and the disk it left behind."""

    appendfsync: str
    settings: Settings
    credentials: dict[str, Credentials]
    load: OrderLoad
    read: dict[str, list[dict[str, Any]]]
    disk: Path  # the copy of the AOF directory
    sizes: AofSizes
    instant: float


async def _trade_until_the_machine_dies(
    factory: Callable[..., RedisServer], tmp_path: Path, appendfsync: str
) -> Crash:
    keys_dir = tmp_path / "keys"
    machine = _server(factory, keys_dir, appendfsync)
    settings = exchange_settings(machine.url, "machine", keys_dir, snapshot_every=300)
    init_keys(settings, SYSTEM)
    machine.start()
    venue, sup = Venue(settings), _services(settings, tmp_path / "logs")
    await sup.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        await seed_exchange(venue)
        load = OrderLoad(venue, SEED)
        reader, sizes = ReportReader(load.clients), AofSizes(machine.workdir / AOF_DIR)
        tasks += [asyncio.create_task(t.run()) for t in (reader, sizes)]
        tasks.append(asyncio.create_task(_flow(load)))
        flowing = time.monotonic()

        def under_way() -> bool:
            long_enough = time.monotonic() - flowing >= FLOW_BEFORE_THE_CRASH_S
            return long_enough and reader.trades() >= TRADES_BEFORE_THE_CRASH

        await eventually(under_way, timeout=60, interval=0.01)
        # The instant: what the clients read so far, then the machine dies with orders in flight.
        reader.stopping = True
        await tasks[0]
        read, instant = {p: list(r) for p, r in reader.read.items()}, time.monotonic()
        machine.freeze()
        assert not tasks[2].done(), "the load must still be flowing when the machine dies"
        shutil.copytree(machine.workdir / AOF_DIR, tmp_path / "disk")
        for proc in sup.procs.values():
            proc.kill()
        machine.kill()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # its Redis died under it
                await task
        await sup.stop()
        await venue.aclose()
    print(f"{appendfsync}: read {sum(map(len, read.values()))} reports, {reader.trades()} of them of trades")
    return Crash(appendfsync, settings, venue.credentials, load, read, tmp_path / "disk", sizes, instant)


async def _reboot_and_trade_on(
    factory: Callable[..., RedisServer], tmp_path: Path, crash: Crash
) -> tuple[list[str], list[int]]:
    """A Redis on the crash's disk; the reports read that are gone, then (after the services restart
    and trade on) the trade ids seen that the log gives to other trades. Whatever was lost, the log
    verifies and the exchange is consistent."""
    rebooted = _server(factory, Path(crash.settings.keys_dir), crash.appendfsync)
    shutil.copytree(crash.disk, rebooted.workdir / AOF_DIR)
    rebooted.start()
    settings = msgspec.structs.replace(crash.settings, redis_url=rebooted.url)
    venue = Venue(settings)
    venue.credentials = crash.credentials  # the participants' Redis users are in the ring's ACL file
    redis = venue.redis(ADMIN)
    sup = _services(settings, tmp_path / "logs-after")
    try:
        restored = await log_entries(redis, settings)
        _verify(restored, settings)
        missing = await _reports_missing(redis, settings, restored, crash.read)
        await sup.start()
        crash.load.clients = [venue.client(p) for p, *_ in DEMO_PARTICIPANTS]
        for _ in range(BURSTS_AFTER):
            await crash.load.burst(PER_CLIENT)
        entries = await settled_exchange(redis, settings, timeout=60)
        assert await exchange_problems(redis, settings, entries) == []
        _verify(entries, settings)
        assert _trades(entries).keys() - _trades(restored).keys(), "no trade after the restart"
        reused = _trade_ids_reused(entries, _trades_seen(crash.read))
    finally:
        await sup.stop()
        await venue.offboard()
        await venue.aclose()
    print(f"{crash.appendfsync}: {len(missing)} reports read are gone, {len(reused)} trade ids reused")
    return missing, reused


def _verify(entries: list[Entry], settings: Settings) -> None:
    verifier = ChainVerifier(
        producer_keys=settings.keyring.producer_keys(),
        answers={core.name: core.answers_to for core in SYSTEM.cores},
    )
    for entry in entries:
        verifier.check(entry)  # a broken link, a forged tag, an answer given twice: named here


async def _reports_missing(
    redis: Redis, settings: Settings, entries: list[Entry], read: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """The reports a client read that are gone: each must still be on its stream at the same place,
    and be one the restored log implies at its seq (a trade or settlement naming that entry's trade)."""
    by_seq = {e.seq: e for e in entries}
    implied: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for stream, reports in implied_reports(entries, settings.keys).items():
        for report in reports:
            implied.setdefault((stream, report["seq"]), []).append(report)
    missing: list[str] = []
    for participant, reports in read.items():
        stream = settings.keys.reports(participant)
        rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(stream, count=len(reports)))
        kept = [msgspec.json.decode(fields[b"data"]) for _, fields in rows]
        for place, report in enumerate(reports):
            seq = report.get("seq")
            on_stream = place < len(kept) and kept[place] == report
            # A report refused at the edge has no seq: it names its input, not an entry.
            in_log = seq is None or report in implied.get((stream, seq), [])
            if not (on_stream and in_log):
                missing.append(f"{participant}: report {place} ({report.get('exec_type')} at seq {seq})")
            elif seq is not None and "trade_id" in report:  # an execution report of a trade, a settlement
                event = decode_event(by_seq[seq].body)
                assert isinstance(event, TradeExecuted | TradeSettled), (report, event)
                assert event.trade_id == report["trade_id"], (report, event)
    return missing


def _trades_seen(read: dict[str, list[dict[str, Any]]]) -> dict[int, tuple[int, str, int]]:
    """trade id -> (seq, price, quantity) of every trade a client read an execution report of."""
    return {
        r["trade_id"]: (r["seq"], r["last_price"], r["last_qty"])
        for reports in read.values()
        for r in reports
        if r.get("exec_type") == "trade"
    }


def _trades(entries: list[Entry]) -> dict[int, list[tuple[int, TradeExecuted]]]:
    trades: dict[int, list[tuple[int, TradeExecuted]]] = {}
    for entry in entries:
        if entry.type == "TradeExecuted":
            event = decode_event(entry.body)
            assert isinstance(event, TradeExecuted)
            trades.setdefault(event.trade_id, []).append((entry.seq, event))
    return trades


def _trade_ids_reused(entries: list[Entry], seen: dict[int, tuple[int, str, int]]) -> list[int]:
    """Trade ids a client saw that the log now gives to a trade at another seq, or with another
    quantity (the log never holds an id twice: exchange_problems checks that)."""
    trades = _trades(entries)
    return [
        trade_id
        for trade_id, (seq, _, qty) in seen.items()
        if trade_id in trades and (trades[trade_id][0][0] != seq or trades[trade_id][0][1].quantity != qty)
    ]
