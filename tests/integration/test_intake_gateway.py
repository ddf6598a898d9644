"""Intake's gateway against a real Redis: a batch's append, reject reports and XACKs land together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from services.cli.provision import sealed_key
from services.intake.batch import Input
from services.intake.core import Intake, Rejection, Verdict
from services.intake.deadletters import DEAD_AFTER, DeadLetter, dead_letter_of
from services.intake.gateway import CONSUMER, GROUP, AppendInDoubt, BatchWrite, Gateway
from services.intake.service import _command_loop
from services.intake.snapshot import intake_state
from services.runtime.snapshots import SnapshotStore
from shared.client import ExchangeClient
from shared.config import Settings
from shared.crypto import ExchangeBox
from shared.domain.ledger import OPERATOR
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import RedisEventLog
from shared.keyring import KeyRing
from shared.keys import Keys
from shared.resp import RespClient
from tests.redis_server import RedisServer
from tests.support import eventually

pytestmark = pytest.mark.integration
GW = Keys("gw")


class Rig(NamedTuple):
    redis: Redis
    gateway: Gateway
    log: RedisEventLog
    operator: ExchangeClient
    ring: KeyRing


def _gateway(redis: Redis, resp: RespClient, ring: KeyRing) -> tuple[Gateway, RedisEventLog]:
    core = Intake(ring.operator_secret(), sealer=ring.sealer(), box=ring.box())
    log = RedisEventLog(redis, GW, resp=resp, producer_keys=ring.producer_keys())
    return Gateway(core, log, redis, resp, GW), log


@pytest_asyncio.fixture
async def rig(redis_client: Redis, tmp_path: Path) -> AsyncIterator[Rig]:
    ring = KeyRing.create(tmp_path / "keys")
    resp = RespClient.like(redis_client)
    gateway, log = _gateway(redis_client, resp, ring)
    await gateway.join_new_senders()
    operator = ExchangeClient(redis_client, OPERATOR, ring.operator_secret(), GW)
    yield Rig(redis_client, gateway, log, operator, ring)
    await resp.aclose()


async def register(rig: Rig, participant: str) -> str:
    """The operator's registration of `participant` (not yet read); returns its signing key."""
    key, sealed = sealed_key(rig.ring, participant, "k1")
    await rig.operator.operator("register_participant", f"op-{participant}", participant=participant,
                                name=participant, key=sealed)  # fmt: skip
    return key


async def read_batch(rig: Rig) -> list[Any]:
    return rig.gateway.inputs_of(await rig.gateway.resp.call(*rig.gateway.read_command(100, block_ms=10)))


async def pending_count(redis: Redis, sender: str = OPERATOR) -> int:
    return int((await redis.xpending(GW.commands(sender), GROUP))["pending"])


async def test_decide_writes_nothing_until_the_batch_is_sent(rig: Rig) -> None:
    """decide() only prepares: the append, the reports and the XACK all happen when it is sent."""
    await register(rig, "acme")
    write = rig.gateway.decide(await read_batch(rig))
    assert (await rig.log.head())[0] == 0
    assert await pending_count(rig.redis) == 1
    await rig.gateway.send(write)
    assert [e.type for e in await rig.log.read(0)] == ["ParticipantRegistered"]
    assert await pending_count(rig.redis) == 0
    assert await rig.log.position("intake") != ""


async def test_a_registered_participants_stream_joins_and_a_rejection_reaches_only_its_owner(
    rig: Rig,
) -> None:
    """Once its registration is in the log intake reads the participant's own stream; a command there
    with a bad signature is reported on that participant's report stream, and nothing is logged."""
    await register(rig, "acme")
    await rig.gateway.send(rig.gateway.decide(await read_batch(rig)))
    await rig.gateway.join_new_senders()
    assert rig.gateway.senders == [OPERATOR, "acme"]
    acme = ExchangeClient(rig.redis, "acme", "wrong-key-0123456789", GW)
    await acme.send("cancel_order", client_order_id="c-1", instrument="X", orig_client_order_id="c-0")
    head = await rig.log.head()
    write = rig.gateway.decide(await read_batch(rig))
    assert write.check_reply is None  # nothing to append: reports and XACK in one MULTI
    await rig.gateway.send(write)
    assert await rig.log.head() == head
    reports: Any = await rig.redis.xrange(GW.reports("acme"))
    assert [msgspec.json.decode(fields[b"data"])["reason"]["code"] for _, fields in reports] == [
        "bad_signature"
    ]
    assert await pending_count(rig.redis, "acme") == 0


