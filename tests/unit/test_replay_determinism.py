"""Replay determinism: the same commands through the core into a log give byte-identical logs."""

from __future__ import annotations

from pathlib import Path

from loadtests.order_stream import BENCH_INSTRUMENTS, generate_commands
from services.cli.readmodel import replay_entries
from services.matching.engine import MatchingEngine
from shared.domain.codec import encode_event, event_type
from shared.eventlog.archive import write_archive
from shared.eventlog.entry import Entry, NewEntry
from shared.eventlog.memory import InMemoryEventLog
from tests.support import FakeClock
from tests.unit.registry_world import DRONE, world


async def record(seed: int, count: int, path: Path) -> bytes:
    """Run `count` seeded commands through a fresh engine, log every event, return the archive bytes."""
    engine = MatchingEngine(BENCH_INSTRUMENTS)
    log = InMemoryEventLog(clock=FakeClock())
    for n, command in enumerate(generate_commands(count, seed)):
        events = engine.decide(command)
        await log.append(
            "matching",
            [
                NewEntry(
                    event_id=f"matching:{n}:{i}",
                    causation=f"cmd:{n}",
                    type=event_type(e),
                    event_ns=1_000_000 * n,
                    body=encode_event(e),
                )
                for i, e in enumerate(events)
            ],
            position=f"L{n:020d}",
        )
    write_archive(path, await log.read(0, 10**9))
    return path.read_bytes()


async def test_same_commands_give_byte_identical_logs(tmp_path: Path) -> None:
    """Two runs over one seeded stream produce the same bytes, hashes included; another seed differs."""
    first = await record(11, 3000, tmp_path / "a.log")
    second = await record(11, 3000, tmp_path / "b.log")
    other = await record(12, 3000, tmp_path / "c.log")
    assert len(first) > 100_000
    assert first == second
    assert first != other


async def _registry_session() -> tuple[list[bytes], dict[str, str], list[Entry]]:
    """Every new registry fact in one deterministic session: a published table, a cut-off, selected
    retirements with purposes, a label, a claim, a recalculation-free relabel that supersedes it, a
    refused selection and the claim rules."""
    w = await world()
    await w.drone()
    await w.act("drones", "declare_cutoff", product=DRONE, stage="use",
                justification="charging covered by the customer's own inventory")  # fmt: skip
    label = await w.label()
    await w.op("set_claim_rules", max_vintage_age_years=6, label_validity_days=400)
    cert = await w.retire_for(1568)
    await w.claim(str(label.label_id), 5000, [cert])
    await w.retire("forest", 5, purpose="voluntary", serials=[[3001, 3005]])
    await w.retire("forest", 5, purpose="voluntary", serials=[[99_000, 99_004]])  # refused: not held
    await w.act("drones", "record_activity", product=DRONE, stage="materials", factor="steel_crude",
                amount="10")  # fmt: skip
    await w.label()
    entries = await w.ex.log.read(0, 10**9)
    live = {f.processor.name: f.processor.digest() for f in w.ex.followers}
    # Participants' sealed keys are sealed under a key made for each harness, so those bodies differ.
    return [e.type.encode() + e.body for e in entries if e.type != "ParticipantRegistered"], live, entries


async def test_registry_sessions_replay_byte_for_byte() -> None:
    """The same registry commands give the same log (every body but the sealed keys), and a replay of that
    log rebuilds every core to the digest the live cores reached."""
    bodies, live, entries = await _registry_session()
    again, _, _ = await _registry_session()
    assert bodies == again
    types = {e.type for e in entries}
    assert {"FactorTablePublished", "CutOffDeclared", "ClaimRulesSet", "NeutralityClaimed", "LabelIssued",
            "RetirementRejected", "CreditsRetired"} <= types  # fmt: skip
    replayed = replay_entries(entries).core_digests()
    assert {name: replayed[name] for name in live if name in replayed} == {
        name: digest for name, digest in live.items() if name in replayed
    }
    assert "registry" in replayed
