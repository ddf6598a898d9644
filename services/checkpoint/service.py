"""The checkpoint process: signs `(seq, chain link)` of every `checkpoint_every`-th entry and of every
close of day, and appends the signature to the log as a LogCheckpoint.

Which entries get a checkpoint depends on the log alone (seq multiples, TradingDayClosed entries), and
Ed25519 signatures are deterministic, so a restart signs exactly what it would have signed; each append
carries the covered seq as its producer position, so none is appended twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from faststream import FastStream

from services.checkpoint.due import CHECKPOINT, due_checkpoints
from services.runtime.app import cancel_tasks, fail_fast, lifecycle_app
from services.runtime.follower import last_cause_answered
from services.runtime.system import Process, System
from shared.config import Settings, connect
from shared.crypto import CheckpointKey
from shared.domain.codec import encode_event, event_type
from shared.eventlog.checkpoints import checkpoint_in, checkpoint_problem
from shared.eventlog.entry import GENESIS_HASH, NewEntry, position_of_seq
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.verify import ChainVerifier, unvouched
from shared.resp import RespClient

__all__ = ["build_app"]

log = structlog.get_logger("greenex.checkpoint")


async def _sign_loop(
    settings: Settings,
    event_log: RedisEventLog,
    key: CheckpointKey,
    new_verifier: Callable[[int, bytes], ChainVerifier],
    stop: asyncio.Event,
) -> None:
    """Never signs an entry before a verifier passed the whole stream up to it: chain, producer tags,
    causations, freshness (no copy of a genuine entry) and the checkpoints already in it. So every start
    reads the stream from its first entry (~160k entries/s checked: loadtests/RESULTS.md, "Replay"); a
    bad entry stops the process, loudly.

    A trimmed stream (`greenex log archive`) starts just after an entry the exchange signed a checkpoint
    of, so the chain goes on from that signed link, and that checkpoint is the last one due before it."""
    first = await event_log.read(0, 1)
    start, link = (first[0].seq, first[0].prev_hash) if first else (1, GENESIS_HASH)
    verifier = new_verifier(start, link)
    if start > 1:
        await _vouch_for_start(event_log, start, link, key.public_key, verifier.partition)
    stored = await event_log.position(CHECKPOINT)
    # The log itself says which checkpoints are in it (the positions hash is only a shortcut).
    in_log = await last_cause_answered(event_log, CHECKPOINT, 0, verifier.producer_keys)
    signed_up_to = max(int(stored[1:]) if stored else 0, in_log)
    # previous: the last checkpoint due so far (appended or not yet)
    after = previous = start - 1
    while not stop.is_set():
        entries = await event_log.follow(after, 5000, 1000)
        if not entries:
            continue
        for entry in entries:
            verifier.check(entry)
        after = entries[-1].seq
        due = due_checkpoints(entries, settings.checkpoint_every, key, settings.signed_venue, previous)
        previous = due[-1].seq if due else previous
        for checkpoint in due:
            if checkpoint.seq <= signed_up_to:
                continue  # appended before a restart
            new = NewEntry(
                event_id=f"{CHECKPOINT}:{checkpoint.seq}:0", causation=f"log:{checkpoint.seq}",
                type=event_type(checkpoint), event_ns=entries[-1].event_ns, body=encode_event(checkpoint),
            )  # fmt: skip
            await event_log.append(CHECKPOINT, [new], position=position_of_seq(checkpoint.seq))
            signed_up_to = checkpoint.seq
            log.info("checkpoint_signed", seq=checkpoint.seq, reason=checkpoint.reason)


async def _vouch_for_start(
    event_log: RedisEventLog, start: int, link: bytes, public_key: bytes, partition: int | None
) -> None:
    """A trimmed stream must hold the exchange's signed checkpoint of the entry before its first, with
    that entry's link (`greenex log archive` cuts only there): else whoever trimmed it was not the
    operator's archive, and nothing is signed on top of it."""
    after = start - 1
    while entries := await event_log.read(after, 5000):
        for entry in entries:
            checkpoint = checkpoint_in(entry)
            if checkpoint is None or checkpoint.seq != start - 1:
                continue
            if checkpoint_problem(checkpoint, link, public_key, partition) is None:
                return
        after = entries[-1].seq
    raise LogCorrupt(start, unvouched(start))


def build_app(settings: Settings, system: System, process: Process) -> FastStream:
    """Needs the checkpoint signing key and the log master key; KeyMissing stops it before it starts."""
    ring = settings.keyring
    key = ring.checkpoint()
    redis = connect(settings, settings.user(process.name))
    resp = RespClient.like(redis)
    event_log = RedisEventLog(
        redis, settings.keys, resp=resp, bells=system.bells(settings.keys), reader=process.name,
        producer_keys=settings.producer_keys(), lease=settings.writer_lease(process.name),
    )  # fmt: skip
    app = lifecycle_app(settings, process.name)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    answers = {core.name: core.answers_to for core in system.cores}

    def verifier(start_seq: int, prev_hash: bytes) -> ChainVerifier:
        return ChainVerifier(
            start_seq=start_seq, prev_hash=prev_hash, producer_keys=settings.producer_keys(), answers=answers,
            checkpoint_key=key.public_key,
        )  # fmt: skip

    async def run() -> None:
        try:
            await _sign_loop(settings, event_log, key, verifier, stop)
        except Exception as exc:  # noqa: BLE001 - a checkpoint must not silently stop: crash, restart
            fail_fast(process.name, exc)

    @app.after_startup
    async def start() -> None:
        tasks.append(asyncio.create_task(run()))

    @app.on_shutdown
    async def close() -> None:
        stop.set()
        await cancel_tasks(tasks)
        await resp.aclose()
        await redis.aclose()

    return app
