"""`greenex replay`, `audit` and `log export/import` on a real exchange log made by the live services."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import msgspec
import pytest
import redis
from redis.asyncio import Redis
from typer.testing import CliRunner

from services.cli.demo import seed_exchange
from services.cli.main import app
from services.matching.processor import MatchingProcessor
from services.runtime.processor import restored
from services.runtime.snapshots import SnapshotStore, decode_record, encode_record
from services.settlement.core import Settlement
from services.system import SYSTEM
from shared.config import ADMIN, Settings
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.redis_log import RedisEventLog, decode_stream_entry, encode_entry
from shared.keys import Keys
from tests.integration.exchange import Exchange, exchange_settings
from tests.integration.load_support import OrderLoad, settled_exchange

pytestmark = [pytest.mark.integration, pytest.mark.slow]

runner = CliRunner()


@dataclass
class Live:
    url: str
    settings: Settings

    def env(self, prefix: str | None = None) -> dict[str, str]:
        """The CLI's environment: as the operator on this exchange; on a copy under another prefix (which
        the operator's Redis user may not read) as admin."""
        env = {"REDIS_URL": self.url, "GREENEX_PREFIX": prefix or self.settings.prefix,
               "GREENEX_KEYS_DIR": self.settings.keys_dir}  # fmt: skip
        return env if prefix is None else {**env, "GREENEX_CLI_USER": ADMIN}


async def _run_exchange(url: str, settings: Settings) -> None:
    """Services up, seed, a seeded load, drained; then a clean stop (which writes final snapshots)."""
    client = Redis.from_url(url)
    exchange = Exchange(client, settings, env={"GREENEX_SNAPSHOT_EVERY": "300"})
    await exchange.start()
    try:
        await seed_exchange(exchange.venue)
        load = OrderLoad(exchange.venue, seed=7)
        for _ in range(10):
            await load.burst(10)
        await settled_exchange(client, settings)
    finally:
        await exchange.stop()
        await client.aclose()


@pytest.fixture(scope="module")
def live(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Live:
    settings = exchange_settings(redis_server, f"rp{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("keys"))
    asyncio.run(_run_exchange(redis_server, settings))
    return Live(redis_server, settings)


@pytest.fixture
def sync_redis(live: Live) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(live.url) as client:
        yield client


def digest_of(output: str) -> str:
    found: list[str] = re.findall(r"^state digest ([0-9a-f]{64})$", output, re.MULTILINE)
    assert len(found) == 1, output
    return found[0]


def _as_if_running(sync_redis: redis.Redis, keys: Keys) -> None:
    """Leases naming a live process of this host (the test itself) for every process of the map: what
    --compare-live takes for running services (the fixture's exchange has stopped)."""
    for process in SYSTEM.processes:
        sync_redis.set(keys.lease(process.name), f"test {socket.gethostname()} {os.getpid()}")


def test_compare_live_leaves_out_what_is_not_running(live: Live, sync_redis: redis.Redis) -> None:
    """Digests of exited services stay behind in the hash: with no live lease they are not compared,
    and --compare-live says so (exit 1) instead of reporting a match."""
    for process in SYSTEM.processes:
        sync_redis.delete(live.settings.keys.lease(process.name))
    result = runner.invoke(app, ["replay", "--compare-live"], env=live.env())
    assert result.exit_code == 1, result.output
    assert "matching: its process is not running (no live lease)" in result.output
    assert "live digests match" not in result.output


def test_replay_twice_matches_and_equals_the_live_digests(live: Live, sync_redis: redis.Redis) -> None:
    """Two replays print the same digest, and --compare-live finds every core equal to its service."""
    _as_if_running(sync_redis, live.settings.keys)
    first = runner.invoke(app, ["replay", "--compare-live"], env=live.env())
    second = runner.invoke(app, ["replay", "--compare-live"], env=live.env())
    assert first.exit_code == 0, first.output
    assert "live digests match (matching@" in first.output
    assert digest_of(first.output) == digest_of(second.output)


def test_export_import_round_trips_a_real_log(live: Live, sync_redis: redis.Redis, tmp_path: Path) -> None:
    """export -> import into an empty log: byte-identical entries and chain, the same replay digest,
    and the file replays to the same digest too."""
    path, copy = tmp_path / "exchange.grnxlog", f"{live.settings.prefix}copy"
    exported = runner.invoke(app, ["log", "export", str(path)], env=live.env())
    assert exported.exit_code == 0, exported.output
    imported = runner.invoke(app, ["log", "import", str(path), "--prefix", copy], env=live.env())
    assert imported.exit_code == 0, imported.output
    original = sync_redis.xrange(live.settings.keys.log)
    assert sync_redis.xrange(Keys(copy).log) == original  # ids, type fields and encoded entries
    assert len(original) > 1000  # type: ignore[arg-type]
    from_redis = runner.invoke(app, ["replay"], env=live.env())
    from_copy = runner.invoke(app, ["replay"], env=live.env(copy))
    from_file = runner.invoke(app, ["replay", "--file", str(path)], env=live.env())
    assert {digest_of(r.output) for r in (from_redis, from_copy, from_file)} == {digest_of(from_redis.output)}


def test_tampered_log_is_refused_naming_the_seq(live: Live, sync_redis: redis.Redis) -> None:
    """A copy of the log with one altered body: replay exits 1 and names that entry's seq."""
    bad = f"{live.settings.prefix}bad"
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], sync_redis.xrange(live.settings.keys.log))
    for stream_id, fields in rows:
        entry = decode_stream_entry(stream_id, fields)
        if entry.seq == 77:
            entry = msgspec.structs.replace(entry, body=entry.body + b"\x00")
        sync_redis.xadd(Keys(bad).log, encode_entry(entry), id=stream_id)  # type: ignore[arg-type]
    result = runner.invoke(app, ["replay"], env=live.env(bad))
    assert result.exit_code == 1
    assert "BAD seq=77: hash mismatch; replay refused" in result.output


