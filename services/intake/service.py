"""The intake process: client commands in from `greenex:in`, reports out to `greenex:out:<participant>`.

Two loops of its own, each one write per batch: the command loop (XREADGROUP on the command stream,
decide, append with the batch's reports and XACK) and the report loop (follow the log, write reports
with the cursor). FastStream runs the process's lifecycle; docs/asyncapi.json describes the channels.
"""

from __future__ import annotations

import asyncio
import os

import structlog
from faststream import FastStream
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.intake.core import Intake
from services.intake.gateway import CONSUMER, GROUP, NOTHING, BatchWrite, Gateway
from services.intake.reports import ReportPublisher
from services.runtime.app import cancel_tasks, fail_fast, lifecycle_app
from services.runtime.system import Process, System
from shared.config import Settings
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.redis_wire import rows_of
from shared.resp import Command, RespClient

__all__ = ["DEV_OPERATOR_SECRET", "PENDING_RECHECK_S", "build_app", "operator_secret"]

PENDING_RECHECK_S = 2.0
log = structlog.get_logger("greenex.intake")

DEV_OPERATOR_SECRET = "greenex-dev-operator"  # noqa: S105 - a development default; deployments set the env var


def operator_secret() -> str:
    return os.environ.get("GREENEX_OPERATOR_SECRET", DEV_OPERATOR_SECRET)


def build_app(settings: Settings, system: System, process: Process) -> FastStream:
    redis = Redis.from_url(settings.redis_url)
    resp = RespClient.like(redis)
    keys = settings.keys
    bells = system.bells(keys)
    appender = RedisEventLog(redis, keys, resp=resp, bells=bells)
    gateway = Gateway(Intake(operator_secret()), appender, redis, resp, keys)
    publisher = ReportPublisher(redis, keys)
    reports_log = RedisEventLog(redis, keys, resp=resp, bells=bells, reader=process.name)
    app = lifecycle_app(settings)

    @app.on_startup
    async def recover() -> None:
        await gateway.rebuild()
        await gateway.prepare_group()
        await gateway.drain_pending()
        await publisher.load_cursor()

    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_loops() -> None:
        tasks.append(asyncio.create_task(_command_loop(gateway, resp, settings, stop)))
        tasks.append(asyncio.create_task(_report_loop(publisher, reports_log, settings, stop)))

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
    read: Command = (
        "XREADGROUP", "GROUP", GROUP, CONSUMER, "COUNT", settings.batch_size, "BLOCK", settings.block_ms,
        "STREAMS", gateway.keys.commands, ">",
    )  # fmt: skip
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
            replies = await resp.execute([*write.commands, read])
            write.landed(replies)
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
        except Exception as exc:  # noqa: BLE001 - e.g. the group is gone: crash, restart, recreate it
            fail_fast("intake", exc)
        reply = replies[-1]
        try:
            write = gateway.decide(rows_of(reply[0][1])) if reply else NOTHING
        except Exception as exc:  # noqa: BLE001 - intake's memory may be ahead of the log: rebuild
            fail_fast("intake", exc)


async def _report_loop(
    publisher: ReportPublisher, event_log: RedisEventLog, settings: Settings, stop: asyncio.Event
) -> None:
    """The report publisher's own loop over the log, woken only by entries that make reports (the
    process's bell); a batch's reports go out in the same write as the next read."""
    after = 0
    writes: list[Command] = []
    try:
        while not stop.is_set():
            entries = await event_log.follow(after, settings.batch_size, settings.block_ms, first=writes)
            writes = publisher.prepare(entries)
            if entries:
                after = entries[-1].seq
    except Exception as exc:  # noqa: BLE001 - reports must not silently stop: crash, restart, resume
        fail_fast("intake", exc)