async def test_an_entry_its_writer_trimmed_after_delivery_is_refused_and_acked(rig: Rig) -> None:
    """A participant may trim its own stream (XADD ... MAXLEN 0): an entry delivered to intake and
    trimmed before its XACK comes back from the pending list without fields. The re-drain reports it
    as malformed to its owner and acknowledges it; it does not stop intake."""
    await register(rig, "acme")
    await rig.gateway.send(rig.gateway.decide(await read_batch(rig)))
    await rig.gateway.join_new_senders()
    acme = ExchangeClient(rig.redis, "acme", "wrong-key-0123456789", GW)
    await acme.send("cancel_order", client_order_id="c-1", instrument="X", orig_client_order_id="c-0")
    await read_batch(rig)  # delivered, never decided: as if intake died here
    await rig.redis.xadd(GW.commands("acme"), {"data": "{}"}, maxlen=0, approximate=False)
    assert await rig.redis.xlen(GW.commands("acme")) == 0
    assert await pending_count(rig.redis, "acme") == 1  # trimmed, yet still pending
    await rig.gateway.drain_pending()
    assert await pending_count(rig.redis, "acme") == 0
    reports: Any = await rig.redis.xrange(GW.reports("acme"))
    assert [msgspec.json.decode(fields[b"data"])["reason"]["code"] for _, fields in reports] == ["malformed"]


async def test_a_lost_script_cache_still_lands_the_batch_once(rig: Rig) -> None:
    """After SCRIPT FLUSH (what a Redis restart does) the EVALSHA does nothing; the gateway appends the
    slow way, and the rejection report and the XACKs come with that append, once."""
    await register(rig, "acme")
    await rig.gateway.send(rig.gateway.decide(await read_batch(rig)))
    await rig.gateway.join_new_senders()
    acme = ExchangeClient(rig.redis, "acme", "wrong-key-0123456789", GW)
    await acme.send("cancel_order", client_order_id="c-1", instrument="X", orig_client_order_id="c-0")
    await rig.operator.operator("deposit_cash", "op-2", participant="acme", amount="10.00")
    write = rig.gateway.decide(await read_batch(rig))
    await rig.redis.script_flush()
    await rig.gateway.send(write)
    assert [e.type for e in await rig.log.read(0)] == ["ParticipantRegistered", "CashDeposited"]
    reports: Any = await rig.redis.xrange(GW.reports("acme"))
    assert [msgspec.json.decode(fields[b"data"])["reason"]["code"] for _, fields in reports] == [
        "bad_signature"
    ]
    assert await pending_count(rig.redis) == 0
    assert await pending_count(rig.redis, "acme") == 0