def test_compare_live_names_the_core_and_account_that_differ(live: Live, sync_redis: redis.Redis) -> None:
    """A settlement 'service' whose state has one balance off: compare-live names settlement and the
    account (from its snapshot), and exits 1."""
    prefix = f"{live.settings.prefix}div"
    source_keys, copy_keys = live.settings.keys, Keys(prefix)
    for stream_id, fields in sync_redis.xrange(source_keys.log):  # type: ignore[union-attr]
        sync_redis.xadd(copy_keys.log, fields, id=stream_id)  # type: ignore[arg-type]
    source = source_keys.snapshots("settlement")
    sealer = live.settings.keyring.producer_keys()  # the test holds the key ring: it can seal
    snap = decode_record(sync_redis.lindex(source, 0), sealer)  # type: ignore[arg-type]
    core = restored(Settlement(), snap.state)
    core._cash["szenergy"] += 1  # a fen moves between accounts: conserved, so restore accepts it
    core._cash["cementco"] -= 1
    forged = msgspec.structs.replace(snap, state=core.snapshot())
    sync_redis.lpush(copy_keys.snapshots("settlement"), encode_record(forged, sealer))
    published = cast(dict[bytes, bytes], sync_redis.hgetall(source_keys.digests))
    for name, value in published.items():
        sync_redis.hset(copy_keys.digests, name, value)
    sync_redis.hset(copy_keys.digests, "settlement", f"{snap.seq}:{core.digest()}")
    _as_if_running(sync_redis, copy_keys)
    result = runner.invoke(app, ["replay", "--compare-live"], env=live.env(prefix))
    assert result.exit_code == 1, result.output
    assert f"settlement differs at seq {snap.seq}" in result.output
    assert "cash of account cementco" in result.output  # the first account in order that differs


async def test_snapshot_store_falls_back_past_damaged_snapshots(live: Live) -> None:
    """The newest intact snapshot that matches the log wins; damaged ones are skipped; none -> None."""
    client = Redis.from_url(live.url)
    try:
        sealer = live.settings.keyring.producer_keys()
        store = SnapshotStore(client, live.settings.keys, sealer)
        log = RedisEventLog(client, live.settings.keys)
        good = await store.load("matching", log)
        assert good is not None
        assert good.seq > 0
        records = await store.records("matching")
        prefix = f"{live.settings.prefix}snap"
        scratch = SnapshotStore(client, Keys(prefix), sealer)
        damaged = records[0][:-1] + bytes([records[0][-1] ^ 1])
        await client.rpush(scratch.key("matching"), damaged, *records[1:])
        older = await scratch.load("matching", log)
        assert older is None or older.seq < good.seq
        other_log = InMemoryEventLog()  # a snapshot never matches a log that lacks its entry
        assert await store.load("matching", other_log) is None
        # Sealed and of this log, but a state this code cannot read (an older version's, say): refused
        # like a damaged one, so the service replays instead of failing at every start.
        unreadable = msgspec.structs.replace(good, state=b"\x93not a matching state")
        await scratch.save(unreadable)
        restored = await scratch.load("matching", log, lambda s: MatchingProcessor().restore(s.state))
        assert restored is None or restored.seq < good.seq
        assert await scratch.load("matching", log) is not None  # without a restore it looked fine
    finally:
        await client.aclose()


