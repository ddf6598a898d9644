"""What the exchange decided about one command, read from the log: the CLI waits for it before it says
"accepted" (an intake entry the cores then refuse was not accepted).

A command's fate is in the log in two steps: intake's entries for it (event ids `<sender>/<client order
id>/<n>`: its events, or a CommandRejected), then each core's answers to those entries (causation
`log:<seq>`), e.g. verification's WithdrawalRejected for a withdrawal beyond the balance. The decision is
complete once every core that answers an entry's type has answered it, or has folded past it without an
answer (its published digest is at or beyond it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from services.runtime.digests import read_digests
from shared.domain.codec import decode_event
from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import RedisEventLog
from shared.keys import Keys

__all__ = ["Decision", "wait_for_decision"]


@dataclass
class Decision:
    """Intake's entries for the command and the cores' answers to them, in log order."""

    entries: list[Entry] = field(default_factory=list)
    answers: list[Entry] = field(default_factory=list)

    @property
    def rejection(self) -> Entry | None:
        """The first refusal (intake's CommandRejected, or a core's ...Rejected), if any."""
        return next((e for e in [*self.entries, *self.answers] if e.type.endswith("Rejected")), None)

    def reason(self) -> tuple[str, str]:
        """(code, text) of the refusal."""
        assert self.rejection is not None
        event: Any = decode_event(self.rejection.body)
        return str(getattr(event, "reason", "")), str(getattr(event, "text", ""))

    def summary(self) -> str:
        """What it became, e.g. `WithdrawalRequested seq 41 -> CashWithdrawn seq 42`."""
        made = ", ".join(f"{e.type} seq {e.seq}" for e in self.entries)
        answered = ", ".join(f"{e.type} seq {e.seq}" for e in self.answers)
        return f"{made} -> {answered}" if answered else made


async def wait_for_decision(
    redis: Redis,
    keys: Keys,
    sender: str,
    client_order_id: str,
    after_seq: int,
    answers: Mapping[str, frozenset[str]],
    timeout: float,
) -> Decision:
    """Follow the log from `after_seq` until the command's decision is complete; TimeoutError if not
    within `timeout` (the services may be down: the command may still be decided later)."""
    log = RedisEventLog(redis, keys)
    prefix = f"{sender}/{client_order_id}/"
    decision = Decision()
    waiting: dict[int, set[str]] = {}  # intake entry seq -> cores yet to answer or pass it
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    after = after_seq
    passed: tuple[dict[str, tuple[int, str]], int] | None = None  # (digests, the head read after them)
    while loop.time() < deadline:
        for entry in await log.follow(after, 1000, block_ms=200):
            after = entry.seq
            if entry.producer == "intake" and entry.event_id.startswith(prefix):
                decision.entries.append(entry)
                waiting[entry.seq] = {core for core, types in answers.items() if entry.type in types}
            elif entry.causation.startswith("log:") and entry.producer in answers:
                cause = int(entry.causation[4:]) if entry.causation[4:].isdigit() else 0
                if cause in waiting:
                    decision.answers.append(entry)
                    waiting[cause].discard(entry.producer)
        if decision.entries and any(waiting.values()):
            # A core that folded an entry without answering it is done with it: its digest is past it.
            # A digest is published only once its answers are in the log, so they are seen first by
            # reading on to the head as it was when the digests were read.
            if passed is None:
                passed = (await read_digests(redis, keys), (await log.head())[0])
            if after >= passed[1]:
                for seq, cores in waiting.items():
                    cores -= {core for core in cores if passed[0].get(core, (0, ""))[0] >= seq}
                passed = None
        if decision.entries and not any(waiting.values()):
            return decision
    raise TimeoutError
