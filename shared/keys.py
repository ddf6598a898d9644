"""The key schema: every Redis key the exchange touches, built in this one place, with who owns it.

No other module builds a key name. Each key has one writer role (or a few) and the roles that read it;
access-control rules for each role are generated from `SCHEMA`, so the rules and the code that uses the
keys cannot drift apart, and a scale-out can put hash tags on the names here without touching callers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SCHEMA", "KeySpec", "Keys", "Role"]


class Role(enum.StrEnum):
    """Who touches Redis: each service process, the operator's CLI, a participant, the public."""

    INTAKE = "intake"
    VERIFICATION = "verification"  # also hosts the registry core
    MATCHING = "matching"
    SETTLEMENT = "settlement"
    OPERATOR = "operator"
    PARTICIPANT = "participant"  # only its own `{participant}` keys
    PUBLIC = "public"


_FOLLOWERS = (Role.VERIFICATION, Role.MATCHING, Role.SETTLEMENT)
_SERVICES = (Role.INTAKE, *_FOLLOWERS)


@dataclass(frozen=True)
class KeySpec:
    """One key (or family of keys): its name under the prefix, its Redis type, writers and readers."""

    name: str  # under `<prefix>:`; `{x}` marks a variable part
    kind: str  # Redis type: stream, hash, string, list
    writers: tuple[Role, ...]
    readers: tuple[Role, ...]
    meaning: str

    def pattern(self, prefix: str) -> str:
        """A glob matching every key of this family (`{x}` parts become `*`)."""
        head, _, _ = self.name.partition("{")
        return f"{prefix}:{head}*" if "{" in self.name else f"{prefix}:{self.name}"


SCHEMA: tuple[KeySpec, ...] = (
    KeySpec("in", "stream", (Role.PARTICIPANT, Role.OPERATOR), (Role.INTAKE,),
            "signed client and operator commands; intake reads them through its consumer group"),
    KeySpec("out:{participant}", "stream", (Role.INTAKE,), (Role.PARTICIPANT, Role.OPERATOR),
            "one participant's execution, settlement, cash and registry reports"),
    KeySpec("md:trades", "stream", (Role.INTAKE,), (Role.PUBLIC, Role.PARTICIPANT, Role.OPERATOR),
            "the public trade tape"),
    KeySpec("md:depth:{instrument}", "string", (Role.MATCHING,),
            (Role.PUBLIC, Role.PARTICIPANT, Role.OPERATOR), "one book's L2 view as JSON, overwritten whole"),
    KeySpec("log", "stream", _SERVICES, (*_SERVICES, Role.OPERATOR),
            "the event log, the single source of truth; appended only by the append script"),
    KeySpec("log:positions", "hash", _SERVICES, (*_SERVICES, Role.OPERATOR),
            "each producer's last answered input, written by the append script with its batch"),
    KeySpec("log:bell:{reader}", "stream", _SERVICES, _SERVICES,
            "a reader's wake-up bell (MAXLEN 1), rung by the append script for the types it answers"),
    KeySpec("reports:cursor", "string", (Role.INTAKE,), (Role.INTAKE, Role.OPERATOR),
            "the last log seq whose reports were written"),
    KeySpec("digests", "hash", _FOLLOWERS, (Role.OPERATOR,),
            "each follower core's `<seq>:<state digest>`, for replay --compare-live"),
    KeySpec("snapshots:{core}", "list", _FOLLOWERS, (*_FOLLOWERS, Role.OPERATOR),
            "a core's newest snapshots, checksummed and tied to the log by hash"),
)  # fmt: skip


class Keys:
    """The names of one exchange's keys; `prefix` separates exchanges sharing a Redis."""

    def __init__(self, prefix: str = "greenex") -> None:
        if not prefix or any(c in prefix for c in " *?[]{}"):
            raise ValueError(f"a key prefix must be non-empty without spaces or glob characters: {prefix!r}")
        self.prefix = prefix
        self.commands = f"{prefix}:in"
        self.trades = f"{prefix}:md:trades"
        self.log = f"{prefix}:log"
        self.positions = f"{prefix}:log:positions"
        self.report_cursor = f"{prefix}:reports:cursor"
        self.digests = f"{prefix}:digests"
        self.everything = f"{prefix}:*"  # a SCAN pattern over every key of this exchange

    def reports(self, participant: str) -> str:
        return f"{self.prefix}:out:{participant}"

    def depth(self, instrument: str) -> str:
        return f"{self.prefix}:md:depth:{instrument}"

    def bell(self, reader: str) -> str:
        return f"{self.prefix}:log:bell:{reader}"

    def snapshots(self, core: str) -> str:
        return f"{self.prefix}:snapshots:{core}"

    def __repr__(self) -> str:
        return f"Keys({self.prefix!r})"
