"""The transfers process of one partition: credits here what other partitions transferred out to it.

One loop per source partition follows that partition's CashTransferredOut index (`log:index:<type>`: a
copy of each debit under its log seq, which the append script keeps beside the log), blocking on it, and
appends the CashTransferredIn entries due here,
with the source's request seq as the producer position in the same atomic append: a crash before the
append credits nothing, one after it finds the position moved, so each transfer is credited once.
"""

from __future__ import annotations

import asyncio

import structlog
from faststream import FastStream
from redis.asyncio import Redis

from services.runtime.app import cancel_tasks, fail_fast, lifecycle_app
from services.runtime.system import Process, System
from services.transfers.credits import OUT, Credits
from shared.cluster import place_on_cluster
from shared.config import Settings, connect
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import position_of_seq
from shared.eventlog.port import EventLog
from shared.eventlog.redis_log import RedisEventLog
from shared.partitions import transfer_of_causation
from shared.resp import RespClient

__all__ = ["build_app", "credited_up_to"]

log = structlog.get_logger("greenex.transfers")


async def credited_up_to(own_log: EventLog, credits: Credits, keys: ProducerKeys) -> int:
    """The highest request of `credits.source` credited here: the producer's position, or what its entries
    in the log name if that is further (a lost position must cost a scan, never a second credit)."""
    stored = await own_log.position(credits.producer)
    up_to, after = int(stored[1:]) if stored else 0, 0
    while entries := await own_log.read(after, 5000):
        for entry in entries:
            if entry.producer != credits.producer:
                continue
            keys.check_entry(entry)
            kind, _, ref = entry.causation.partition(":")
            transfer = transfer_of_causation(ref) if kind == "xfer" else None
            if transfer is not None and transfer.source == credits.source:
                up_to = max(up_to, transfer.seq)
        after = entries[-1].seq
    return up_to


async def _credit_loop(
    credits: Credits, source_log: RedisEventLog, own_log: RedisEventLog, stop: asyncio.Event
) -> None:
    # A transfer's CashTransferredOut comes after its request, and its copy in the index has the debit's
    # seq: reading on from the last request credited finds every transfer not credited yet.
    after = credits.credited_up_to
    while not stop.is_set():
        entries = await source_log.follow(after, 1000, 1000)
        if not entries:
            continue
        after = entries[-1].seq
        due = credits.due(entries)
        if not due:
            continue
        position = position_of_seq(due[-1][0].seq)
        await own_log.append(credits.producer, [new for _, new in due], position=position)
        for ref, _ in due:
            log.info("transfer_credited", transfer=str(ref), to_partition=credits.own)


def build_app(settings: Settings, system: System, process: Process) -> FastStream:
    """Needs the log master key (to tag its credits and check the debits it answers); KeyMissing stops
    it before it starts. With one partition it has nothing to follow and waits."""
    producer_keys = settings.producer_keys()  # this partition's: its credits, its log
    user = settings.user(process.name)
    redis = connect(settings, user)
    resp = RespClient.like(redis)
    own_log = RedisEventLog(
        redis, settings.keys, resp=resp, bells=system.bells(settings.keys),
        producer_keys=producer_keys, lease=settings.writer_lease(process.name),
    )  # fmt: skip
    app = lifecycle_app(settings, process.name)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    clients: list[Redis | RespClient] = [resp, redis]  # closed at shutdown

    async def run(source: int) -> None:
        try:
            # On Redis Cluster the source partition's slot may be on another master.
            where, _ = await place_on_cluster(settings.in_partition(source), user)
            source_redis = connect(where, user)  # its rights there: the debits' index, read only
            source_resp = RespClient.like(source_redis)
            clients.extend((source_resp, source_redis))
            debits = where.keys.index(OUT)
            source_log = RedisEventLog(source_redis, where.keys, resp=source_resp, stream=debits)
            credits = Credits(settings.partition, source, where.producer_keys(), 0)
            credits.credited_up_to = await credited_up_to(own_log, credits, producer_keys)
            log.info("transfers_following", source=source, credited_up_to=credits.credited_up_to)
            await _credit_loop(credits, source_log, own_log, stop)
        except Exception as exc:  # noqa: BLE001 - a transfer must not silently stop: crash, restart
            fail_fast(process.name, exc)

    @app.after_startup
    async def start() -> None:
        others = (p for p in range(1, settings.partitions + 1) if p != settings.partition)
        tasks.extend(asyncio.create_task(run(source)) for source in others)

    @app.on_shutdown
    async def close() -> None:
        stop.set()
        await cancel_tasks(tasks)
        for client in clients:
            await client.aclose()

    return app
