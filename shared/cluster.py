"""Redis Cluster: which master serves an exchange's keys.

Every key of one exchange starts with its hash tag (shared/keys.py), so all of them live in one slot, and
a plain connection to the master serving that slot can run every command the exchange sends: the append
script with all its keys, MULTI blocks, multi-stream reads. After a failover that master is another node;
a process finds it again by asking any node for the slot map (CLUSTER SLOTS, which every Redis user of
the exchange may run: services/runtime/acl.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlparse, urlunparse

import msgspec
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import NoPermissionError, RedisError, ResponseError

from shared.config import Settings

__all__ = [
    "ClusterPlace",
    "cluster_nodes",
    "node_url",
    "on_cluster",
    "place_on_cluster",
    "serving",
    "slot_of",
    "slot_owner",
    "watch_slot",
]


_NOT_A_CLUSTER = "cluster support disabled"  # what a plain Redis answers to CLUSTER commands


async def _slots(redis: Redis) -> list[Any] | None:
    """The slot map as the node `redis` talks to sees it (CLUSTER SLOTS); None from a plain Redis."""
    try:
        return cast(list[Any], await redis.execute_command("CLUSTER", "SLOTS"))  # type: ignore[no-untyped-call]
    except ResponseError as exc:
        if _NOT_A_CLUSTER in str(exc):
            return None
        raise


def slot_of(key: str) -> int:
    """The cluster slot of `key` (CRC16 of its hash tag, modulo 16384)."""
    return int(key_slot(key.encode()))


@dataclass(frozen=True)
class ClusterPlace:
    """Where an exchange's slot is served, and every node that knew it (to ask again after a failover)."""

    master: tuple[str, int]
    nodes: tuple[tuple[str, int], ...]


async def place_on_cluster(settings: Settings, user: str) -> tuple[Settings, ClusterPlace | None]:
    """`settings` with `redis_url` pointed at the master serving the exchange's slot, when the server at
    `redis_url` is a cluster node (None: a plain Redis, nothing to do). Asks `redis_url`'s node, then
    those of `cluster_nodes` (GREENEX_CLUSTER_NODES, "host:port,...": the node named by REDIS_URL may be
    the one that died). Logged in as `user`, who may run CLUSTER SLOTS (every Redis user of the
    exchange may). LookupError if no node answers or none serves the slot."""
    password = settings.keyring.redis_password(user)
    seeds = [settings.redis_url] + [node_url(settings.redis_url, *_parse(n)) for n in _listed(settings)]
    failure: Exception | None = None
    for url in seeds:
        redis = Redis.from_url(url, username=user, password=password, socket_connect_timeout=1)
        try:
            ranges = await _slots(redis)
        except NoPermissionError:
            # Users from before CLUSTER SLOTS was granted, who cannot be on a cluster (their ACL file was
            # made for one server).
            return settings, None
        except (RedisError, OSError) as exc:
            failure = exc
            continue
        finally:
            await redis.aclose()
        if ranges is None:
            return settings, None
        master = _owner(ranges, slot_of(settings.keys.log))
        place = ClusterPlace(master, _nodes(ranges))
        return msgspec.structs.replace(settings, redis_url=node_url(settings.redis_url, *master)), place
    raise LookupError(f"no cluster node answered ({failure})")


def _listed(settings: Settings) -> list[str]:
    return [n.strip() for n in settings.cluster_nodes.split(",") if n.strip()]


def _parse(node: str) -> tuple[str, int]:
    host, _, port = node.rpartition(":")
    return host, int(port)


async def serving(place: ClusterPlace, settings: Settings, user: str) -> tuple[str, int] | None:
    """The master serving the exchange's slot now, asked of the nodes known at start in turn (the one
    we used may be the one that died); None if none of them answers."""
    password = settings.keyring.redis_password(user)
    for host, port in place.nodes:
        redis = Redis(host=host, port=port, username=user, password=password, socket_timeout=1,
                      socket_connect_timeout=1)  # fmt: skip
        try:
            ranges = await _slots(redis)
            if ranges is not None:
                return _owner(ranges, slot_of(settings.keys.log))
        except (RedisError, OSError, LookupError):
            continue
        finally:
            await redis.aclose()
    return None


async def watch_slot(place: ClusterPlace, settings: Settings, user: str, interval_s: float = 0.5) -> str:
    """Return (a reason) once another master serves the exchange's slot: the process must reconnect,
    which it does by exiting for its supervisor to start it again (its state is rebuilt from the log)."""
    while True:
        await asyncio.sleep(interval_s)
        now = await serving(place, settings, user)
        if now is not None and now != place.master:
            return f"the slot moved from {place.master[0]}:{place.master[1]} to {now[0]}:{now[1]}"


def _owner(ranges: Sequence[Any], slot: int) -> tuple[str, int]:
    for first, last, master, *_replicas in ranges:
        if int(first) <= slot <= int(last):
            return _address(master)
    raise LookupError(f"no master serves slot {slot}")


def _nodes(ranges: Sequence[Any]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted({_address(node) for _first, _last, *nodes in ranges for node in nodes}))


def _address(node: Sequence[Any]) -> tuple[str, int]:
    host = node[0].decode() if isinstance(node[0], bytes) else str(node[0])
    return host, int(node[1])


async def on_cluster(redis: Redis) -> bool:
    """Whether `redis` talks to a cluster node (asked with CLUSTER SLOTS, which every user may run)."""
    return await _slots(redis) is not None


async def cluster_nodes(redis: Redis) -> tuple[tuple[str, int], ...]:
    """Every node of the cluster the node `redis` talks to knows (masters, and replicas still syncing,
    which CLUSTER SLOTS leaves out), but those it marks failed; () for a plain Redis."""
    try:
        raw: Any = await redis.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
    except ResponseError as exc:
        if _NOT_A_CLUSTER in str(exc):
            return ()
        raise
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    found: set[tuple[str, int]] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or {"fail", "noaddr", "handshake"} & set(fields[2].split(",")):
            continue
        host, _, port = fields[1].split("@", 1)[0].rpartition(":")  # ip:port@cport[,hostname]
        if host and port.isdigit():
            found.add((host, int(port)))
    return tuple(sorted(found))


async def slot_owner(redis: Redis, key: str) -> tuple[str, int]:
    """(host, port) of the master serving `key`'s slot, as the node `redis` talks to sees the cluster;
    LookupError if no master serves it (the cluster is down or being resharded) or it is no cluster."""
    ranges = await _slots(redis)
    if ranges is None:
        raise LookupError("not a cluster node")
    return _owner(ranges, slot_of(key))


def node_url(url: str, host: str, port: int) -> str:
    """`url` pointed at another node of the same cluster (its login and options kept)."""
    parsed = urlparse(url)
    login, at, _ = parsed.netloc.rpartition("@")
    return urlunparse(parsed._replace(netloc=f"{login}{at}{host}:{port}"))
