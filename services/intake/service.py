"""The intake process: commands in from each sender's stream, reports out to each participant's.

Two loops of its own, each one write per batch: the command loop (XREADGROUP over the senders' streams,
decide, append with the batch's reports and XACKs) and the report loop (follow the log, write reports
with the cursor). FastStream runs the process's lifecycle; docs/asyncapi.json describes the channels.
"""

from __future__ import annotations

import asyncio

import structlog
from faststream import FastStream
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.intake.core import Intake
from services.intake.gateway import NOTHING, BatchWrite, Gateway, out_of_memory
from services.intake.reports import ReportPublisher
from services.runtime.app import cancel_tasks, fail_fast, lifecycle_app
from services.runtime.snapshots import SnapshotStore
from services.runtime.system import Process, System
from shared.config import Settings, connect
from shared.eventlog.redis_log import RedisEventLog
from shared.resp import Command, RespClient

__all__ = ["PENDING_RECHECK_S", "build_app"]

PENDING_RECHECK_S = 2.0
log = structlog.get_logger("greenex.intake")
_WAIT_MS = 1000  # a replica slower than this: say so, and wait again


def build_app(settings: Settings, system: System, process: Process) -> FastStream:
    """Intake needs the operator's secret, the KEK (to open participants' sealed keys), the exchange's box
    key (to open rotated keys) and the log master key; KeyMissing stops it before it starts."""
    ring = settings.keyring
    core = Intake(
        ring.operator_secret(), sealer=ring.sealer(), box=ring.box(), venue=settings.venue,
        window_ms=settings.command_window_ms, partition=settings.partition, partitions=settings.partitions,
    )  # fmt: skip
    redis = connect(settings, settings.user(process.name))
    resp = RespClient.like(redis)
    keys, bells, producer_keys = settings.keys, system.bells(settings.keys), settings.producer_keys()
    appender = RedisEventLog(
        redis, keys, resp=resp, bells=bells, producer_keys=producer_keys,
        lease=settings.writer_lease(process.name),
    )  # fmt: skip
    snapshots = SnapshotStore(redis, keys, producer_keys)
    gateway = Gateway(
        core, appender, redis, resp, keys, producer_keys,
        snapshots=snapshots, snapshot_every=settings.snapshot_every,
    )  # fmt: skip
    publisher = ReportPublisher(
        redis, keys, producer_keys, snapshots, settings.snapshot_every,
        matching_reports=settings.reports_in_append,
    )  # fmt: skip
    reports_log = RedisEventLog(redis, keys, resp=resp, reader=process.name)
    app = lifecycle_app(settings, process.name)

    @app.on_startup
    async def recover() -> None:
        await gateway.rebuild()
        await gateway.join_new_senders()
        await gateway.drain_pending()
        await publisher.resume(gateway.core.state.participants, reports_log)

    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_loops() -> None:
        tasks.append(asyncio.create_task(_command_loop(gateway, resp, settings, stop)))
        tasks.append(asyncio.create_task(_report_loop(publisher, reports_log, resp, settings, stop)))

    @app.on_shutdown
    async def close() -> None:
        stop.set()
        await cancel_tasks(tasks)
        await resp.aclose()
        await redis.aclose()

    return app


async def _command_loop(gateway: Gateway, resp: RespClient, settings: Settings, stop: asyncio.Event) -> None:
    """Intake's own XREADGROUP loop over the command stream, one write per batch: the previous batch's
    append (whose script also reports its rejections and XACKs it) or, with nothing to append, its
    reports and XACK in a MULTI; then the blocking read of the next.

    The periodic re-drain of the pending list runs in this loop, between batches, once the last batch's
    XACK is sent: it must never see a batch that is read and not yet acked.
    """
    loop = asyncio.get_running_loop()
    write: BatchWrite = NOTHING
    next_drain = loop.time() + PENDING_RECHECK_S
    while not stop.is_set():
        try:
            if loop.time() >= next_drain:
                next_drain = loop.time() + PENDING_RECHECK_S
                await gateway.send(write)
                write = NOTHING
                await gateway.drain_pending()
            read = gateway.read_command(settings.batch_size, settings.block_ms)
            replies = await resp.execute([*write.commands, read])
            write.landed(replies)
            if gateway.snapshot_due():  # between batches: everything decided is in the log
                await gateway.save_snapshot()
            await gateway.join_new_senders()  # a participant registered by that batch: read its stream
        except NoScriptError as exc:
            # Redis lost its scripts (a restart): the append did nothing, and the read's reply was
            # dropped with the error; append the slow way and re-drain what that read delivered.
            try:
                await write.after_noscript(exc)
            except Exception as failed:  # noqa: BLE001 - intake's memory may be ahead of the log: rebuild
                fail_fast("intake", failed)
            write, next_drain = NOTHING, loop.time()
            continue
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if write.check_reply is not None:
                # Whether the append landed is unknown, and intake's memory assumes it did: rebuild.
                fail_fast("intake", exc)
            # Whether the last batch's MULTI ran or not, the next re-drain finishes it exactly once.
            log.warning("command_read_failed", error=repr(exc))
            write, next_drain = NOTHING, loop.time()
            await asyncio.sleep(settings.block_ms / 1000)
            continue
        except ResponseError as exc:
            if not out_of_memory(exc):
                fail_fast("intake", exc)
            # Redis is full: send this batch's write alone until it lands (Gateway.send), then re-drain
            # what the read delivered with it; nothing is read meanwhile.
            try:
                await gateway.send(write)
            except Exception as failed:  # noqa: BLE001 - as for any other failure of the write
                fail_fast("intake", failed)
            write, next_drain = NOTHING, loop.time()
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. the group is gone: crash, restart, recreate it
            fail_fast("intake", exc)
        reply = replies[-1]
        try:
            write = gateway.decide(gateway.inputs_of(reply)) if reply else NOTHING
        except Exception as exc:  # noqa: BLE001 - intake's memory may be ahead of the log: rebuild
            fail_fast("intake", exc)


async def _report_loop(
    publisher: ReportPublisher, event_log: RedisEventLog, resp: RespClient, settings: Settings,
    stop: asyncio.Event,
) -> None:  # fmt: skip
    """The report publisher's own loop over the log, woken only by entries that make reports (the
    process's bell); a batch's reports go out in the same write as the next read. With
    `wait_replicas`, only once that many replicas have the entries they report (the strict profile on a
    replicated Redis: a report a client read survives a failover)."""
    after = publisher.folded
    writes: list[Command] = []
    try:
        while not stop.is_set():
            entries = await event_log.follow(after, settings.batch_size, settings.block_ms, first=writes)
            cursor = publisher.cursor
            writes = publisher.prepare(entries)
            if writes and settings.wait_replicas:
                await _replicated(resp, settings, cursor)
            if entries:
                after = entries[-1].seq
    except Exception as exc:  # noqa: BLE001 - reports must not silently stop: crash, restart, resume
        fail_fast("intake", exc)


async def _replicated(resp: RespClient, settings: Settings, cursor: int) -> None:
    """Until `settings.wait_replicas` replicas have everything written so far, the entries just read
    included. WAIT counts the writes of its own connection, so it follows a write of the cursor's
    current value (a no-op, but later in the replication stream than those entries)."""
    while True:
        replies = await resp.execute(
            [("SET", settings.keys.report_cursor, cursor), ("WAIT", settings.wait_replicas, _WAIT_MS)]
        )
        if int(replies[-1]) >= settings.wait_replicas:
            return
        log.warning("reports_held_for_replication", replicas=int(replies[-1]), wanted=settings.wait_replicas)
