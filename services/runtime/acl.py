"""Redis ACL rules for every role, generated from the key schema (shared/keys.py) and the system map.

Key permissions come from `SCHEMA` (who writes, who reads, who touches only its own member); the
commands of each role are listed here, each one a role needs and nothing else. A script's commands and
keys are checked against the user that runs it, so a service's rights bound its append script too.

Users: one per service process (named after it), `operator` (the CLI), `public` (market data), one per
participant (named after it), and `admin`, root-equivalent (ACL SETUSER can grant anything), which only
provisioning uses (creating users, wiping a prefix, importing a log), and the re-drive of a dead letter
(it writes a sender's stream: shared/keys.py says why not the operator).

`default` is *locked*, not switched off: on, with a password nobody knows (the hash of 32 random bytes
that are thrown away). Redis 7.0 replays MULTI/EXEC blocks of its AOF, which is what every append script
becomes there, as the default user and re-checks that user's rights at EXEC: with `default` off (or
without rights) a restart silently drops every appended log entry (redis/redis#14541, fixed in 8.x by
redis/redis#14545; seen here: the whole log gone after one restart). Locked, `default` keeps the rights
the AOF replay needs while no client can log in as it (tests/integration/test_acl.py restarts a server
and checks the log survives).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence

from services.runtime.system import Process, System
from shared.config import ADMIN, OPERATOR_USER, PUBLIC_USER
from shared.keys import SCHEMA, Keys, Role
from shared.partitions import partition_user

__all__ = [
    "acl_file",
    "locked_default",
    "participant_rules",
    "process_roles",
    "role_rules",
    "service_users",
    "setuser_args",
]

# What every client library sends on connect (redis-py: AUTH or HELLO; CLIENT SETINFO errors are ignored);
# CLUSTER SLOTS: which node serves the exchange's slot (shared/cluster.py); it names no key.
_CONNECT = ("+ping", "+hello", "+auth", "+cluster|slots")
_LOG_WRITER = ("+evalsha", "+eval", "+xadd", "+xrange", "+xrevrange", "+xread", "+hget", "+hset")
_SNAPSHOTS = ("+lpush", "+ltrim", "+lrange")  # services/runtime/snapshots.py
_COMMANDS: dict[Role, tuple[str, ...]] = {
    # XPENDING: how often each pending command was delivered, to dead-letter one that keeps failing.
    Role.INTAKE: (
        *_LOG_WRITER,
        "+wait",  # the strict profile on a replicated Redis: reports only after their entries replicate
        "+xreadgroup",
        "+xack",
        "+xpending",
        "+xgroup|create",
        "+multi",
        "+exec",
        *_SNAPSHOTS,
    ),
    Role.FOLLOWER: (*_LOG_WRITER, "+multi", "+exec", *_SNAPSHOTS),
    Role.MATCHING: (),
    Role.OPERATOR: (
        "+info",  # greenex status: Redis memory (INFO reads no key)
        "+xadd",
        "+xinfo|groups",
        "+xread",
        "+xrange",
        "+xrevrange",
        "+xlen",
        "+get",
        "+hget",
        "+hgetall",
        "+lrange",
        "+lindex",
    ),
    Role.PARTICIPANT: ("+xadd", "+xread", "+xrange", "+xrevrange", "+xlen", "+get"),
    Role.PUBLIC: ("+xread", "+xrange", "+xrevrange", "+xlen", "+get"),
    # The public read model: documents overwritten whole with SET (granted on those keys alone: see
    # shared/keys.py), certificates by HSET, its change stream by XADD MAXLEN (a follower's command).
    Role.PROJECTION: ("+hset",),
    # The web app reads the public read model and nothing else (its keys are all it may name), but for
    # its own lease, which shared/eventlog/lease.py takes, renews and releases with EVAL.
    Role.WEB: ("+get", "+hget", "+hmget", "+zcard", "+zrangebyscore", "+xread", "+xrange", "+xrevrange",
               "+eval"),
}


def _key_rules(keys: Keys, roles: frozenset[Role], own: Iterable[str]) -> list[str]:
    """`%R~`, `%W~` and `~` patterns for a user with these roles; `own` are its members of the `{x}`
    families."""
    mine = sorted(set(own))
    rules: list[str] = []
    for spec in SCHEMA:
        reads, writes = bool(roles & set(spec.readers)), bool(roles & set(spec.writers))
        own_read, own_write = roles & set(spec.own_read), roles & set(spec.own_write)
        if not (reads or writes):
            continue
        every, members = [spec.pattern(keys.prefix)], [spec.pattern(keys.prefix, m) for m in mine]
        read, write = (members if own_read else every), (members if own_write else every)
        both = set(read) & set(write) if reads and writes else set()
        rules += [f"~{p}" for p in sorted(both)]
        rules += [f"%R~{p}" for p in read if reads and p not in both]
        rules += [f"%W~{p}" for p in write if writes and p not in both]
    return rules


def _selectors(keys: Keys, roles: frozenset[Role], own: Iterable[str]) -> list[str]:
    """Narrower grants beside a role's own rules (Redis 7 selectors, checked for a script's commands
    too): each key's `scoped` commands on that key only (a process's own lease, for the lease scripts),
    and for the operator a look at how far intake has read every sender's stream (XINFO GROUPS), never
    what is in it."""
    out = [f"(%R~{keys.commands('*')} +xinfo|groups)"] if Role.OPERATOR in roles else []
    mine = sorted(set(own))
    for spec in SCHEMA:
        commands = sorted({c for role, granted in spec.scoped if role in roles for c in granted})
        if not commands:
            continue
        own_only = roles & set(spec.own_write)
        patterns = [spec.pattern(keys.prefix, m) for m in mine] if own_only else [spec.pattern(keys.prefix)]
        out.append(f"({' '.join(f'~{p}' for p in patterns)} {' '.join(commands)})")
    return out


def role_rules(keys: Keys | Sequence[Keys], roles: Iterable[Role], own: Iterable[str] = ()) -> list[str]:
    """Every rule of one user with these roles but its password: keys, no channels, only its commands.
    With the keys of several partitions (shared/partitions.py), the same rights in each: a participant
    trades in every partition."""
    held, every = frozenset(roles), _partitions(keys)
    commands = sorted({command for role in held for command in _COMMANDS[role]})
    return [
        "resetkeys", *(rule for k in every for rule in _key_rules(k, held, own)), "resetchannels", "-@all",
        *_CONNECT, *commands, *(rule for k in every for rule in _selectors(k, held, own)),
    ]  # fmt: skip


def _partitions(keys: Keys | Sequence[Keys]) -> tuple[Keys, ...]:
    """One exchange's keys, or every partition's (partition 1 first)."""
    return (keys,) if isinstance(keys, Keys) else tuple(keys)


def process_roles(process: Process) -> frozenset[Role]:
    """Intake is intake; a process that names its roles in the map has those (the web app, the
    projection); every other process follows the log and appends (matching also writes depth)."""
    if process.roles:
        return frozenset(Role(role) for role in process.roles)
    if process.name == Role.INTAKE:
        return frozenset({Role.INTAKE})
    return frozenset({Role.FOLLOWER, *([Role.MATCHING] if process.name == Role.MATCHING else [])})


def service_users(system: System, keys: Keys | Sequence[Keys]) -> dict[str, list[str]]:
    """user -> rules for each process of the map in each partition, the operator and the public reader.

    A process of partition n logs in as its own user (shared/partitions.partition_user) with rights on
    partition n's keys only; a partition's transfers process may also read the index streams it follows
    in the other partitions (their debits), and nothing else there. The operator and the public reader
    see every partition."""
    every = _partitions(keys)
    users: dict[str, list[str]] = {}
    for n, own_keys in enumerate(every, start=1):
        for p in system.processes:
            own = [p.name, *(core.name for core in p.cores), *p.keeps]
            rules = role_rules(own_keys, process_roles(p), own=own)
            rules += [f"%R~{k.index(t)}" for k in every if k is not own_keys for t in sorted(p.indexed)]
            users[partition_user(p.name, n)] = rules
    users[OPERATOR_USER] = role_rules(every, [Role.OPERATOR], own=[OPERATOR_USER])
    users[PUBLIC_USER] = role_rules(every, [Role.PUBLIC])
    return users


def participant_rules(keys: Keys | Sequence[Keys], participant: str) -> list[str]:
    return role_rules(keys, [Role.PARTICIPANT], own=[participant])


def locked_default() -> list[str]:
    """ACL SETUSER arguments that lock `default` (see the module docstring)."""
    return ["default", "on", "resetpass", f"#{_sha256(secrets.token_hex(32))}", "~*", "&*", "+@all"]


def setuser_args(user: str, password: str, rules: list[str]) -> list[str]:
    """ACL SETUSER arguments: a fresh user (`reset`), enabled, with exactly this password and these rules."""
    return [user, "reset", "on", f"#{_sha256(password)}", *rules]


def acl_file(users: dict[str, tuple[str, list[str]]]) -> str:
    """An ACL file (Redis `aclfile`): these users (name -> password, rules), admin root, default locked."""
    lines = [" ".join(["user", *locked_default()])]
    for user, (password, rules) in sorted(users.items()):
        if user == ADMIN:
            lines.append(f"user {ADMIN} on #{_sha256(password)} ~* &* +@all")
        else:
            lines.append(" ".join(["user", user, "on", f"#{_sha256(password)}", *rules]))
    return "\n".join(lines) + "\n"


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()
