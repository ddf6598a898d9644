"""`greenex log` commands: verify (file and Redis), export, import and tail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.provision import apply_acl, init_keys
from services.system import SYSTEM
from shared.config import Settings
from shared.eventlog.archive import write_archive
from shared.eventlog.auth import IN_MEMORY_KEYS, ProducerKeys
from shared.eventlog.entry import Entry
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import RedisEventLog, encode_entry
from shared.keyring import KeyRing
from shared.keys import Keys
from tests.support import FakeClock, new_entries

runner = CliRunner()
CLI = Keys("cli")
KEY = CLI.log
NO_KEYS = {"GREENEX_KEYS_DIR": "/nonexistent/greenex-keys"}  # a verifier holding no key: chain only


def sealed(count: int, producer_keys: ProducerKeys = IN_MEMORY_KEYS) -> list[Entry]:
    async def build() -> list[Entry]:
        log = InMemoryEventLog(clock=FakeClock(), producer_keys=producer_keys)
        await log.append("matching", new_entries(count))
        return await log.read(0, count)

    return asyncio.run(build())


@pytest.fixture
def sync_redis(redis_server: str) -> Iterator[redis.Redis]:
    # CLI commands run their own event loop, so these tests stay synchronous around them.
    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
        yield client


@pytest.fixture
def ring(redis_server: str, sync_redis: redis.Redis, tmp_path: Path) -> KeyRing:
    """A key ring and every role's Redis user for the `cli` exchange on the session's server."""
    settings = Settings(redis_url=redis_server, prefix=CLI.prefix, keys_dir=str(tmp_path / "keys"))
    init_keys(settings, SYSTEM)

    async def provision() -> None:
        client = AsyncRedis.from_url(redis_server)
        try:
            await apply_acl(client, settings, SYSTEM, lock_default=False)
        finally:
            await client.aclose()

    asyncio.run(provision())
    return settings.keyring


def env_of(ring: KeyRing) -> dict[str, str]:
    return {"GREENEX_KEYS_DIR": str(ring.path)}


def test_verify_good_file(tmp_path: Path) -> None:
    """A good archive verifies with exit 0 and prints its count and head hash."""
    entries = sealed(12)
    write_archive(tmp_path / "a", entries)
    result = runner.invoke(app, ["log", "verify", "--file", str(tmp_path / "a")], env=NO_KEYS)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK count=12 head_seq=12 head_hash={entries[-1].hash.hex()}\n")
    assert "producer tags NOT checked" in result.output


def test_verify_holds_the_log_to_links_published_elsewhere(tmp_path: Path) -> None:
    """--expect SEQ:LINK: a log that holds the published link passes; one whose entry there differs, or
    that was cut short before it, is named."""
    entries = sealed(12)
    write_archive(tmp_path / "a", entries)
    write_archive(tmp_path / "short", entries[:9])
    published = f"10:{entries[9].hash.hex()}"
    verify = ["log", "verify", "--expect", published]
    result = runner.invoke(app, [*verify, "--file", str(tmp_path / "a")], env=NO_KEYS)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*verify, "--file", str(tmp_path / "short")], env=NO_KEYS)
    assert result.exit_code == 1
    assert result.output.startswith("BAD seq=10: the log ends at seq 9, before the published seq 10")
    archive = ["--file", str(tmp_path / "a")]
    other = f"10:{entries[8].hash.hex()}"
    result = runner.invoke(app, ["log", "verify", "--expect", other, *archive], env=NO_KEYS)
    assert result.exit_code == 1
    assert result.output.startswith("BAD seq=10: its link is not the one published for this seq")
    result = runner.invoke(app, ["log", "verify", "--expect", "ten", *archive], env=NO_KEYS)
    assert result.exit_code == 2
    assert "give SEQ:LINK" in result.output


def test_verify_file_with_a_flipped_byte(tmp_path: Path) -> None:
    """One flipped byte inside entry 7's payload fails with exit 1 naming seq 7."""
    entries = sealed(12)
    path = tmp_path / "a"
    write_archive(path, entries)
    data = bytearray(path.read_bytes())
    offset = 8 + sum(8 + len(msgspec.msgpack.encode(e)) for e in entries[:6])
    data[offset + 8 + 20] ^= 0x04
    path.write_bytes(data)
    result = runner.invoke(app, ["log", "verify", "--file", str(path)], env=NO_KEYS)
    assert result.exit_code == 1
    assert result.output.startswith("BAD seq=7: CRC mismatch (after 6 good entries)")


@pytest.mark.integration
def test_verify_redis_names_tampered_entry(redis_server: str, sync_redis: redis.Redis, ring: KeyRing) -> None:
    """A stream whose entry 4 has an altered body fails with exit 1 naming seq 4."""
    entries = sealed(6, ring.producer_keys())
    for entry in entries:
        fields = encode_entry(entry)
        if entry.seq == 4:
            fields = encode_entry(msgspec.structs.replace(entry, body=b"\x81\xa1x\x01"))
        sync_redis.xadd(KEY, fields, id=f"{entry.seq}-0")  # type: ignore[arg-type]
    result = runner.invoke(
        app, ["log", "verify", "--redis-url", redis_server, "--prefix", CLI.prefix], env=env_of(ring)
    )
    assert result.exit_code == 1
    assert result.output.startswith("BAD seq=4: hash mismatch")


