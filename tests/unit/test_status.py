"""`greenex status`'s judgement: what needs an operator, from what it read."""

from __future__ import annotations

import os
import socket

from services.cli.status import Facts, problems

ALIVE = f"t {socket.gethostname()} {os.getpid()}"  # this very process
GIB = 2**30


def facts(**changes: object) -> Facts:
    base: dict[str, object] = {
        "used_memory": 1 * GIB, "max_memory": 8 * GIB, "head_seq": 50_000,
        "leases": {"intake": ALIVE, "matching": ALIVE}, "core_seqs": {"matching": 49_990},
        "last_checkpoint": 40_000, "checkpoint_every": 10_000, "dead_letters": 0,
    }  # fmt: skip
    return Facts(**{**base, **changes})  # type: ignore[arg-type]


def test_all_well_is_silent() -> None:
    assert problems(facts()) == []


def test_each_thing_that_needs_an_operator_is_one_line() -> None:
    gone = f"t {socket.gethostname()} 999999999"  # a pid no process has
    found = problems(facts(
        used_memory=7 * GIB, leases={"intake": None, "matching": gone}, core_seqs={"matching": 30_000},
        last_checkpoint=20_000, dead_letters=2,
    ))  # fmt: skip
    assert found == [
        "Redis uses 88% of its maxmemory: at 100 % every append fails; move the exchange to a larger Redis "
        "(docs/operations.md, 'Moving the log to a new Redis')",
        "intake is not running (no live lease)",
        "matching is not running (no live lease)",
        "matching is 20,000 entries behind the head",
        "30,000 entries after the last signed checkpoint (seq 20,000)",
        "2 dead letter(s): commands intake could not process; `greenex dead-letters list` "
        "(docs/operations.md, 'Dead letters')",
    ]
    assert problems(facts(max_memory=0))[0].startswith("Redis has no maxmemory")


def test_a_log_trimmed_past_its_archives_needs_an_operator_and_an_archived_one_does_not() -> None:
    assert problems(facts(stream_first=30_001, archived_last=30_000)) == []
    assert problems(facts(stream_first=30_001, archived_last=20_000)) == [
        "entries 20,001..30,000 are in neither the stream nor the archives: the log was trimmed by hand "
        "(docs/operations.md, 'A trimmed log')"
    ]



def test_on_a_cluster_a_master_without_replicas_or_held_reports_need_an_operator() -> None:
    assert problems(facts(cluster_replicas=None, wait_replicas=1)) == []  # a plain Redis: nothing to say
    assert problems(facts(cluster_replicas=1, wait_replicas=1)) == []
    assert problems(facts(cluster_replicas=0, wait_replicas=1)) == [
        "the master serving the exchange's slot has no replica in sync: losing it loses the exchange "
        "(docs/architecture.md, 'Beyond one Redis')",
        "reports are held: they wait for 1 replica(s) (GREENEX_WAIT_REPLICAS), 0 in sync",
    ]
