"""`greenex status`: what an operator looks at first. Redis memory, the log's length, how far behind each
core is, who holds each process's lease, the last signed checkpoint, dead letters; exit 1 when something
needs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from services.checkpoint.due import CHECKPOINT
from services.cli.errors import read_exchange
from services.runtime.digests import read_digests
from services.system import SYSTEM
from shared.cluster import on_cluster
from shared.config import Settings, load_settings
from shared.eventlog.lease import holder_of, lease_lapsed
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.segments import ArchiveDir

__all__ = ["Facts", "problems", "register"]

console = Console()
MEMORY_WARN = 0.8  # of maxmemory: at 100 % every append fails
LAG_WARN = 10_000  # entries a core may be behind the head


@dataclass(frozen=True)
class Facts:
    """What `status` reads, in one place, so the judgement is a pure function of it."""

    used_memory: int
    max_memory: int  # 0: no limit set
    head_seq: int
    leases: dict[str, str | None]  # process -> holder (`<token> <host> <pid>`), None if none
    core_seqs: dict[str, int]  # core -> the seq of its last published digest
    last_checkpoint: int
    checkpoint_every: int
    dead_letters: int  # commands intake gave up on: each waits for the operator to drop or re-drive it
    stream_first: int = 1  # the first seq still in Redis (later after `greenex log archive`)
    archived_last: int = 0  # the last seq in the archive segments (GREENEX_ARCHIVE_DIR)
    # On Redis Cluster: the replicas in sync with the master serving the exchange's slot (None: not a
    # cluster), and how many the reports wait for (GREENEX_WAIT_REPLICAS).
    cluster_replicas: int | None = None
    wait_replicas: int = 0


def problems(facts: Facts) -> list[str]:
    """Everything an operator must act on, one line each (none: all is well)."""
    out = []
    if facts.max_memory == 0:
        out.append("Redis has no maxmemory: it would grow until the machine runs out (deploy/redis.conf)")
    elif facts.used_memory > MEMORY_WARN * facts.max_memory:
        share = facts.used_memory / facts.max_memory
        out.append(
            f"Redis uses {share:.0%} of its maxmemory: at 100 % every append fails; move the exchange to a "
            "larger Redis (docs/operations.md, 'Moving the log to a new Redis')"
        )
    for process, holder in facts.leases.items():
        if holder is None or lease_lapsed(holder):
            out.append(f"{process} is not running (no live lease)")
    for core, seq in facts.core_seqs.items():
        if facts.head_seq - seq > LAG_WARN:
            out.append(f"{core} is {facts.head_seq - seq:,} entries behind the head")
    if facts.head_seq and facts.stream_first > facts.archived_last + 1:
        out.append(
            f"entries {facts.archived_last + 1:,}..{facts.stream_first - 1:,} are in neither the stream nor "
            "the archives: the log was trimmed by hand (docs/operations.md, 'A trimmed log')"
        )
    unsigned = facts.head_seq - facts.last_checkpoint
    if unsigned > 2 * facts.checkpoint_every:
        out.append(f"{unsigned:,} entries after the last signed checkpoint (seq {facts.last_checkpoint:,})")
    if facts.cluster_replicas == 0:
        out.append(
            "the master serving the exchange's slot has no replica in sync: losing it loses the exchange "
            "(docs/architecture.md, 'Beyond one Redis')"
        )
    if facts.cluster_replicas is not None and facts.cluster_replicas < facts.wait_replicas:
        out.append(
            f"reports are held: they wait for {facts.wait_replicas} replica(s) (GREENEX_WAIT_REPLICAS), "
            f"{facts.cluster_replicas} in sync"
        )
    if facts.dead_letters:
        out.append(
            f"{facts.dead_letters:,} dead letter(s): commands intake could not process; "
            "`greenex dead-letters list` (docs/operations.md, 'Dead letters')"
        )
    return out


async def gather(redis: Redis, settings: Settings) -> Facts:
    memory: dict[str, Any] = await redis.info("memory")
    stream = RedisEventLog(redis, settings.keys)
    head_seq, _ = await stream.head()
    first = await stream.read(0, 1)
    pipe = redis.pipeline(transaction=False)
    for process in SYSTEM.processes:
        pipe.get(settings.keys.lease(process.name))
    held = cast(list[bytes | None], await pipe.execute())
    digests = await read_digests(redis, settings.keys)
    position = cast(bytes | None, await redis.hget(settings.keys.positions, CHECKPOINT))
    return Facts(
        used_memory=int(memory.get("used_memory", 0)),
        max_memory=int(memory.get("maxmemory", 0)),
        head_seq=head_seq,
        leases={p.name: h.decode() if h else None for p, h in zip(SYSTEM.processes, held, strict=True)},
        core_seqs={core: digests.get(core, (0, ""))[0] for core in SYSTEM.core_names},
        last_checkpoint=int(position[1:]) if position else 0,
        checkpoint_every=settings.checkpoint_every,
        dead_letters=int(await redis.xlen(settings.keys.dead_letters)),
        stream_first=first[0].seq if first else 1,
        archived_last=_archived(settings),
        cluster_replicas=await _replicas_in_sync(redis),
        wait_replicas=settings.wait_replicas,
    )


async def _replicas_in_sync(redis: Redis) -> int | None:
    """On a cluster node (the master serving the exchange's slot, as `redis` is placed): its replicas
    online; None on a plain Redis."""
    if not await on_cluster(redis):
        return None
    replication: dict[str, Any] = await redis.info("replication")
    return sum(1 for key, value in replication.items()
               if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")


def _archived(settings: Settings) -> int:
    try:
        return ArchiveDir(settings.partition_archive_dir).last_seq
    except LogCorrupt:
        return 0  # segments with a gap: as if none, which the trimmed-log check then names


def _table(facts: Facts) -> Table:
    table = Table(title="greenex status", show_header=False)
    table.add_column("what")
    table.add_column("value")
    limit = f"{facts.max_memory / 2**20:,.0f} MiB" if facts.max_memory else "no limit"
    table.add_row("Redis memory", f"{facts.used_memory / 2**20:,.1f} MiB of {limit}")
    table.add_row("log head", f"seq {facts.head_seq:,}")
    if facts.stream_first > 1:
        archived = f"; seq 1..{facts.archived_last:,} archived" if facts.archived_last else ""
        table.add_row("log in Redis", f"from seq {facts.stream_first:,}{archived}")
    for process, holder in facts.leases.items():
        if holder is None or lease_lapsed(holder):
            table.add_row(f"process {process}", "not running")
        else:
            host, pid = holder_of(holder)
            table.add_row(f"process {process}", f"running, pid {pid} on {host}")
    for core, seq in facts.core_seqs.items():
        table.add_row(f"core {core}", f"at seq {seq:,} ({facts.head_seq - seq:,} behind, as last published)")
    table.add_row("last signed checkpoint", f"seq {facts.last_checkpoint:,}")
    table.add_row("dead letters", f"{facts.dead_letters:,}")
    if facts.cluster_replicas is not None:
        table.add_row("Redis Cluster", f"the slot's master has {facts.cluster_replicas} replica(s) in sync")
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def status() -> None:
        """Redis memory, log length, each core's lag, who runs each process, the last checkpoint, dead
        letters; exit 1 when something needs an operator (each such thing on its own line)."""
        settings = load_settings()
        facts = read_exchange(settings, lambda redis: gather(redis, settings))
        console.print(_table(facts))
        found = problems(facts)
        for line in found:
            console.print(f"needs attention: {line}", highlight=False)
        if found:
            raise typer.Exit(1)
        console.print("all well")
