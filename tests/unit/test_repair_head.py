"""`greenex log repair-head` plans: a tail of rows that are not sealed entries goes, nothing else."""

from __future__ import annotations

import msgspec
import pytest

from services.cli.repair import plan_repair
from shared.eventlog.entry import Entry, content_digest, encode_content, link_hash
from shared.eventlog.port import LogCorrupt
from shared.eventlog.redis_log import encode_entry
from tests.unit.test_retention import sealed_log

Row = tuple[bytes, dict[bytes, bytes]]


def _row(entry: Entry) -> Row:
    return f"{entry.seq}-0".encode(), {k.encode(): v for k, v in encode_entry(entry).items()}


async def test_a_sound_head_plans_nothing() -> None:
    rows = [_row(e) for e in await sealed_log(6)]
    plan = plan_repair(rows, "6-0")
    assert (plan.good_id, plan.bad_ids, plan.needed) == ("6-0", [], False)
    assert plan_repair(rows, "99999-0").needed  # a poisoned last id alone needs XSETID


async def test_rows_written_past_the_script_at_the_head_go() -> None:
    rows = [_row(e) for e in await sealed_log(6)] + [(b"99999-0", {b"junk": b"1"}), (b"99999-1", {b"x": b""})]
    plan = plan_repair(rows, "99999-1")
    assert plan.good_id == "6-0"
    assert plan.bad_ids == ["99999-0", "99999-1"]


async def test_a_break_below_sealed_entries_is_not_repaired_here() -> None:
    """A junk row at 4 with a plausible link, then entries the append script chained onto it: those are
    real entries; deleting them would lose commands, so the repair refuses and names the break."""
    entries = await sealed_log(6)
    junk = msgspec.structs.replace(entries[3], body=b"\x81\xa1x\x01")  # its hash no longer holds
    fifth = msgspec.structs.replace(entries[4], prev_hash=junk.hash)
    fifth = msgspec.structs.replace(fifth, hash=link_hash(fifth.prev_hash, 5, _digest(fifth)))
    rows = [_row(e) for e in entries[:3]] + [_row(junk), _row(fifth)]
    with pytest.raises(LogCorrupt, match="breaks at 4-0 and sealed entries follow it"):
        plan_repair(rows, "5-0")


def _digest(entry: Entry) -> str:
    return content_digest(encode_content(entry.content()))
