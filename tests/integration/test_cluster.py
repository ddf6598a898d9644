"""The log on a real Redis Cluster (issue 17, first step): 3 masters with a replica each, on loopback,
every node with the key ring's users. One exchange's keys share one slot, so its append script runs on
the master serving it; every node refuses a participant the log (NOPERM); kill -9 that master and its
replica takes over with every entry a WAIT had seen replicated, found again through the slot map."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, MovedError, NoPermissionError, ResponseError

from services.cli.cluster_local import LocalCluster, free_cluster_ports
from services.cli.demo import seed_exchange
from services.cli.local import service_env
from services.cli.provision import ACL_FILE, apply_acl, init_keys
from services.cli.readmodel import replay_log
from services.cli.supervisor import Supervisor
from services.cli.venue import Venue
from services.cli.views import conservation_problems
from services.system import SYSTEM
from shared.cluster import ClusterPlace, node_url, place_on_cluster, slot_of, slot_owner
from shared.config import ADMIN, Settings
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.verify import verify_log
from shared.keys import SCHEMA, Keys
from shared.reports import ExecType
from shared.trading import NoAnswer, TradingClient
from tests.integration.exchange import run_greenex
from tests.integration.load_support import settled_exchange
from tests.support import FakeClock, eventually, new_entries

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

PREFIX = "clu"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LocalCluster, Settings]]:
    settings = Settings(redis_url="redis://127.0.0.1:1", prefix=PREFIX, keys_dir=str(tmp_path / "keys"))
    init_keys(settings, SYSTEM)
    admin = (ADMIN, settings.keyring.redis_password(ADMIN))
    ports = free_cluster_ports(6)
    nodes = LocalCluster(tmp_path / "cluster", ports, 1, Path(settings.keys_dir) / ACL_FILE, admin)
    try:
        nodes.start()
        yield nodes, settings
    finally:
        nodes.stop()


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _opened:
        await _opened.pop().aclose()


_opened: list[Redis] = []


def after_port(settings: Settings) -> int:
    """The port of the node `settings.redis_url` names."""
    return int(settings.redis_url.rsplit(":", 1)[1].split("/", 1)[0])


def _as(settings: Settings, port: int, user: str) -> Redis:
    client = Redis(port=port, username=user, password=settings.keyring.redis_password(user))
    _opened.append(client)
    return client


def test_every_key_of_an_exchange_is_in_one_slot() -> None:
    keys = Keys(PREFIX)
    slots = {slot_of(spec.pattern(PREFIX, member)) for spec in SCHEMA for member in ("alice", "matching")}
    assert slots == {slot_of(keys.log)}
    assert slot_of(Keys("other").log) != slot_of(keys.log)  # another exchange (a partition): its own slot


async def test_the_log_on_a_cluster_survives_the_loss_of_its_master(
    cluster: tuple[LocalCluster, Settings],
) -> None:
    nodes, settings = cluster
    keys = Keys(PREFIX)
    host, port = await slot_owner(_as(settings, nodes.ports[0], ADMIN), keys.log)
    others = [p for p in nodes.ports if p != port]
    some_node = _as(settings, others[-1], ADMIN)  # asked for the slot map before and after the failover
    url = f"redis://admin:pw@127.0.0.1:{nodes.ports[0]}/0"
    assert node_url(url, host, port) == f"redis://admin:pw@{host}:{port}/0"

    # A node that does not serve the slot refuses the append with MOVED: clients need the owner.
    elsewhere = _as(settings, others[0], ADMIN)
    wrong = RedisEventLog(elsewhere, keys, clock=FakeClock(), producer_keys=IN_MEMORY_KEYS)
    with pytest.raises(MovedError) as moved:
        await wrong.append("p", new_entries(1))
    assert (moved.value.slot_id, moved.value.node_addr) == (slot_of(keys.log), (host, port))

    # The CLI says so in one line, with the node to use.
    cli_env = {"REDIS_URL": f"redis://127.0.0.1:{others[0]}/0", "GREENEX_PREFIX": PREFIX,
               "GREENEX_KEYS_DIR": settings.keys_dir}  # fmt: skip
    lost = run_greenex(cli_env, "book", "CEA-2025")
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert f"they are on {host}:{port}: point REDIS_URL there" in lost.stderr
    assert "Traceback" not in lost.stderr

    owner = _as(settings, port, ADMIN)
    log = RedisEventLog(owner, keys, clock=FakeClock(), producer_keys=IN_MEMORY_KEYS)
    await log.append("p", new_entries(5))
    await log.append("p", new_entries(5, start=6))
    replicated = await cast(Any, owner).execute_command("WAIT", 1, 5000)
    assert replicated == 1  # the strict profile: the append counts once a replica has it

    # The key ring's users are on every node: the public user may not read the log on any of them (ACLs
    # are checked before the slot: NOPERM, not MOVED, even where the slot is not served), and the
    # intake service's user may.
    for node in nodes.ports:
        public = _as(settings, node, "public")
        with pytest.raises(NoPermissionError):
            await public.xrange(keys.log)
    intake = _as(settings, port, "intake")
    assert len(cast(list[Any], await intake.xrange(keys.log))) == 10

    nodes.kill(port)  # the master serving the exchange, kill -9

    async def promoted() -> bool:
        try:
            _, serving = await slot_owner(some_node, keys.log)
        except (LookupError, OSError, ResponseError):
            return False
        return serving != port and nodes.info(serving).get("cluster_state") == "ok"

    await eventually(promoted, timeout=30, interval=0.2)
    _, new_port = await slot_owner(some_node, keys.log)
    survivor = _as(settings, new_port, ADMIN)
    after = RedisEventLog(survivor, keys, clock=FakeClock(), producer_keys=IN_MEMORY_KEYS)
    entries = await after.read(0, 100)
    assert [e.seq for e in entries] == list(range(1, 11))
    assert (await verify_log(after)).ok  # the same chain, link by link
    await after.append("p", new_entries(1, start=11))  # the new master takes appends on the same chain
    assert (await after.head())[0] == 11


async def _trade(url: str, venue: Venue, price: str, timeout: float = 30) -> None:
    """cementco sells 5 t of SZEA-2025 to greenfund at `price`, through the client library."""
    s = venue.settings

    async def session(name: str) -> TradingClient:
        creds = venue.credentials[name]
        return await TradingClient.connect(url, name, creds.redis_password, creds.signing_key,
                                           venue=s.venue, prefix=s.prefix)  # fmt: skip

    async with await session("cementco") as seller, await session("greenfund") as buyer:
        await seller.outcome(await seller.sell("SZEA-2025", 5, price=price), timeout=timeout)
        await buyer.outcome(await buyer.buy("SZEA-2025", 5, price=price), timeout=timeout)


@dataclass
class _Running:
    """An exchange's processes on the cluster, given a node other than the master serving its slot."""

    seed: Settings  # what the processes are given: that node, the others to ask as well
    placed: Settings  # pointed at the master serving the slot
    place: ClusterPlace
    venue: Venue
    owner: int  # that master's port


