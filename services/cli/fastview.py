"""Operator views from the services' newest snapshots plus the log's tail, instead of a whole replay.

Each core restores its own newest snapshot (sealed by its service and tied to this log by the hash of the
entry it covers: SnapshotStore.load refuses any other) and then folds only the entries after it, so every
core ends at the same head, exactly where a full replay would leave it. The chain is checked from the
oldest snapshot's entry on. What a snapshot does not hold (the log's running totals: deposits, issuance,
counts by type) is not in such a state: `partial` says so, and the summary and conservation checks replay
the whole log instead.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from services.cli.history import history
from services.cli.readmodel import ExchangeState, replay_entries, replay_log
from services.runtime.processor import Processor
from services.runtime.snapshots import Snapshot, SnapshotStore
from shared.config import Settings
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import GENESIS_HASH
from shared.eventlog.port import LogReader
from shared.eventlog.verify import ChainVerifier
from shared.keyring import KeyMissing

__all__ = ["state_from_snapshots", "view_state"]

_PAGE = 5000


async def view_state(settings: Settings, redis: Redis) -> ExchangeState:
    """The state for an operator view: from snapshots when this machine holds the key that seals them
    (the operator's key ring), else by replaying the whole log."""
    try:
        sealer = settings.producer_keys()
    except KeyMissing:
        return await replay_log(history(settings, redis))
    store = SnapshotStore(redis, settings.keys, sealer)
    return await state_from_snapshots(history(settings, redis), store, producer_keys=sealer)


def _restorer(core: Processor) -> Callable[[Snapshot], None]:
    return lambda snap: core.restore(snap.state)


async def state_from_snapshots(
    event_log: LogReader, store: SnapshotStore, producer_keys: ProducerKeys | None = None
) -> ExchangeState:
    """Every core at the log's head, each from its newest valid snapshot (from seq 0 without one); with
    `producer_keys`, every entry of the tail must carry its producer's tag and come after its producer's
    previous one (as the services check them), so an entry appended with a stolen service password, or a
    copy of a genuine one, is refused, not shown."""
    state = ExchangeState()
    covered: dict[str, int] = {}
    start, start_hash = None, GENESIS_HASH
    for name, core in state.cores.items():
        snap = await store.load(name, event_log, _restorer(core))
        seq = 0 if snap is None else snap.seq
        covered[name] = seq
        if start is None or seq < start:
            start, start_hash = seq, GENESIS_HASH if snap is None else snap.head_hash
    state.seq, state.head_hash = start or 0, start_hash
    state.partial = bool(start)
    # With the keys, also what the services check besides tags: each answer answers a type its producer
    # answers, and comes after its producer's previous entry (a copy of a genuine entry is refused).
    answers = {name: core.answers_to for name, core in state.cores.items()} if producer_keys else None
    verifier = ChainVerifier(start_seq=state.seq + 1, prev_hash=state.head_hash, producer_keys=producer_keys,
                             answers=answers)  # fmt: skip
    while True:
        entries = await event_log.read(state.seq, _PAGE)
        replay_entries(entries, state=state, verifier=verifier, covered=covered)
        if len(entries) < _PAGE:
            return state
