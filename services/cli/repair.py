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

from typing import Any, NamedTuple, cast

from redis.asyncio import Redis

from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import decode_stream_entry
from shared.eventlog.verify import recompute_hash

__all__ = ["HeadRepair", "inspect_head", "repair_head"]

_LOOK_BACK = 1000  # rows read back from the end: more junk than this is not a slip, restore a backup


class HeadRepair(NamedTuple):
    good_id: str  # the last entry of the chain ("" for an empty chain)
    last_id: str  # the stream's last generated id now
    bad_ids: list[str]  # rows after the good entry, newest last

    @property
    def needed(self) -> bool:
        return bool(self.bad_ids) or self.last_id not in (self.good_id, "0-0")


def _good(row_id: bytes, fields: dict[bytes, bytes], before: tuple[bytes, dict[bytes, bytes]] | None) -> bool:
    """Whether a row is a sealed entry at its own `<seq>-0` that links to the row before it."""
    try:
        entry = decode_stream_entry(row_id, fields)
        if recompute_hash(entry) != entry.hash:
            return False
        if before is None:
            return True
        previous = decode_stream_entry(*before)
    except (LogCorrupt, ValueError):
        return False
    return previous.seq == entry.seq - 1 and previous.hash == entry.prev_hash


async def inspect_head(redis: Redis, key: str) -> HeadRepair:
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrevrange(key, count=_LOOK_BACK))
    info: dict[str, Any] = await redis.xinfo_stream(key) if await redis.exists(key) else {}
    last = info.get("last-generated-id", b"0-0")
    last_id = last.decode() if isinstance(last, bytes) else str(last)
    rows.reverse()  # oldest first
    bad: list[str] = []
    for index in range(len(rows) - 1, -1, -1):
        before = rows[index - 1] if index > 0 else None
        if _good(*rows[index], before):
            return HeadRepair(rows[index][0].decode(), last_id, bad[::-1])
        bad.append(rows[index][0].decode())
    if len(rows) == _LOOK_BACK:
        raise LogCorrupt(0, f"no good entry in the last {_LOOK_BACK} rows: restore the log from a backup")
    return HeadRepair("", last_id, bad[::-1])


async def repair_head(redis: Redis, key: str, plan: HeadRepair) -> None:
    """Delete the bad rows and set the last id back, in one MULTI (nothing can append in between)."""
    async with redis.pipeline(transaction=True) as pipe:
        if plan.bad_ids:
            pipe.xdel(key, *plan.bad_ids)
        pipe.execute_command("XSETID", key, plan.good_id or "0-0")
        await pipe.execute()
