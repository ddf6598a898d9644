"""`greenex log repair-head`: take out what was written at the stream's end past the append script.

Only the append script appends entries, each at stream id `<seq>-0`, linked to the one before. An XADD
by hand (a test, a mistake, an attacker holding a log writer's password) after the last entry breaks
every later append: the script refuses a head that is not `<seq>-0` with a link (`BADHEAD`), and after an
XDEL of it the stream's last id stays where the bad entry put it, so the script's next XADD is refused as
not greater than it. Repair: delete every entry after the last good one and set the stream's last id
back to that entry's (XSETID). Entries before the last good one are never touched here: a bad entry
inside the chain stops the services naming its seq and is restored from a backup (docs/operations.md).
"""

from __future__ import annotations

from typing import NamedTuple, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import decode_stream_entry
from shared.eventlog.verify import recompute_hash

__all__ = ["HeadRepair", "inspect_head", "plan_repair", "repair_head"]

_LOOK_BACK = 1000  # rows read back from the end: more junk than this is not a slip, restore a backup


class HeadRepair(NamedTuple):
    good_id: str  # the last entry of the chain ("" for an empty chain)
    last_id: str  # the stream's last generated id now
    bad_ids: list[str]  # rows after the good entry, newest last

    @property
    def needed(self) -> bool:
        return bool(self.bad_ids) or self.last_id not in (self.good_id, "0-0")


def _entry(row: tuple[bytes, dict[bytes, bytes]]) -> Entry | None:
    """The row as a sealed entry at its own `<seq>-0` whose hash holds; None if it is not one."""
    try:
        entry = decode_stream_entry(*row)
    except (LogCorrupt, ValueError):
        return None
    return entry if recompute_hash(entry) == entry.hash else None


def plan_repair(rows: list[tuple[bytes, dict[bytes, bytes]]], last_id: str) -> HeadRepair:
    """From the stream's newest rows (oldest first): the rows after the last entry the chain reaches.

    Only a tail of rows that are not sealed entries is bad at the head. A break below well-formed
    entries (a junk row the services then appended onto) is not: those entries are real commands and
    answers, and deleting them would lose them, so that is LogCorrupt (restore from a backup)."""
    entries = [_entry(row) for row in rows]
    good = 0  # rows[:good] chain
    while good < len(rows):
        entry, before = entries[good], entries[good - 1] if good else None
        linked = entry is not None and (
            before is None or (before.seq == entry.seq - 1 and before.hash == entry.prev_hash)
        )
        if not linked:
            break
        good += 1
    if good == 0 and len(rows) == _LOOK_BACK:
        raise LogCorrupt(0, f"no good entry in the last {_LOOK_BACK} rows: restore the log from a backup")
    if any(entry is not None for entry in entries[good + 1 :]):
        seq = rows[good][0].decode()
        raise LogCorrupt(
            int(seq.partition("-")[0] or 0),
            f"the chain breaks at {seq} and sealed entries follow it: not a bad row at the head; "
            "restore the log from a backup (docs/operations.md)",
        )
    good_id = rows[good - 1][0].decode() if good else ""
    return HeadRepair(good_id, last_id, [row[0].decode() for row in rows[good:]])


async def inspect_head(redis: Redis, key: str) -> HeadRepair:
    """The newest rows and the stream's last id, read in one MULTI (an append cannot fall between)."""
    if not await redis.exists(key):
        return HeadRepair("", "0-0", [])
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xrevrange(key, count=_LOOK_BACK)
        pipe.execute_command("XINFO", "STREAM", key)
        newest, info = await pipe.execute()
    return _plan(newest, info)


def _plan(newest: object, info: object) -> HeadRepair:
    fields = dict(zip(info[::2], info[1::2], strict=True)) if isinstance(info, list) else info
    assert isinstance(fields, dict)
    last = fields.get(b"last-generated-id", fields.get("last-generated-id", b"0-0"))
    last_id = last.decode() if isinstance(last, bytes) else str(last)
    return plan_repair(cast(list[tuple[bytes, dict[bytes, bytes]]], newest)[::-1], last_id)


async def repair_head(redis: Redis, key: str, plan: HeadRepair) -> None:
    """Delete the bad rows and set the last id back, in one MULTI, only if the stream is still as it
    was inspected (WATCH): WatchError otherwise, and nothing was changed."""
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch(key)
        # Under WATCH the pipeline runs commands at once; EXEC fails if the key moves after this.
        newest = await pipe.xrevrange(key, count=_LOOK_BACK)
        if _plan(newest, await pipe.execute_command("XINFO", "STREAM", key)) != plan:
            raise WatchError("the log moved since it was inspected")
        pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py 8.1
        if plan.bad_ids:
            pipe.xdel(key, *plan.bad_ids)
        pipe.execute_command("XSETID", key, plan.good_id or "0-0")
        await pipe.execute()
