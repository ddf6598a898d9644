"""The intake service: client commands in from `greenex:in`, reports out to `greenex:out:<participant>`."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import structlog
from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.intake.core import Intake
from services.intake.gateway import CONSUMER, GROUP, Finish, Gateway, Row
from services.intake.reporting import ReportPublisher
from services.intake.reports import REPORTED_TYPES
from services.runtime.app import cancel_tasks, fail_fast, log_subscription
from services.runtime.streams import decode_log_batch, decode_raw_batch, parse_raw_batch
from shared.config import Settings
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.redis_wire import rows_of
from shared.resp import Command, RespClient

__all__ = ["DEV_OPERATOR_SECRET", "PENDING_RECHECK_S", "build_app"]

PENDING_RECHECK_S = 2.0
log = structlog.get_logger("greenex.intake")

DEV_OPERATOR_SECRET = "greenex-dev-operator"  # noqa: S105 - a development default; deployments set the env var


def operator_secret() -> str:
    return os.environ.get("GREENEX_OPERATOR_SECRET", DEV_OPERATOR_SECRET)


def build_app(settings: Settings) -> FastStream:
    redis = Redis.from_url(settings.redis_url)
    resp = RespClient.like(redis)
    event_log = RedisEventLog(redis, settings.log_key, resp=resp)
    gateway = Gateway(Intake(operator_secret()), event_log, redis, resp, settings)
    publisher = ReportPublisher(redis, resp, settings)
    broker = RedisBroker(settings.redis_url, logger=None)  # type: ignore[arg-type]  # trap 6: no per-message log

    commands = StreamSub(
        f"{settings.prefix}:in",
        group=GROUP,
        consumer=CONSUMER,
        batch=True,
        max_records=settings.batch_size,
        polling_interval=settings.block_ms,
    )

    async def on_commands(rows: Any) -> None:
        batch: list[Row] = rows
        try:
            await gateway.handle(batch)
        except Exception as exc:  # noqa: BLE001 - the entries stay pending and are re-handled on restart
            fail_fast("intake", exc)

    if not settings.direct_read:
        broker.subscriber(
            stream=commands,
            parser=parse_raw_batch,
            decoder=decode_raw_batch,
            title="greenex:in",
            description="Signed client and operator commands (JSON in `data`)",
        )(on_commands)

    async def on_log(entries: Any) -> None:
        batch: list[Entry] = entries
        try:
            await publisher.publish(batch)
        except Exception as exc:  # noqa: BLE001
            fail_fast("intake", exc)

    if not settings.direct_read:
        broker.subscriber(
            stream=log_subscription(settings),
            parser=parse_raw_batch,
            decoder=decode_log_batch,
            title="greenex:log (reports)",
            description="Execution and settlement reports",
            include_in_schema=False,  # the log is internal: the client contract is `in` and `out:*`
        )(on_log)

    app = FastStream(broker, logger=None)

    @app.on_startup
    async def recover() -> None:
        await gateway.rebuild()
        await gateway.prepare_group()
        await gateway.drain_pending()
        await publisher.load_cursor()

    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_reports() -> None:
        if settings.direct_read:
            tasks.append(asyncio.create_task(_command_loop(gateway, resp, settings, stop)))
            tasks.append(asyncio.create_task(_report_loop(publisher, redis, resp, settings, stop)))
        else:
            tasks.append(asyncio.create_task(_redrain(gateway, stop)))

    @app.on_shutdown
    async def close() -> None:
        stop.set()
        await cancel_tasks(tasks)
        await resp.aclose()
        await redis.aclose()

    return app


async def _command_loop(gateway: Gateway, resp: RespClient, settings: Settings, stop: asyncio.Event) -> None:
    """Intake's own XREADGROUP loop over `greenex:in` (see Settings.direct_read), one write per batch:
    the previous batch's append (whose script also reports its rejections and XACKs it) or, with nothing
    to append, its reports and XACK in a MULTI; then the blocking read of the next. FastStream's
    per-batch consume path is skipped.

    The periodic re-drain of the pending list runs in this loop, between batches, once the last batch's
    XACK is sent: it must never see a batch that is read and not yet acked.
    """
    read: Command = (
        "XREADGROUP", "GROUP", GROUP, CONSUMER, "COUNT", settings.batch_size, "BLOCK", settings.block_ms,
        "STREAMS", gateway.in_key, ">",
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    finish = Finish([])
    next_drain = loop.time() + PENDING_RECHECK_S
    while not stop.is_set():
        try:
            if loop.time() >= next_drain:
                next_drain = loop.time() + PENDING_RECHECK_S
                await gateway.send(finish)
                finish = Finish([])
                await gateway.drain_pending()
            replies = await resp.execute([*finish.commands, read])
            finish.landed(replies)
        except NoScriptError as exc:
            # Redis lost its scripts (a restart): the append did nothing, and the read's reply was
            # dropped with the error; append the slow way and re-drain what that read delivered.
            try:
                await finish.after_noscript(exc)
            except Exception as failed:  # noqa: BLE001 - intake's memory may be ahead of the log: rebuild
                fail_fast("intake", failed)
            finish, next_drain = Finish([]), loop.time()
            continue
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if finish.check is not None:
                # Whether the append landed is unknown, and intake's memory assumes it did: rebuild.
                fail_fast("intake", exc)
            # Whether the last batch's MULTI ran or not, the next re-drain finishes it exactly once.
            log.warning("command_read_failed", error=repr(exc))
            finish, next_drain = Finish([]), loop.time()
            await asyncio.sleep(settings.block_ms / 1000)
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. the group is gone: crash, restart, recreate it
            fail_fast("intake", exc)
        reply = replies[-1]
        try:
            finish = gateway.decide(rows_of(reply[0][1])) if reply else Finish([])
        except Exception as exc:  # noqa: BLE001 - intake's memory may be ahead of the log: rebuild
            fail_fast("intake", exc)


async def _report_loop(
    publisher: ReportPublisher, redis: Redis, resp: RespClient, settings: Settings, stop: asyncio.Event
) -> None:
    """The report publisher's own XREAD loop over the log (see Settings.direct_read), woken only by
    entries that make reports; a batch's reports go out in the same write as the next read."""
    event_log, after = RedisEventLog(redis, settings.log_key, resp=resp), 0
    writes: list[Command] = []
    try:
        await event_log.wake_on("reports", REPORTED_TYPES)
        while not stop.is_set():
            entries = await event_log.follow(after, settings.batch_size, settings.block_ms, first=writes)
            writes = publisher.prepare(entries)
            if entries:
                after = entries[-1].seq
    except Exception as exc:  # noqa: BLE001 - reports must not silently stop: crash, restart, resume
        fail_fast("intake", exc)


async def _redrain(gateway: Gateway, stop: asyncio.Event) -> None:
    """Pick up entries stranded in our pending list while running (a reply lost with a connection);
    with FastStream's subscriber (direct_read off; the command loop does this itself otherwise)."""
    while not stop.is_set():
        await asyncio.sleep(PENDING_RECHECK_S)
        try:
            await gateway.drain_pending()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("pending_recheck_failed", error=repr(exc))  # Redis away: try again later
        except Exception as exc:  # noqa: BLE001 - a failed batch must not be skipped: crash and restart
            fail_fast("intake", exc)
