"""The key schema: every Redis key the exchange touches, built in this one place, with who owns it.

No other module builds a key name. Each key has its writer roles and its reader roles; the Redis ACL
rules of every role are generated from `SCHEMA` (services/runtime/acl.py), so the rules and the code
that uses the keys cannot drift apart, and a scale-out can put hash tags on the names here.

Commands arrive on one stream per sender (`in:<participant>`), which only that participant's Redis user
may write: Redis authentication itself says who sent a command, and an XADD with the largest possible
stream id, which blocks every later XADD to that stream, blocks only its author.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SCHEMA", "SERVICES", "KeySpec", "Keys", "Role", "tag"]


class Role(enum.StrEnum):
    """Who touches Redis: intake, every process that follows the log and appends (each a FOLLOWER;
    matching also writes the depth views, the projection the public read model), the operator's CLI, a
    participant, the public, the web app."""

    INTAKE = "intake"
    FOLLOWER = "follower"
    MATCHING = "matching"
    OPERATOR = "operator"
    PARTICIPANT = "participant"
    PUBLIC = "public"
    PROJECTION = "projection"  # the public projection: writes the `pub:*` read model
    WEB = "web"  # the public web app: reads `pub:*` and nothing else


_FOLLOWERS = (Role.FOLLOWER,)
SERVICES = (Role.INTAKE, Role.FOLLOWER)
_EVERYONE_READS = (Role.PUBLIC, Role.PARTICIPANT, Role.OPERATOR)
_WEB_READS = (Role.WEB, Role.OPERATOR, Role.PROJECTION)  # HSET and XADD count as reads too
_LEASED = (*SERVICES, Role.WEB)  # every process holds a lease; the web app's is all it may write
_SET_PUBLIC = ((Role.PROJECTION, ("+set",)),)  # SET on these keys only: on the log it would replace it
_LEASE_SCRIPTS = ("+get", "+set", "+pexpire", "+pttl", "+del")  # what shared/eventlog/lease.py runs


def tag(prefix: str) -> str:
    """The hash tag every key of the exchange `prefix` starts with (see `Keys`)."""
    return f"{{{prefix}}}"


@dataclass(frozen=True)
class KeySpec:
    """One key (or family of keys): its name under the prefix, its Redis type, writers and readers.

    `own_write` / `own_read`: roles that write / read only their own member of the family, the `{x}`
    part being their identity (a participant's id, the operator's, a process's name or its cores'
    names); the other writers and readers touch every member.
    `scoped`: commands a role may run on this key and no other (Redis 7 selectors): those that would
    overwrite or expire any key they reached (SET on the log stream replaces it; PEXPIRE deletes it).
    """

    name: str  # under `<prefix>:`; `{x}` marks a variable part
    kind: str  # Redis type: stream, hash, string, list
    writers: tuple[Role, ...]
    readers: tuple[Role, ...]
    meaning: str
    own_write: tuple[Role, ...] = ()
    own_read: tuple[Role, ...] = ()
    scoped: tuple[tuple[Role, tuple[str, ...]], ...] = ()

    def pattern(self, prefix: str, member: str = "*") -> str:
        """A glob for this family (`{x}` becomes `member`, every member by default)."""
        head, brace, _ = self.name.partition("{")
        return f"{tag(prefix)}:{head}{member}" if brace else f"{tag(prefix)}:{self.name}"


SCHEMA: tuple[KeySpec, ...] = (
    # Intake reads the command streams through its consumer group, which XREADGROUP and XACK write.
    # The operator reads its own stream's consumer group too (XINFO GROUPS: has intake taken it yet?).
    KeySpec("in:{participant}", "stream", (Role.PARTICIPANT, Role.OPERATOR, Role.INTAKE),
            (Role.INTAKE, Role.OPERATOR), "one sender's signed commands; only the sender's user writes it",
            own_write=(Role.PARTICIPANT, Role.OPERATOR), own_read=(Role.OPERATOR,)),
    # Intake's rejection reports and matching's reports of its events are XADDed by the append script,
    # and Redis checks every key given to a script for reading and writing both: intake and matching hold
    # full rights on the report streams.
    KeySpec("out:{participant}", "stream", (Role.INTAKE, Role.MATCHING),
            (Role.INTAKE, Role.MATCHING, Role.PARTICIPANT, Role.OPERATOR),
            "one participant's execution, settlement, cash and registry reports",
            own_read=(Role.PARTICIPANT, Role.OPERATOR)),
    KeySpec("md:trades", "stream", (Role.MATCHING, Role.INTAKE),
            (*_EVERYONE_READS, Role.MATCHING, Role.INTAKE),
            "the public trade tape, written by matching with its trades (by intake's report publisher under "
            "the strict durability profile, which reads its end back when its report cursor is lost)"),
    KeySpec("md:depth:{instrument}", "string", (Role.MATCHING,), _EVERYONE_READS,
            "one book's L2 view as JSON, overwritten whole", scoped=((Role.MATCHING, ("+set",)),)),
    KeySpec("log", "stream", SERVICES, (*SERVICES, Role.OPERATOR),
            "the event log, the single source of truth; appended only by the append script"),
    KeySpec("log:positions", "hash", SERVICES, (*SERVICES, Role.OPERATOR),
            "each producer's last answered input, written by the append script with its batch"),
    # Every writer rings the bells its batch's types call for, inside the append script (hence full
    # rights, as for every key a script is given).
    KeySpec("log:bell:{reader}", "stream", SERVICES, SERVICES,
            "a process's wake-up bell (MAXLEN 1), rung by the append script for the types it answers"),
    # Kept by the append script, as bells are (hence full rights for every writer).
    KeySpec("log:index:{type}", "stream", SERVICES, SERVICES,
            "a copy of each log entry of one type under its seq, for readers that follow that type alone "
            "(another partition's transfers process follows CashTransferredOut; never trimmed)"),
    KeySpec("lease:{process}", "string", _LEASED, (*_LEASED, Role.OPERATOR),
            "the live copy of a process: `<token> <host> <pid>`, renewed every second, checked by the "
            "append script (shared/eventlog/lease.py)", own_write=_LEASED, own_read=_LEASED,
            scoped=tuple((role, _LEASE_SCRIPTS) for role in _LEASED)),
    KeySpec("reports:cursor", "string", (Role.INTAKE,), (Role.INTAKE, Role.OPERATOR),
            "the last log seq whose reports were written", scoped=((Role.INTAKE, ("+get", "+set")),)),
    KeySpec("digests", "hash", _FOLLOWERS, (Role.OPERATOR,),
            "each follower core's `<seq>:<state digest>`, for replay --compare-live"),
    # Dead letters hold participants' commands, which the operator otherwise never reads: only those
    # intake gave up on, for the operator to inspect. Dropping one is the operator's call, and XDEL is
    # granted on this key alone (XDEL on the log would delete history). A re-drive writes the sender's own
    # stream, which only that sender and admin may: it runs as admin, since the operator able to XADD to
    # every `in:*` could also block every participant's stream with the largest id (docs/security.md).
    KeySpec("dead:intake", "stream", (Role.INTAKE,), (Role.OPERATOR,),
            "commands intake could not process after DEAD_AFTER deliveries (services/intake/deadletters.py)",
            scoped=((Role.OPERATOR, ("+xdel",)),)),
    KeySpec("snapshots:{core}", "list", SERVICES, (*SERVICES, Role.OPERATOR),
            "a core's (or intake's, or its report publisher's) newest snapshots, sealed and tied to the "
            "log by hash", own_write=SERVICES, own_read=SERVICES),
    # The public read model (services/public): what may be published and nothing else, overwritten whole
    # by the projection after its batches; the web app's user reads these keys and no other.
    KeySpec("pub:market", "string", (Role.PROJECTION,), _WEB_READS, "every instrument's day, as JSON",
            scoped=_SET_PUBLIC),
    KeySpec("pub:instrument:{instrument}", "string", (Role.PROJECTION,), _WEB_READS,
            "one instrument's L2 book, tape, candles and daily statistics, as JSON", scoped=_SET_PUBLIC),
    KeySpec("pub:registry", "string", (Role.PROJECTION,), _WEB_READS,
            "projects, reports, issuances, buffer, reversals, surrenders, labels and claims, as JSON",
            scoped=_SET_PUBLIC),
    KeySpec("pub:certificates", "hash", (Role.PROJECTION,), _WEB_READS,
            "retirement, cancellation and surrender certificates by id, as JSON (no account ids)"),
    KeySpec("pub:certificate-order", "zset", (Role.PROJECTION,), _WEB_READS,
            "every certificate id scored by the seq that made it, added after its document: the web "
            "app's search index follows it", scoped=((Role.PROJECTION, ("+zadd",)),)),
    KeySpec("pub:checkpoints", "string", (Role.PROJECTION,), _WEB_READS,
            "the exchange's public key and the newest signed checkpoints, as JSON", scoped=_SET_PUBLIC),
    KeySpec("pub:events", "stream", (Role.PROJECTION,), _WEB_READS,
            "what changed in each publication (MAXLEN ~1000), for the web app's live updates"),
)  # fmt: skip


class Keys:
    """The names of one exchange's keys; `prefix` separates exchanges sharing a Redis.

    Every name starts with the prefix as a hash tag, `{greenex}:log`: on Redis Cluster all of an
    exchange's keys then live in one slot, so the append script (which is given the log, its positions,
    the bells and the report streams at once) and the MULTI blocks run there. One tag per exchange, so one
    master does all its work: partitions (issue 17) are exchanges with tags of their own."""

    def __init__(self, prefix: str = "greenex") -> None:
        if not prefix or any(c in prefix for c in " *?[]{}:"):
            raise ValueError(
                f"a key prefix must be non-empty, without spaces, ':' or glob characters: {prefix!r}"
            )
        self.prefix = prefix
        self.root = root = tag(prefix)
        self.trades = f"{root}:md:trades"
        self.log = f"{root}:log"
        self.positions = f"{root}:log:positions"
        self.report_cursor = f"{root}:reports:cursor"
        self.digests = f"{root}:digests"
        self.dead_letters = f"{root}:dead:intake"
        self.everything = f"{root}:*"  # a SCAN pattern over every key of this exchange
        self.pub_market = f"{root}:pub:market"
        self.pub_registry = f"{root}:pub:registry"
        self.pub_certificates = f"{root}:pub:certificates"
        self.pub_certificate_order = f"{root}:pub:certificate-order"
        self.pub_checkpoints = f"{root}:pub:checkpoints"
        self.pub_events = f"{root}:pub:events"
        self.public = f"{root}:pub:*"  # every key of the public read model

    def commands(self, sender: str) -> str:
        """The stream a participant (or the operator) writes its commands to."""
        return f"{self.root}:in:{sender}"

    def sender_of(self, commands_key: str) -> str:
        """The sender a command stream belongs to (the inverse of `commands`)."""
        return commands_key.removeprefix(f"{self.root}:in:")

    def reports(self, participant: str) -> str:
        return f"{self.root}:out:{participant}"

    def depth(self, instrument: str) -> str:
        return f"{self.root}:md:depth:{instrument}"

    def pub_instrument(self, instrument: str) -> str:
        return f"{self.root}:pub:instrument:{instrument}"

    def bell(self, reader: str) -> str:
        return f"{self.root}:log:bell:{reader}"

    def index(self, entry_type: str) -> str:
        return f"{self.root}:log:index:{entry_type}"

    def lease(self, process: str) -> str:
        return f"{self.root}:lease:{process}"

    def snapshots(self, core: str) -> str:
        return f"{self.root}:snapshots:{core}"

    def spec(self, name: str) -> KeySpec:
        return next(spec for spec in SCHEMA if spec.name == name)

    def __repr__(self) -> str:
        return f"Keys({self.prefix!r})"