@contextlib.asynccontextmanager
async def _exchange_on(cluster: tuple[LocalCluster, Settings], tmp_path: Path) -> AsyncIterator[_Running]:
    """The strict profile (GREENEX_WAIT_REPLICAS=1), every process restarted when it exits (as `greenex
    up` does), the demo seed in place."""
    nodes, ring = cluster
    _, owner = await slot_owner(_as(ring, nodes.ports[0], ADMIN), Keys(PREFIX).log)
    given = next(p for p in nodes.ports if p != owner)
    seed = Settings(redis_url=f"redis://127.0.0.1:{given}/0", prefix=PREFIX, keys_dir=ring.keys_dir,
                    venue="greenex-test")  # fmt: skip
    env = service_env(seed, GREENEX_LOG_LEVEL="WARNING", GREENEX_WEB_PORT="0", GREENEX_WAIT_REPLICAS="1",
                      GREENEX_CLUSTER_NODES=",".join(f"127.0.0.1:{p}" for p in nodes.ports))  # fmt: skip
    placed, place = await place_on_cluster(seed, ADMIN)
    assert place is not None
    assert place.master[1] == owner
    sup = Supervisor(env=env, log_dir=tmp_path / "logs")
    venue = Venue(placed)
    await sup.start()
    watcher = asyncio.create_task(sup.watch())
    try:
        await seed_exchange(venue)
        await settled_exchange(venue.redis(ADMIN), placed, timeout=60)
        yield _Running(seed, placed, place, venue, owner)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await sup.stop()
        await venue.aclose()


