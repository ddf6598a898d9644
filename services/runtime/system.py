"""The shape of a system map: which cores exist, which process hosts each, what wakes each reader.

The map itself (services/system.py) is one instance of `System`; everything that needs to know the
exchange's parts reads it: the process entry point, the supervisor, the Procfile and compose file, the
wake-up bells, replay, `--compare-live` and the in-process harness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from services.runtime.processor import Processor
from shared.eventlog.redis_log import Bells
from shared.keys import Keys

if TYPE_CHECKING:
    from faststream import FastStream

    from shared.config import Settings

__all__ = ["Core", "Explain", "Process", "ProcessBuilder", "System"]

# Names the first difference between a live core and the same core replayed, for an operator to read.
Explain = Callable[[Any, Any], "str | None"]
ProcessBuilder = Callable[["Settings", "System", "Process"], "FastStream"]


def _no_detail(_live: Any, _replayed: Any) -> str | None:
    return None


@dataclass(frozen=True)
class Core:
    """A log-following core: the producer name its answers carry, and how to make an empty one."""

    name: str
    make: Callable[[], Processor]
    explain: Explain = _no_detail

    @cached_property
    def answers_to(self) -> frozenset[str]:
        return self.make().answers_to


@dataclass(frozen=True)
class Process:
    """One OS process: what builds it and the cores it hosts. The first core reads the log and feeds
    the others the same entries; each keeps its own position, snapshots and digest.

    `wakes_on`: entry types that wake this process besides its cores' answers (intake's reports).
    `indexed`: entry types it follows in other partitions' logs, through the index stream of each type
    that every writer's append keeps (`log:index:<type>`), not by reading the whole log.
    `keeps`: snapshots it keeps besides its cores' (intake's own and its report publisher's).
    `roles`: its Redis user's roles (shared/keys.Role values), when not the default of its kind.
    Every process holds its lease (one live copy; `greenex status` and the supervisors see who runs it),
    the web app too, though it appends nothing."""

    name: str
    build: ProcessBuilder
    cores: tuple[Core, ...] = ()
    wakes_on: frozenset[str] = frozenset()
    indexed: frozenset[str] = frozenset()
    keeps: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """What the Procfile runs: `python -m services <name>`."""
        return f"services {self.name}"

    @cached_property
    def bell_types(self) -> frozenset[str]:
        """The entry types whose append rings this process's bell."""
        return frozenset().union(self.wakes_on, *(core.answers_to for core in self.cores))


@dataclass(frozen=True)
class System:
    processes: tuple[Process, ...]
    _by_name: dict[str, Process] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for what, names in (("process", [p.name for p in self.processes]), ("core", list(self.core_names))):
            if len(set(names)) != len(names):
                raise ValueError(f"{what} names must be unique: {names}")
        object.__setattr__(self, "_by_name", {p.name: p for p in self.processes})

    @property
    def cores(self) -> tuple[Core, ...]:
        """Every follower core, in start order."""
        return tuple(core for process in self.processes for core in process.cores)

    @property
    def core_names(self) -> tuple[str, ...]:
        return tuple(core.name for core in self.cores)

    def core(self, name: str) -> Core:
        for core in self.cores:
            if core.name == name:
                return core
        raise KeyError(name)

    def process(self, name: str) -> Process:
        return self._by_name[name]

    def host_of(self, core: str) -> Process:
        """The process hosting a core."""
        return next(p for p in self.processes if any(c.name == core for c in p.cores))

    def bells(self, keys: Keys) -> Bells:
        """The routes every writer's append takes: each process's bell rings for its bell types, and
        the types some process follows from elsewhere go to their index streams."""
        indexed = frozenset().union(*(p.indexed for p in self.processes))
        return Bells(keys, {p.name: p.bell_types for p in self.processes if p.bell_types}, indexed)