@pytest.mark.integration
def test_export_import_round_trip(
    tmp_path: Path, redis_server: str, sync_redis: redis.Redis, ring: KeyRing
) -> None:
    """Export a Redis log, import it into an empty one (refused when not empty), verify it: chain,
    producer tags and all."""
    appended = asyncio.run(_append(redis_server, 25, ring))
    env = env_of(ring)
    path = tmp_path / "log.grnx"
    opts = ["--redis-url", redis_server, "--prefix", CLI.prefix]
    assert (
        runner.invoke(app, ["log", "export", str(path), *opts], env=env).output
        == f"exported 25 entries to {path}\n"
    )
    refused = runner.invoke(app, ["log", "import", str(path), *opts], env=env)
    assert refused.exit_code == 1
    assert f"refused: {KEY} is not empty (head seq 25)" in refused.output
    sync_redis.delete(KEY)
    imported = runner.invoke(app, ["log", "import", str(path), *opts], env=env)
    assert imported.exit_code == 0, imported.output
    assert imported.output.startswith("imported 25 entries")
    verified = runner.invoke(app, ["log", "verify", *opts], env=env)
    assert verified.output.startswith(
        f"OK count=25 head_seq=25 head_hash={appended[-1].hash.hex()}\nproducer tags checked\n"
    )


@pytest.mark.integration
def test_tail_prints_entries_readably(redis_server: str, sync_redis: redis.Redis, ring: KeyRing) -> None:
    """tail --from --count prints seq, type, producer, causation and the body as JSON, then stops."""
    asyncio.run(_append(redis_server, 4, ring))
    result = runner.invoke(app, ["log", "tail", "--from", "1", "--count", "2", "--redis-url", redis_server,
                                 "--prefix", CLI.prefix], env=env_of(ring))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{seq} InstrumentHalted producer=matching causation=in:ev:{seq}-0 "
        f'{{"type":"InstrumentHalted","instrument":"SZEA-{seq}"}}'
        for seq in (2, 3)
    ]


async def _append(url: str, count: int, ring: KeyRing) -> list[Entry]:
    client = AsyncRedis.from_url(url)
    try:
        return await RedisEventLog(client, CLI, producer_keys=ring.producer_keys()).append(
            "matching", new_entries(count)
        )
    finally:
        await client.aclose()


@pytest.mark.integration
def test_repair_head_removes_rows_written_past_the_script_and_appends_go_on(
    redis_server: str, sync_redis: redis.Redis, ring: KeyRing
) -> None:
    """A row XADDed by hand at a huge id stops every append (BADHEAD); deleting it by hand leaves the
    stream's last id poisoned (every append refused). `log repair-head` lists such rows, deletes them
    with --yes, sets the last id back (XSETID), and the next append is seq head + 1."""
    for entry in sealed(6, ring.producer_keys()):
        sync_redis.xadd(KEY, encode_entry(entry), id=f"{entry.seq}-0")  # type: ignore[arg-type]
    sync_redis.xadd(KEY, {"junk": "1"}, id="99999999999-0")
    base = ["log", "repair-head", "--redis-url", redis_server, "--prefix", CLI.prefix]

    def append() -> int:
        async def run() -> int:
            client = AsyncRedis.from_url(redis_server)
            try:
                log = RedisEventLog(client, CLI, producer_keys=ring.producer_keys())
                return (await log.append("matching", new_entries(1)))[0].seq
            finally:
                await client.aclose()

        return asyncio.run(run())

    with pytest.raises(LogCorrupt, match="no chain link: see `greenex log repair-head`"):
        append()
    listed = runner.invoke(app, base, env=env_of(ring))
    assert listed.exit_code == 1
    assert "last good entry 6-0" in listed.output
    assert "bad row 99999999999-0" in listed.output
    assert sync_redis.xlen(KEY) == 7  # only listed
    fixed = runner.invoke(app, [*base, "--yes"], env=env_of(ring))
    assert fixed.exit_code == 0, fixed.output
    assert append() == 7

    sync_redis.xadd(KEY, {"junk": "1"}, id="99999999999-0")
    sync_redis.xdel(KEY, "99999999999-0")  # what an operator tries first: the last id stays poisoned
    with pytest.raises(redis.ResponseError, match="equal or smaller"):
        sync_redis.xadd(KEY, {"t": "x"}, id="8-0")
    assert runner.invoke(app, [*base, "--yes"], env=env_of(ring)).exit_code == 0
    assert append() == 8
    sound = runner.invoke(app, base, env=env_of(ring))
    assert sound.exit_code == 0
    assert "the head is sound: last entry 8-0" in sound.output


@pytest.mark.integration
def test_a_stream_trimmed_by_hand_is_refused_by_verify(
    redis_server: str, sync_redis: redis.Redis, ring: KeyRing
) -> None:
    """XTRIM (or an XADD with MINID, which any log writer's password allows) cuts the log's start: with
    the checkpoint key, `log verify` refuses a stream that holds no signed checkpoint of the entry just
    before its first (`greenex log archive` always leaves one), instead of trusting the first link."""
    for entry in sealed(6, ring.producer_keys()):
        sync_redis.xadd(KEY, encode_entry(entry), id=f"{entry.seq}-0")  # type: ignore[arg-type]
    sync_redis.xtrim(KEY, minid="4-0", approximate=False)
    result = runner.invoke(
        app, ["log", "verify", "--redis-url", redis_server, "--prefix", CLI.prefix], env=env_of(ring)
    )
    assert result.exit_code == 1
    assert "BAD seq=4: the stream starts at seq 4 and holds no signed checkpoint of seq 3" in result.output
