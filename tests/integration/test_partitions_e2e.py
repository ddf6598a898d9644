"""Two partitions of one exchange on a real Redis, every process of the map running once per partition:
a participant's transfer is debited in one and credited in the other exactly once, through kill -9 of
the crediting process; the cash it moved trades there; conservation holds across both; and a
participant's Redis user reaches its own streams in both partitions and nothing else."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.exceptions import NoPermissionError

from services.cli.local import service_env
from services.cli.partitions import Verdict, partition_problems, read_partitions
from services.cli.trust import log_verifier
from shared.client import ExchangeClient
from shared.config import OPERATOR_USER
from shared.eventlog.checkpoints import checkpoint_in
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog
from tests.integration.exchange import Exchange, run_greenex, running_exchange
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def two(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Exchange]:
    # Checkpoints every 4 entries: each partition signs some while the tests run.
    keys = tmp_path_factory.mktemp("keys")
    async with running_exchange(redis_server, keys, "pt", partitions=2, checkpoint_every=4) as ex:
        yield ex


async def verdict(ex: Exchange) -> Verdict:
    return partition_problems(await read_partitions(ex.settings, ex.venue.redis(OPERATOR_USER)))


def cash(reports: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [r for r in reports if r["type"] == "cash" and r["status"] == status]


async def transfer(client: ExchangeClient, cid: str, amount: str, to: int) -> None:
    await client.send("transfer_cash", client_order_id=cid, amount=amount, to_partition=to)


async def test_a_transfer_is_reported_in_both_partitions_and_its_cash_trades_there(two: Exchange) -> None:
    buyer = await two.participant("buyer", cash="1000.00")  # deposited in partition 1
    name = buyer.participant
    await transfer(buyer, "t1", "400.00", 2)
    out = cash(await two.reports_until(buyer, lambda r: bool(cash(r, "transferred_out"))), "transferred_out")
    assert out[0]["partition"] == 2
    assert out[0]["amount"] == "400.00"
    there = two.venue.client(name, partition=2)
    got = await two.reports_until(there, lambda r: bool(cash(r, "transferred_in")))
    arrived = cash(got, "transferred_in")
    expected = {"type": "cash", "seq": arrived[0]["seq"], "status": "transferred_in", "amount": "400.00",
                "partition": 1, "transfer_seq": out[0]["transfer_seq"]}
    assert arrived == [expected]
    # The cash is usable there: an instrument of partition 2 takes a buy it funds; partition 1's does not
    # exist there (an instrument trades in one partition).
    symbol = two.unique("P2-T")
    await two.venue.operator_in(2).operator(
        "list_instrument", two.unique("t-op-"), symbol=symbol, reference_price="50.00", kind="allowance",
        standard="P2", registry="SZ", vintage=2025,
    )  # fmt: skip
    await there.send("new_order", client_order_id="b1", instrument=symbol, side="buy", order_type="limit",
                     price="50.00", quantity=7)  # fmt: skip
    got = await two.reports_until(there, lambda r: any(x.get("client_order_id") == "b1" for x in r))
    assert [r["exec_type"] for r in got if r.get("client_order_id") == "b1"] == ["new"]
    result = await verdict(two)
    assert result.problems == []
    assert result.in_flight == []
    # A transfer to where the exchange does not run, and one beyond the balance: refused with reasons.
    await transfer(buyer, "t2", "1.00", 3)
    await transfer(buyer, "t3", "601.00", 2)
    refused = await two.reports_until(buyer, lambda r: len([x for x in r if "reason" in x]) >= 2)
    assert sorted(r["reason"]["code"] for r in refused if "reason" in r) == ["insufficient_funds",
                                                                                "unknown_partition"]


async def test_kill_9_of_the_crediting_process_credits_every_transfer_once(two: Exchange) -> None:
    """Transfers pile up in flight while partition 2's transfers process is stopped, then it is killed
    (and restarted by its supervisor) again and again while more flow: each arrives exactly once."""
    assert two.supervisor is not None
    sender = await two.participant("sender", cash="100.00")
    procs = two.supervisor.procs
    watcher = asyncio.create_task(two.supervisor.watch())  # restarts what exits, as `greenex up` does
    os.kill(procs["transfers@p2"].pid, signal.SIGSTOP)
    for i in range(5):
        await transfer(sender, f"a{i}", "1.00", 2)

    async def in_flight(n: int) -> bool:
        return len((await verdict(two)).in_flight) == n

    await eventually(lambda: in_flight(5), timeout=20)
    assert (await verdict(two)).problems == []  # in flight counts: conservation holds meanwhile
    killed = {procs["transfers@p2"].pid}
    os.kill(procs["transfers@p2"].pid, signal.SIGKILL)
    for i in range(15):
        await transfer(sender, f"b{i}", "1.00", 2)
        if i % 5 == 4:  # once restarted, killed again while transfers flow
            await eventually(lambda: procs["transfers@p2"].pid not in killed, timeout=20)
            await asyncio.sleep(0.5)
            killed.add(procs["transfers@p2"].pid)
            os.kill(procs["transfers@p2"].pid, signal.SIGKILL)
    await eventually(lambda: in_flight(0), timeout=60)
    watcher.cancel()
    parts = await read_partitions(two.settings, two.venue.redis(OPERATOR_USER))
    result = partition_problems(parts)
    assert result.problems == []
    assert parts.states[1].settlement.balances()[sender.participant] == 80_00
    assert parts.states[2].settlement.balances()[sender.participant] == 20_00
    credits = [who for who, _ in parts.states[2].transfers_in.values() if who == sender.participant]
    assert len(credits) == 20
    assert two.supervisor.restarts["transfers@p2"] >= 4


async def test_greenex_partitions_checks_every_partition(two: Exchange) -> None:
    done = run_greenex(service_env(two.settings), "partitions")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "conservation OK across 2 partition(s)" in said
    assert "cash by participant" in said


async def test_greenex_partitions_compares_every_partitions_live_cores_with_its_replay(two: Exchange) -> None:
    """`--compare-live`: each partition's running cores agree with its replay; a core of partition 2 whose
    published state differs from its log is named, with its partition."""
    env = service_env(two.settings)

    def agrees() -> bool:  # every core publishes its digest once it has been quiet for a moment
        return run_greenex(env, "partitions", "--compare-live").returncode == 0

    await eventually(agrees, timeout=30, interval=1)
    said = " ".join(run_greenex(env, "partitions", "--compare-live").stdout.split())
    assert "live state agrees" in said
    p2 = two.settings.in_partition(2).keys
    published = await two.redis.hget(p2.digests, "matching")
    assert isinstance(published, bytes)
    seq, _, _ = published.decode().partition(":")
    await two.redis.hset(p2.digests, "matching", f"{seq}:{'0' * 64}")  # a core gone astray
    try:
        done = run_greenex(env, "partitions", "--compare-live")
    finally:
        await two.redis.hset(p2.digests, "matching", published)
    assert done.returncode == 1
    assert f"partition 2: matching differs at seq {seq}" in " ".join(done.stdout.split())


async def test_a_participant_reaches_its_own_streams_in_both_partitions_only(two: Exchange) -> None:
    client = await two.participant("lonely")
    other = await two.participant("other")
    p2 = two.settings.in_partition(2).keys
    redis = client.redis
    await redis.xrange(p2.reports(client.participant))  # its own reports there: allowed
    await redis.xadd(p2.commands(client.participant), {"data": "{}"})  # its own command stream: allowed
    for forbidden in (redis.xrange(p2.log), redis.xrange(p2.reports(other.participant)),
                      redis.xadd(p2.log, {"data": "x"}), redis.get(p2.lease("transfers")),
                      redis.xadd(p2.commands(other.participant), {"x": "1"})):  # fmt: skip
        with pytest.raises(NoPermissionError):
            await forbidden


async def test_each_partitions_services_reach_their_own_partition_only(two: Exchange) -> None:
    """A process of partition 2 logs in as its own user (`intake@p2`): refused on partition 1's keys, as
    partition 1's processes are on partition 2's; the transfers process may read the other partition's
    index of debits, and nothing else of it: not its log (its order flow), not its reports."""
    p1, p2 = two.settings.keys, two.settings.in_partition(2).keys

    intake2, verification1, transfers2 = (two.venue.redis(user) for user in ("intake@p2", "verification",
                                                                               "transfers@p2"))
    await intake2.xrange(p2.log, count=1)  # its own partition's log: allowed
    await transfers2.xrange(p1.index("CashTransferredOut"), count=1)  # the other's debits: read only
    for forbidden in (intake2.xrange(p1.log, count=1), intake2.xadd(p1.log, {"x": "1"}),
                      verification1.xrange(p2.log, count=1), transfers2.xadd(p1.log, {"x": "1"}),
                      transfers2.xrange(p1.log, count=1), transfers2.xrange(p1.bell("transfers")),
                      transfers2.xadd(p1.index("CashTransferredOut"), {"x": "1"}),
                      transfers2.xrange(p1.reports("nobody")), transfers2.get(p1.lease("transfers")),
                      intake2.hget(p1.positions, "intake")):  # fmt: skip
        with pytest.raises(NoPermissionError):
            await forbidden


async def test_each_partitions_checkpoints_name_it(two: Exchange) -> None:
    """Partition 2's checkpoint process signs `<venue>/p2`: its log verifies, checkpoints and all, as
    partition 2's, and is refused as partition 1's (same key, seqs from 1 in both: without the name an
    archive of one would pass for the other's)."""
    settings = two.settings.in_partition(2)
    reader = two.venue.redis(OPERATOR_USER)
    for _ in range(4):  # entries in partition 2: listings (every 4th entry is signed here)
        await two.venue.operator_in(2).operator(
            "list_instrument", two.unique("c-op-"), symbol=two.unique("P2-C"), reference_price="50.00",
            kind="allowance", standard="P2", registry="SZ", vintage=2025,
        )  # fmt: skip

    entries: list[Entry] = []

    async def signed() -> bool:
        entries[:] = await RedisEventLog(reader, settings.keys).read(0, 10_000)
        return any(checkpoint_in(e) is not None for e in entries)

    await eventually(signed, timeout=30, interval=0.5)
    venues = {c.venue for e in entries if (c := checkpoint_in(e)) is not None}
    assert venues == {f"{two.settings.venue}/p2"}
    as_itself = log_verifier(settings).check_run(entries)
    assert (as_itself.ok, as_itself.checkpoints > 0) == (True, True)
    wrong = log_verifier(settings)  # partition 2's producer keys, so only the partition can be wrong
    wrong.partition = 1
    as_partition_1 = wrong.check_run(entries)
    assert not as_partition_1.ok
    assert "signed for partition 2" in as_partition_1.reason