async def test_a_lost_connection_with_an_append_in_flight_is_not_retried(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """The server goes away between decide and send: with an append in the batch the gateway raises
    AppendInDoubt (intake must rebuild: its memory counts the batch as logged); with only reports and
    the XACK it raises the connection error, which the re-drain recovers from."""
    server = redis_server_factory()
    server.start()
    redis = Redis.from_url(server.url)
    resp = RespClient.like(redis)
    ring = KeyRing.create(tmp_path / "keys")
    gateway, log = _gateway(redis, resp, ring)
    rig = Rig(redis, gateway, log, ExchangeClient(redis, OPERATOR, ring.operator_secret(), GW), ring)
    try:
        await gateway.join_new_senders()
        await register(rig, "acme")
        await rig.operator.send("cancel_order", client_order_id="c-1")  # unsigned-looking junk: rejected
        rows = await read_batch(rig)
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


def test_intake_opens_only_keys_sealed_for_this_exchange(tmp_path: Path) -> None:
    """A registration whose key was sealed under another exchange's KEK is refused (in the log, so the
    operator sees it), never registered: every later rebuild would fail to open it."""
    ours, theirs = KeyRing.create(tmp_path / "ours"), KeyRing.create(tmp_path / "theirs")
    core = Intake(ours.operator_secret(), sealer=ours.sealer(), box=ExchangeBox(bytes(32)))
    _, sealed = sealed_key(theirs, "acme", "k1")
    operator = ExchangeClient(Redis(), OPERATOR, ours.operator_secret(), GW)
    command = operator.command("operator", client_order_id="op-1", action="register_participant",
                               args={"participant": "acme", "name": "Acme", "key": sealed})  # fmt: skip
    verdict = core.decide(OPERATOR, "1-0", msgspec.json.encode(command), operator.clock())
    assert isinstance(verdict, Verdict)
    assert [type(e).__name__ for e in verdict.events] == ["CommandRejected"]
    assert "acme" not in core.state.participants


async def _send_all(rig: Rig, gateway: Gateway | None = None) -> None:
    gateway = gateway or rig.gateway
    await gateway.send(gateway.decide(await read_batch(rig)))
    await gateway.join_new_senders()


def _restarted(rig: Rig, store: SnapshotStore | None) -> Gateway:
    """A second intake on the same log, as after a restart: a fresh core, the same keys."""
    core = Intake(rig.ring.operator_secret(), sealer=rig.ring.sealer(), box=rig.ring.box())
    return Gateway(core, rig.log, rig.redis, rig.gateway.resp, GW, rig.ring.producer_keys(), snapshots=store)


async def test_intake_restarts_from_its_snapshot_reading_only_the_tail(rig: Rig) -> None:
    """Intake's snapshot (its own entries' state, sealed, tied to the log) plus the entries after it give
    the state a rebuild from the whole log gives, which is the live state; a client order id spent
    before the snapshot stays spent."""
    store = SnapshotStore(rig.redis, GW, rig.ring.producer_keys())
    key = await register(rig, "acme")
    await _send_all(rig)
    acme = ExchangeClient(rig.redis, "acme", key, GW)
    await rig.operator.operator("deposit_cash", "op-2", participant="acme", amount="10.00")
    await acme.send("cancel_order", client_order_id="c-1", instrument="NOPE", orig_client_order_id="c-0")
    await _send_all(rig)
    rig.gateway.snapshots = store
    assert await rig.gateway.save_snapshot()
    snapshot_seq = rig.gateway.snapshot_seq
    await rig.operator.operator("deposit_cash", "op-3", participant="acme", amount="5.00")
    await _send_all(rig)
    head = (await rig.log.head())[0]
    assert head > snapshot_seq >= 3

    from_snapshot, from_scratch = _restarted(rig, store), _restarted(rig, None)
    assert await from_snapshot.rebuild() == head - snapshot_seq  # only the tail was read
    assert await from_scratch.rebuild() == head
    live = intake_state(rig.gateway.core)
    assert intake_state(from_snapshot.core) == intake_state(from_scratch.core) == live
    await acme.send("cancel_order", client_order_id="c-1", instrument="NOPE", orig_client_order_id="c-0")
    rows = await read_batch(rig)
    verdict = from_snapshot.core.decide("acme", rows[0][1][0].decode(), rows[0][1][1][b"data"], acme.clock())
    assert isinstance(verdict, Rejection)
    assert verdict.reason == "duplicate_client_order_id"


async def test_a_trimmed_log_without_a_snapshot_stops_intake_naming_the_gap(rig: Rig) -> None:
    """After `XTRIM` below what any snapshot covers, intake refuses to start instead of starting with
    no participants (every command 'unknown'): the error names the missing seq and the runbook."""
    await register(rig, "acme")
    await rig.operator.operator("deposit_cash", "op-2", participant="acme", amount="10.00")
    await rig.operator.operator("deposit_cash", "op-3", participant="acme", amount="10.00")
    await _send_all(rig)
    await rig.redis.xtrim(GW.log, minid="2-0", approximate=False)
    with pytest.raises(LogCorrupt, match=r"holds no entry 1 .*trimmed"):
        await _restarted(rig, SnapshotStore(rig.redis, GW, rig.ring.producer_keys())).rebuild()


# ---------------------------------------------------------------- dead letters


async def deliver(redis: Redis, after: bytes | str = "0", count: int = 100) -> None:
    """Hand the operator's pending entries after `after` to intake's consumer again, as a re-drain
    does (one delivery each), without deciding them: as if intake crashed on their batch."""
    await redis.xreadgroup(GROUP, CONSUMER, {GW.commands(OPERATOR): after}, count=count)


async def deliveries(redis: Redis) -> list[int]:
    rows = await redis.xpending_range(GW.commands(OPERATOR), GROUP, "-", "+", 100)
    return [int(row["times_delivered"]) for row in rows]


async def dead_letters(redis: Redis) -> list[DeadLetter]:
    rows: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(GW.dead_letters)  # type: ignore[assignment]
    return [dead_letter_of(stream_id, fields) for stream_id, fields in rows]


async def registered(rig: Rig) -> list[str]:
    return [msgspec.msgpack.decode(e.body)["participant"] for e in await rig.log.read(0)]


async def test_an_entry_delivered_dead_after_times_is_dead_lettered_and_the_rest_decided(rig: Rig) -> None:
    """An entry delivered DEAD_AFTER times and never acked leaves for the dead-letter stream at the next
    re-drain (acked with it, logged, never decided); the entries after it are decided."""
    await register(rig, "poison")
    ((_, (poison_id, poison_fields)),) = await read_batch(rig)
    for _ in range(DEAD_AFTER - 1):
        await deliver(rig.redis)
    for participant in ("acme", "bolt"):
        await register(rig, participant)
    await read_batch(rig)  # the two after it: delivered once, not acked either
    assert await deliveries(rig.redis) == [DEAD_AFTER, 1, 1]
    with capture_logs() as logs:
        await rig.gateway.drain_pending()
    assert await pending_count(rig.redis) == 0
    assert await registered(rig) == ["acme", "bolt"]
    (letter,) = await dead_letters(rig.redis)
    assert (letter.sender, letter.input_id, letter.deliveries) == (OPERATOR, poison_id.decode(), DEAD_AFTER)
    assert letter.data == poison_fields[b"data"]
    assert [e for e in logs if e["event"] == "command_dead_lettered"] == [
        {"event": "command_dead_lettered", "log_level": "error", "sender": OPERATOR,
         "input_id": letter.input_id, "deliveries": DEAD_AFTER, "hint": "greenex dead-letters list"},
    ]  # fmt: skip


class _Recording(Gateway):
    """Intake's gateway, noting the input ids it decided together."""

    batches: list[list[bytes]]

    def decide(self, inputs: Sequence[Input]) -> BatchWrite:
        self.batches.append([stream_id for _, (stream_id, _) in inputs])
        return super().decide(inputs)


def _recording(rig: Rig) -> _Recording:
    core = Intake(rig.ring.operator_secret(), sealer=rig.ring.sealer(), box=rig.ring.box())
    gateway = _Recording(core, rig.log, rig.redis, rig.gateway.resp, GW)
    gateway.batches = []
    return gateway


@pytest.mark.parametrize(("twice", "batches"), [(0, [[0], [1, 2]]), (1, [[0], [1], [2]]), (2, [[0, 1], [2]])])
async def test_an_entry_delivered_twice_is_decided_alone_and_in_order(
    rig: Rig, twice: int, batches: list[list[int]]
) -> None:
    """Of three pending entries, the one delivered twice is decided in a batch of its own (it may be
    what crashed intake: it must not take good commands down with it); the others are decided
    together, and all three in the order they arrived."""
    gateway = _recording(rig)
    await gateway.join_new_senders()
    for participant in ("acme", "bolt", "cole"):
        await register(rig, participant)
    ids = [stream_id for _, (stream_id, _) in await read_batch(rig)]
    await deliver(rig.redis, after=ids[twice - 1] if twice else "0", count=1)
    assert await deliveries(rig.redis) == [2 if i == twice else 1 for i in range(3)]
    await gateway.drain_pending()
    assert gateway.batches == [[ids[i] for i in batch] for batch in batches]
    assert await registered(rig) == ["acme", "bolt", "cole"]
    assert await pending_count(rig.redis) == 0


class _Poisoned(_Recording):
    """A gateway with a bug: any batch holding the poison input crashes it, as a refused append would."""

    def decide(self, inputs: Sequence[Input]) -> BatchWrite:
        if any(b'"poison"' in fields.get(b"data", b"") for _, (_, fields) in inputs):
            raise RuntimeError("a bug in building the batch")
        return super().decide(inputs)


async def test_a_poison_input_costs_dead_after_restarts_and_no_good_command(rig: Rig) -> None:
    """The poison pill loop, start to end: a live batch of three crashes intake; each restart (a fresh
    gateway, rebuilt from the log) re-drains and crashes until the poison input, decided alone from its
    third delivery, is dead-lettered at its DEAD_AFTER-th; the two good inputs are decided."""
    for participant in ("acme", "poison", "bolt"):
        await register(rig, participant)
    with pytest.raises(RuntimeError):
        _poisoned(rig).decide(await read_batch(rig))  # the live batch: crash 1
    crashes = 1
    while True:
        gateway = _poisoned(rig)
        await gateway.rebuild()
        await gateway.join_new_senders()
        try:
            await gateway.drain_pending()
            break
        except RuntimeError:
            crashes += 1
    assert crashes == DEAD_AFTER
    assert await registered(rig) == ["acme", "bolt"]
    assert [(d.deliveries, b'"poison"' in d.data) for d in await dead_letters(rig.redis)] == [
        (DEAD_AFTER, True)
    ]
    assert await pending_count(rig.redis) == 0


def _poisoned(rig: Rig) -> _Poisoned:
    core = Intake(rig.ring.operator_secret(), sealer=rig.ring.sealer(), box=rig.ring.box())
    gateway = _Poisoned(core, rig.log, rig.redis, rig.gateway.resp, GW, rig.ring.producer_keys())
    gateway.batches = []
    return gateway


async def test_redis_out_of_memory_holds_the_batch_without_delivering_it_again(rig: Rig) -> None:
    """At maxmemory (noeviction) every write fails: intake's command loop neither crashes nor reads on
    (each read would deliver the pending commands again, towards the dead letters); it sends the same
    batch again until memory is back, then it lands once."""
    await register(rig, "acme")
    await _send_all(rig)
    await rig.operator.operator("deposit_cash", "op-2", participant="acme", amount="10.00")
    settings = Settings(block_ms=50)
    stop = asyncio.Event()
    await rig.redis.config_set("maxmemory-policy", "noeviction")
    await rig.redis.config_set("maxmemory", 1)
    loop = asyncio.create_task(_command_loop(rig.gateway, rig.gateway.resp, settings, stop))
    try:
        await asyncio.sleep(2.5)  # long enough for several re-drains, were intake to crash or read on
        assert not loop.done()
        assert [e.type for e in await rig.log.read(0)] == ["ParticipantRegistered"]
        pending: Any = await rig.gateway.resp.call("XPENDING", GW.commands(OPERATOR), GROUP, "-", "+", 10)
        assert [int(row[3]) for row in pending] == [1]  # delivered once, held since
    finally:
        await rig.redis.config_set("maxmemory", 0)
    await eventually(lambda: _types(rig), timeout=10)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert await pending_count(rig.redis) == 0


async def _types(rig: Rig) -> bool:
    return [e.type for e in await rig.log.read(0)] == ["ParticipantRegistered", "CashDeposited"]


async def test_a_command_under_another_field_name_is_told_which_field(rig: Rig) -> None:
    await register(rig, "acme")
    await _send_all(rig)
    await rig.redis.xadd(GW.commands("acme"), {"payload": "{}"})
    await rig.gateway.send(rig.gateway.decide(await read_batch(rig)))
    reports: Any = await rig.redis.xrange(GW.reports("acme"))
    reason = msgspec.json.decode(reports[-1][1][b"data"])["reason"]
    assert reason["code"] == "malformed"
    assert reason["text"].startswith("the entry has no `data` field")
