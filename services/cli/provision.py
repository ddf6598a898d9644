"""Provisioning: the key ring, the Redis users of every role, and a new participant's credentials.

Only this module uses `admin`, the root-equivalent Redis user; services, the operator's day-to-day
commands and participants never do.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.intake.core import valid_participant_id
from services.runtime.acl import acl_file, locked_default, participant_rules, service_users, setuser_args
from services.runtime.system import System
from shared.cluster import cluster_nodes
from shared.config import ADMIN, OPERATOR_USER, PUBLIC_USER, Settings, connect
from shared.keyring import KeyRing, new_password
from shared.keys import Keys
from shared.partitions import partition_user

__all__ = [
    "ACL_FILE",
    "Credentials",
    "ProvisioningError",
    "apply_acl",
    "create_participant_user",
    "init_keys",
    "role_users",
    "sealed_key",
]

# What a private Redis starts with (`aclfile`): in a directory of its own inside the key ring, so a
# deployment can give Redis that directory (ACL SAVE writes a new file there and renames it) and
# none of the ring's secrets.
ACL_FILE = "redis/users.acl"
log = structlog.get_logger("greenex.provision")
_LOCAL = {"localhost": "127.0.0.1"}  # one loopback, two spellings (redis-py's default and the cluster's)


class ProvisioningError(Exception):
    """Provisioning cannot go on (a user exists, Redis refuses): said in one line."""


def role_users(system: System, partitions: int = 1) -> tuple[str, ...]:
    """Every Redis user but the participants': the map's processes (once per partition), the operator,
    public, admin."""
    processes = [partition_user(p.name, n) for n in range(1, partitions + 1) for p in system.processes]
    return (*processes, OPERATOR_USER, PUBLIC_USER, ADMIN)


def init_keys(settings: Settings, system: System) -> KeyRing:
    """The key ring with every secret and role password (kept where they exist), and the ACL file a
    private Redis starts with (written once: participants added later are saved into it by Redis)."""
    ring = KeyRing.create(settings.keys_dir, role_users(system, settings.partitions))
    acl = ring.path / ACL_FILE
    if not acl.exists():
        users = {
            user: (ring.redis_password(user), rules)
            for user, rules in service_users(system, settings.partition_keys).items()
        }
        users[ADMIN] = (ring.redis_password(ADMIN), [])
        ring.write_private(ACL_FILE, acl_file(users))
    return ring


async def apply_acl(redis: Redis, settings: Settings, system: System, *, lock_default: bool = True) -> None:
    """Create (or reset) every role's user on a running Redis from the key ring, then lock the default
    user (services/runtime/acl.py says why locked and not off): `redis` must be a connection with ACL
    rights (admin, or a fresh server's default). On a cluster, on every node (with the same login)."""
    ring = settings.keyring

    async def apply(node: Redis) -> None:
        for user, rules in service_users(system, settings.partition_keys).items():
            await _acl(node, "SETUSER", *setuser_args(user, ring.redis_password(user), rules))
        admin_password = ring.redis_password(ADMIN)
        await _acl(node, "SETUSER", *setuser_args(ADMIN, admin_password, ["~*", "&*", "+@all"]))
        if lock_default:
            await _acl(node, "SETUSER", *locked_default())
        await _save(node)

    await _each_node(redis, apply)


async def _acl(redis: Redis, *args: str) -> Any:
    """One ACL subcommand (redis-py types execute_command loosely)."""
    return await redis.execute_command("ACL", *args)  # type: ignore[no-untyped-call]


async def _save(redis: Redis) -> None:
    try:
        await _acl(redis, "SAVE")
    except ResponseError as exc:
        if "ACL file" not in str(exc) and "aclfile" not in str(exc).lower():
            raise  # a server without an ACL file keeps users in memory (and its config), not an error


@dataclass(frozen=True)
class Credentials:
    """What a new participant is given once: never stored by the exchange in the clear."""

    participant: str
    redis_user: str
    redis_password: str
    signing_key: str  # the HMAC key it signs commands with
    venue: str
    exchange_box_key: str  # hex X25519 public key, to seal a new signing key when rotating

    def as_text(self, redis_url: str) -> str:
        return "\n".join(
            [
                f"participant       {self.participant}",
                f"redis user        {self.redis_user}",
                f"redis password    {self.redis_password}",
                f"signing key       {self.signing_key}",
                f"venue             {self.venue}",
                f"exchange box key  {self.exchange_box_key}",
                f"redis url         {redis_url}",
            ]
        )


async def create_participant_user(admin: Redis, keys: Keys | Sequence[Keys], participant: str) -> str:
    """A new Redis user for the participant with a fresh password (returned): refused if one exists,
    so provisioning never resets a live participant's password."""
    if not valid_participant_id(participant):
        raise ProvisioningError(
            f"{participant!r} is not a valid participant id (1-64 of [a-z0-9_.-], not reserved)"
        )
    if await _acl(admin, "GETUSER", participant) is not None:
        raise ProvisioningError(f"a Redis user {participant!r} already exists")
    password = new_password()
    rules = participant_rules(keys, participant)
    await _on_every_node(admin, "SETUSER", *setuser_args(participant, password, rules))
    return password


async def delete_participant_user(admin: Redis, participant: str) -> None:
    await _on_every_node(admin, "DELUSER", participant)


async def _on_every_node(admin: Redis, *args: str) -> None:
    """One ACL change, on every node of a cluster: Redis keeps users per node and does not replicate ACL
    commands, and after a failover a replica serves the clients."""

    async def change(node: Redis) -> None:
        await _acl(node, *args)
        await _save(node)

    await _each_node(admin, change)


async def _each_node(redis: Redis, change: Callable[[Redis], Awaitable[None]]) -> None:
    """`change` on `redis`'s server and, on a cluster, on every other node, logged in as `redis` is."""
    nodes = await cluster_nodes(redis)  # first: `change` may lock the login used to ask
    await change(redis)
    login = redis.connection_pool.connection_kwargs
    here = (_LOCAL.get(login.get("host", ""), login.get("host")), login.get("port"))
    for host, port in nodes:
        if (_LOCAL.get(host, host), port) == here:
            continue
        node = Redis(host=host, port=port, username=login.get("username"), password=login.get("password"),
                     socket_connect_timeout=2)  # fmt: skip
        try:
            await change(node)
        except (RedisError, OSError) as exc:
            # A node that is down misses it: on restart it has what its ACL file has (deploy/cluster.sh
            # gives every node the key ring's one file, which the others' ACL SAVE just wrote).
            log.warning("acl_not_applied_on_node", node=f"{host}:{port}", error=repr(exc))
        finally:
            await node.aclose()


def sealed_key(
    ring: KeyRing, participant: str, key_id: str, secret: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A signing key (given, or 32 random bytes in hex) and its sealed form for an operator command."""
    key = secret if secret is not None else secrets.token_hex(32)
    return key, msgspec.to_builtins(ring.sealer().seal(key.encode(), participant, key_id))


def admin_client(settings: Settings) -> Redis:
    return connect(settings, ADMIN)


def key_ring_path(settings: Settings) -> Path:
    return Path(settings.keys_dir)
