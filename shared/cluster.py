"""Redis Cluster: which master serves an exchange's keys.

Every key of one exchange starts with its hash tag (shared/keys.py), so all of them live in one slot, and
a plain connection to the master serving that slot can run every command the exchange sends: the append
script with all its keys, MULTI blocks, multi-stream reads. After a failover that master is another node;
a process finds it again by asking any node for the slot map (CLUSTER SLOTS, which every Redis user of
the exchange may run: services/runtime/acl.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse, urlunparse

from redis.asyncio import Redis
from redis.crc import key_slot

__all__ = ["in_cluster_mode", "node_url", "slot_of", "slot_owner"]


def slot_of(key: str) -> int:
    """The cluster slot of `key` (CRC16 of its hash tag, modulo 16384)."""
    return int(key_slot(key.encode()))


async def in_cluster_mode(redis: Redis) -> bool:
    info: dict[str, Any] = await redis.info("cluster")
    return bool(info.get("cluster_enabled"))


async def slot_owner(redis: Redis, key: str) -> tuple[str, int]:
    """(host, port) of the master serving `key`'s slot, as the node `redis` talks to sees the cluster;
    LookupError if no master serves it (the cluster is down or being resharded)."""
    slot = slot_of(key)
    ranges: Any = await redis.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
    for first, last, master, *_replicas in ranges:
        if int(first) <= slot <= int(last):
            host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
            return host, int(master[1])
    raise LookupError(f"no master serves slot {slot} (of {key})")


def node_url(url: str, host: str, port: int) -> str:
    """`url` pointed at another node of the same cluster (its login and options kept)."""
    parsed = urlparse(url)
    login, at, _ = parsed.netloc.rpartition("@")
    return urlunparse(parsed._replace(netloc=f"{login}{at}{host}:{port}"))