async def _failed_over(run: _Running) -> Settings:
    """Once another master serves the slot: settings pointed at it."""

    async def moved() -> bool:
        try:
            now = (await place_on_cluster(run.seed, ADMIN))[1]
        except LookupError:
            return False
        return now is not None and now.master != run.place.master

    await eventually(moved, timeout=30, interval=0.2)
    return (await place_on_cluster(run.seed, ADMIN))[0]


async def test_an_exchange_on_the_cluster_resumes_on_the_replica_of_its_dead_master(
    cluster: tuple[LocalCluster, Settings], tmp_path: Path
) -> None:
    """The service processes are given any node (and the others to ask if it is down): each finds the
    master serving the exchange's slot. The demo seed trades there. Under the strict profile
    (GREENEX_WAIT_REPLICAS=1) a stalled replica holds every report back: a client sees nothing its
    entries' replica does not have. kill -9 the master (after a WAIT: nothing in flight); every process
    notices the slot moved, exits, is started again on the promoted replica, rebuilds from the log
    there; the next trade settles and every tonne and fen adds up."""
    nodes = cluster[0]
    async with _exchange_on(cluster, tmp_path) as run:
        venue, admin = run.venue, run.venue.redis(ADMIN)
        await _trade(run.placed.redis_url, venue, "50.00")
        before = await settled_exchange(admin, run.placed, timeout=60)
        assert any(e.type == "TradeSettled" for e in before)
        assert await cast(Any, admin).execute_command("WAIT", 1, 5000) == 1

        (replica,) = nodes.replicas_of(run.owner)
        nodes.pause(replica)
        try:
            with pytest.raises(NoAnswer):  # logged on the master, but its reports wait for the replica
                await _trade(run.placed.redis_url, venue, "49.90", timeout=3)
        finally:
            nodes.resume(replica)
        await settled_exchange(admin, run.placed, timeout=60)  # ... and go out once it is back
        assert await cast(Any, admin).execute_command("WAIT", 1, 5000) == 1

        nodes.kill(run.owner)
        after_failover = await _failed_over(run)
        # The promoted replica has no replica of its own: under the strict profile no report goes out
        # until one is back. The dead master's machine returns as one.
        nodes.restart(run.owner)
        survivor = Venue(after_failover)
        survivor.credentials = venue.credentials  # the participants' users are on every node
        try:
            await _trade(after_failover.redis_url, survivor, "50.50")  # reports flow: a replica is back
            entries = await settled_exchange(survivor.redis(ADMIN), after_failover, timeout=60)
            status = run_greenex({"REDIS_URL": after_failover.redis_url, "GREENEX_PREFIX": PREFIX,
                                  "GREENEX_KEYS_DIR": after_failover.keys_dir}, "status")  # fmt: skip
            assert "the slot's master has 1 replica(s) in sync" in status.stdout, status.stderr
            state = await replay_log(RedisEventLog(survivor.redis(ADMIN), Keys(PREFIX)))
        finally:
            await survivor.aclose()
    assert [e.seq for e in entries[: len(before)]] == [e.seq for e in before]  # nothing lost
    settled = [e for e in entries if e.type == "TradeSettled"]
    assert len(settled) > len([e for e in before if e.type == "TradeSettled"])
    assert conservation_problems(state) == []


