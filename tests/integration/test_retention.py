"""Retention: archive and trim the log under a running exchange's feet, restart every service on the
trimmed stream, and replay the whole history from the archive and the stream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.demo import seed_exchange
from services.cli.history import history
from services.cli.readmodel import replay_log
from services.system import SYSTEM
from shared.domain.codec import decode_event
from shared.domain.ledger import LogCheckpoint
from shared.eventlog.archive import write_archive
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.segments import ArchiveDir, segment_name
from shared.eventlog.verify import ChainVerifier
from tests.integration.exchange import provisioned, run_greenex
from tests.integration.load_support import OrderLoad, exchange_problems, settled_exchange
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(150)]

PER_CLIENT = 12


async def test_archive_trim_restart_and_replay_over_archive_and_tail(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """`greenex log archive` moves the old entries to a verified segment and trims the stream at a point
    every service's snapshot and a signed checkpoint cover; every service restarts on the trimmed
    stream (none re-reads or re-answers anything), trading goes on, and replay over archive + stream
    gives the digests the live services publish and the state the untrimmed log gave."""
    ex = provisioned(
        redis_server_factory, tmp_path, "ret", snapshot_every=200, checkpoint_every=100,
        archive_dir=str(tmp_path / "archive"),
    )  # fmt: skip
    settings, venue, redis, env = ex.settings, ex.venue, ex.redis, ex.env
    sup = ex.supervisor()
    await sup.start()
    try:
        await seed_exchange(venue)
        load = OrderLoad(venue, seed=9)
        for _ in range(4):
            await load.burst(PER_CLIENT)
        before = await settled_exchange(redis, settings, timeout=60)
        await sup.stop()  # a clean stop: every follower snapshots
        head = before[-1].seq
        untrimmed = await replay_log(RedisEventLog(redis, settings.keys))

        refused = run_greenex(env, "log", "archive", "--before", "junk-date")
        assert refused.returncode == 2
        assert "neither a seq nor a date" in refused.stderr
        done = run_greenex(env, "log", "archive", "--before", str(head))
        assert done.returncode == 0, done.stderr
        assert "archived seq 1.." in done.stdout
        stream = RedisEventLog(redis, settings.keys)
        cut = (await stream.read(0, 1))[0].seq
        # Bounded by the oldest newest-snapshot (intake's is as of its last own entry, often hundreds back).
        assert cut > 200
        assert f"the stream starts at {cut} (kept by " in done.stdout
        assert ArchiveDir(settings.archive_dir).last_seq == cut - 1
        signed = {e.seq for e in map(decode_event, (x.body for x in before)) if isinstance(e, LogCheckpoint)}
        assert cut - 1 in signed  # it cut just after an entry the exchange signed
        # A run stopped between its segment and its trim left this behind: it is dropped, not trusted.
        unfinished = Path(settings.archive_dir) / segment_name(cut, cut + 49)
        write_archive(unfinished, await stream.read(cut - 1, 50))
        again = run_greenex(env, "log", "archive", "--before", str(head))
        assert not unfinished.exists()
        assert again.returncode == 1
        assert "nothing archived" in again.stderr

        replayed = await replay_log(history(settings, redis))
        assert replayed.digest() == untrimmed.digest()

        sup = ex.supervisor()
        await sup.start()
        for _ in range(3):
            await load.burst(PER_CLIENT)
        entries = await settled_exchange(redis, settings, timeout=60)
        assert entries[: len(before)] == before
        assert len(entries) > len(before)
        assert await exchange_problems(redis, settings, entries) == []  # replay == live digests, reports once
        verifier = ChainVerifier(
            producer_keys=settings.keyring.producer_keys(),
            answers={core.name: core.answers_to for core in SYSTEM.cores},
        )
        for entry in entries:
            verifier.check(entry)  # an answer given twice would be named here
        assert "checkpoint" in {e.producer for e in entries[len(before) :]}  # it signs on after the cut
        verified = run_greenex(env, "log", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert f"head_seq={entries[-1].seq}" in verified.stdout
    finally:
        await sup.stop()
        await venue.aclose()
