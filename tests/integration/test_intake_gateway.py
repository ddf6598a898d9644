"""Intake's gateway against a real Redis: a batch's append, reject reports and XACK land together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

import msgspec
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from services.intake.core import Intake
from services.intake.gateway import CONSUMER, GROUP, AppendInDoubt, Gateway, Row
from services.intake.service import DEV_OPERATOR_SECRET
from shared.client import ExchangeClient
from shared.domain.ledger import OPERATOR
from shared.eventlog.redis_log import RedisEventLog
from shared.keys import Keys
from shared.resp import RespClient
from tests.redis_server import RedisServer

pytestmark = pytest.mark.integration
GW = Keys("gw")


class Rig(NamedTuple):
    redis: Redis
    gateway: Gateway
    log: RedisEventLog
    operator: ExchangeClient


@pytest_asyncio.fixture
async def rig(redis_client: Redis, redis_server: str) -> AsyncIterator[Rig]:
    resp = RespClient.like(redis_client)
    log = RedisEventLog(redis_client, GW, resp=resp)
    gateway = Gateway(Intake(DEV_OPERATOR_SECRET), log, redis_client, resp, GW)
    await gateway.prepare_group()
    yield Rig(redis_client, gateway, log, ExchangeClient(redis_client, OPERATOR, DEV_OPERATOR_SECRET, GW))
    await resp.aclose()


async def read_batch(redis: Redis) -> list[Row]:
    reply: Any = await redis.xreadgroup(GROUP, CONSUMER, {GW.commands: ">"}, count=100)
    return list(reply[0][1])


async def pending_count(redis: Redis) -> int:
    return int((await redis.xpending(GW.commands, GROUP))["pending"])


async def test_decide_writes_nothing_until_the_batch_is_sent(rig: Rig) -> None:
    """decide() only prepares: the append, the reports and the XACK all happen when it is sent."""
    await rig.operator.operator("register_participant", "op-1", participant="acme", name="Acme", secret="s")
    write = rig.gateway.decide(await read_batch(rig.redis))
    assert (await rig.log.head())[0] == 0
    assert await pending_count(rig.redis) == 1
    await rig.gateway.send(write)
    assert [e.type for e in await rig.log.read(0)] == ["ParticipantRegistered"]
    assert await pending_count(rig.redis) == 0
    assert await rig.log.position("intake") != ""


async def test_a_lost_script_cache_still_lands_the_batch_once(rig: Rig) -> None:
    """After SCRIPT FLUSH (what a Redis restart does) the EVALSHA does nothing; the gateway appends the
    slow way, and the rejection report and the XACK come with that append, once."""
    await rig.operator.operator("register_participant", "op-1", participant="acme", name="Acme", secret="s")
    await rig.gateway.send(rig.gateway.decide(await read_batch(rig.redis)))
    acme = ExchangeClient(rig.redis, "acme", "wrong-secret", GW)
    await acme.send("cancel_order", client_order_id="c-1", instrument="X", target_client_order_id="c-0")
    await rig.operator.operator("deposit_cash", "op-2", participant="acme", amount="10.00")
    write = rig.gateway.decide(await read_batch(rig.redis))
    await rig.redis.script_flush()
    await rig.gateway.send(write)
    assert [e.type for e in await rig.log.read(0)] == ["ParticipantRegistered", "CashDeposited"]
    reports: Any = await rig.redis.xrange(GW.reports("acme"))
    assert [msgspec.json.decode(fields[b"data"])["reason"]["code"] for _, fields in reports] == [
        "bad_signature"
    ]
    assert await pending_count(rig.redis) == 0


async def test_a_batch_with_nothing_to_append_reports_and_acks(rig: Rig) -> None:
    """All rejected: no append at all, the reports and the XACK go in one MULTI."""
    await rig.operator.operator("register_participant", "op-1", participant="acme", name="Acme", secret="s")
    await rig.gateway.send(rig.gateway.decide(await read_batch(rig.redis)))
    head = await rig.log.head()
    await ExchangeClient(rig.redis, "acme", "wrong", GW).send("cancel_order", client_order_id="c-1")
    write = rig.gateway.decide(await read_batch(rig.redis))
    assert write.check_reply is None
    await rig.gateway.send(write)
    assert await rig.log.head() == head
    assert await rig.redis.xlen(GW.reports("acme")) == 1
    assert await pending_count(rig.redis) == 0


async def test_a_lost_connection_with_an_append_in_flight_is_not_retried(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    """The server goes away between decide and send: with an append in the batch the gateway raises
    AppendInDoubt (intake must rebuild: its memory counts the batch as logged); with only reports and
    the XACK it raises the connection error, which the re-drain recovers from."""
    server = redis_server_factory()
    server.start()
    redis = Redis.from_url(server.url)
    resp = RespClient.like(redis)
    gateway = Gateway(Intake(DEV_OPERATOR_SECRET), RedisEventLog(redis, GW, resp=resp), redis, resp, GW)
    try:
        await gateway.prepare_group()
        operator = ExchangeClient(redis, OPERATOR, DEV_OPERATOR_SECRET, GW)
        await operator.operator("register_participant", "op-1", participant="acme", name="Acme", secret="s")
        await ExchangeClient(redis, "acme", "wrong", GW).send("cancel_order", client_order_id="c-1")
        rows = await read_batch(redis)
        with_append, reports_only = gateway.decide(rows[:1]), gateway.decide(rows[1:])
        await resp.execute([("PING",)])  # a pooled connection that the stop will break
        server.stop()
        with pytest.raises(AppendInDoubt):
            await gateway.send(with_append)
        with pytest.raises(RedisConnectionError):
            await gateway.send(reports_only)
    finally:
        await resp.aclose()
        await redis.aclose()