async def test_under_the_strict_profile_a_failover_under_load_loses_no_report_a_client_read(
    cluster: tuple[LocalCluster, Settings], tmp_path: Path
) -> None:
    """Orders keep coming while the master is killed, with no WAIT first: entries it had not sent its
    replica are lost, but under GREENEX_WAIT_REPLICAS=1 no client read a report about one. Every
    `new` report read before the kill names an entry the promoted replica has, for that very order.
    (On loopback a replica is rarely behind, so without the setting this run usually passes too: the
    stalled-replica test above is the one that shows reports waiting for the replica.)"""
    nodes = cluster[0]
    seen: dict[int, str] = {}  # seq -> client order id, of every `new` report read
    async with _exchange_on(cluster, tmp_path) as run:
        creds = run.venue.credentials["greenfund"]
        client = await TradingClient.connect(
            run.placed.redis_url, "greenfund", creds.redis_password, creds.signing_key,
            venue=run.placed.venue, prefix=PREFIX,
        )  # fmt: skip

        def note(report: Any) -> None:
            if getattr(report, "exec_type", None) is ExecType.NEW and report.seq:
                seen[report.seq] = report.client_order_id

        client.listener = note
        # The flow stops on an event, not on a cancel: redis-py can lose a cancel that lands on a blocked
        # read (services/cli/operator.py has the same).
        stop = asyncio.Event()

        async def send() -> None:  # resting bids inside the band, one tonne each, each awaited
            for n in itertools.count():
                if stop.is_set():
                    return
                with contextlib.suppress(Exception):  # NoAnswer, or the master gone
                    await client.outcome(await client.buy("SZEA-2025", 1, price=f"43.{50 + n % 50:02d}"), 2)

        flow = [asyncio.create_task(send())]
        await eventually(lambda: len(seen) >= 50, timeout=30, interval=0.05)
        nodes.kill(run.owner)  # mid-flow: whatever the master had not sent its replica dies with it
        read_before_kill = dict(seen)
        stop.set()
        await asyncio.wait(flow, timeout=15)
        with contextlib.suppress(Exception):
            await client.aclose()
        after = await _failed_over(run)
        log = RedisEventLog(_as(after, after_port(after), ADMIN), Keys(PREFIX))
        head = (await log.head())[0]
        assert read_before_kill
        for seq, cid in sorted(read_before_kill.items()):
            assert seq <= head, f"a report of seq {seq} was read, the new master's log ends at {head}"
            (entry,) = await log.read(seq - 1, 1)
            assert entry.seq == seq
            assert cid.encode() in entry.body, (seq, cid, entry.type)


async def test_acl_apply_on_one_node_gives_every_node_the_exchanges_users(tmp_path: Path) -> None:
    """`greenex acl apply` against a cluster whose nodes started without users: every node gets every
    role's user and a locked default user, not only the node it was pointed at."""
    settings = Settings(redis_url="redis://127.0.0.1:1", prefix=PREFIX, keys_dir=str(tmp_path / "keys"))
    init_keys(settings, SYSTEM)
    nodes = LocalCluster(tmp_path / "cluster", free_cluster_ports(6), 1)
    try:
        nodes.start()
        first = Redis(port=nodes.ports[0])
        _opened.append(first)
        await apply_acl(first, settings, SYSTEM, lock_default=True)
        for port in nodes.ports:
            anonymous = Redis(port=port, retry=Retry(NoBackoff(), 0))  # refused is the answer: no retries
            _opened.append(anonymous)
            with pytest.raises((AuthenticationError, ResponseError), match=r"NOAUTH|authenticat"):
                await anonymous.ping()
            assert await _as(settings, port, "intake").ping()
            with pytest.raises(NoPermissionError):
                await _as(settings, port, "public").xrange(Keys(PREFIX).log)
    finally:
        nodes.stop()