def test_point_in_time_views_and_audit(live: Live) -> None:
    """--until/--until-time give an earlier state; --instrument and --account show it; audit lists
    the account's events with amounts."""
    early = runner.invoke(app, ["replay", "--until", "60", "--account", "szenergy"], env=live.env())
    assert early.exit_code == 0, early.output
    assert "to seq 60" in early.output
    assert "account szenergy" in early.output
    book = runner.invoke(app, ["replay", "--instrument", "SZEA-2025", "--until-time", "2000-01-01T00:00:00"],
                         env=live.env())  # fmt: skip
    assert book.exit_code == 2  # nothing was logged by then, so there is no such book yet
    full = runner.invoke(app, ["replay", "--instrument", "SZEA-2025"], env=live.env())
    assert full.exit_code == 0
    assert "SZEA-2025" in full.output
    audit = runner.invoke(app, ["audit", "szenergy"], env=live.env())
    assert audit.exit_code == 0, audit.output
    lines = audit.output.splitlines()
    assert any(" TradeSettled " in line and "cash=" in line for line in lines)
    assert any(" CashDeposited " in line and "amount=40000000.00" in line for line in lines)
    assert lines[-1].endswith("events touched szenergy")


def test_balances_of_an_unknown_account_is_an_error_and_a_known_one_is_shown(live: Live) -> None:
    unknown = runner.invoke(app, ["balances", "nobody"], env=live.env())
    assert unknown.exit_code == 1
    assert "no account 'nobody'" in unknown.output
    known = runner.invoke(app, ["balances", "szenergy"], env=live.env())
    assert known.exit_code == 0
    assert "szenergy" in known.output


def test_people_read_cash_with_thousands_separators(live: Live) -> None:
    shown = runner.invoke(app, ["balances", "szenergy"], env=live.env())
    assert shown.exit_code == 0
    assert re.search(r"\d{1,3}(,\d{3})+\.\d\d", shown.output), shown.output


def test_book_reads_the_live_view_and_agrees_with_a_replay(live: Live) -> None:
    """`book` answers from the depth view matching keeps (no replay); --replay rebuilds the same levels."""
    fast = runner.invoke(app, ["book", "SZEA-2025", "--levels", "5"], env=live.env())
    slow = runner.invoke(app, ["book", "SZEA-2025", "--levels", "5", "--replay"], env=live.env())
    assert fast.exit_code == 0, fast.output
    assert slow.exit_code == 0, slow.output
    assert "live view kept by matching" in fast.output
    assert "live view" not in slow.output
    rows = [line for line in fast.output.splitlines() if re.search(r"\d+\.\d\d", line)]
    assert len(rows) >= 2
    assert rows == [line for line in slow.output.splitlines() if re.search(r"\d+\.\d\d", line)]


def test_holdings_show_tonnes_by_project_and_vintage_and_serials_on_request(live: Live) -> None:
    short = runner.invoke(app, ["balances", "sunforest"], env=live.env())
    assert short.exit_code == 0, short.output
    assert "by project and vintage" in short.output
    assert "SF001 2024:" in short.output  # its offsets, from the registry's record of where serials came from
    assert "serial blocks" not in short.output
    detailed = runner.invoke(app, ["balances", "sunforest", "--serials"], env=live.env())
    assert "serial blocks" in detailed.output
    allowances = runner.invoke(app, ["balances", "szenergy"], env=live.env())
    assert "vintage 2025:" in allowances.output  # an allowance's vintage is its instrument's
    assert "vintage 0" not in allowances.output
