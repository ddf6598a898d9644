"""`greenex partitions`: every partition of the exchange at once (shared/partitions.py). Its instruments,
cash and tonnes, the transfers between partitions, and conservation across all of them: cash in every
partition plus the transfers in flight equals what was deposited from outside less what was withdrawn,
each credit answers exactly one debit of the same participant and amount, and no instrument trades in two
partitions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from services.cli.errors import read_exchange
from services.cli.history import history
from services.cli.readmodel import ExchangeState, replay_log
from services.cli.replay import LiveCheck, compare_live
from services.cli.trust import log_verifier
from services.cli.views import conservation_problems
from shared.config import Settings, load_settings
from shared.domain.codec import decode_event
from shared.domain.ledger import CashTransferredOut
from shared.domain.values import fen_for_people
from shared.eventlog.redis_log import RedisEventLog
from shared.partitions import TransferRef

__all__ = ["Transfer", "Partitions", "register", "partition_problems", "read_partitions"]

console = Console()
_OUT = CashTransferredOut.__name__


@dataclass(frozen=True)
class Transfer:
    ref: TransferRef
    participant: str
    amount: int  # fen
    destination: int


@dataclass
class Partitions:
    """Each partition's state as replayed, and the transfers its log granted after that replay ended
    (read last, so that a credit the destination logged meanwhile finds its debit)."""

    states: dict[int, ExchangeState]
    later_outs: dict[TransferRef, Transfer] = field(default_factory=dict)
    live: dict[int, LiveCheck] = field(default_factory=dict)  # with --compare-live: each partition's


@dataclass(frozen=True)
class Verdict:
    problems: list[str]
    in_flight: list[Transfer]
    credited_ahead: list[Transfer]  # credited in a destination replayed after its source was
    external_cash: int  # deposited from outside the exchange less withdrawn to outside, fen


def _outs(parts: Partitions) -> dict[TransferRef, Transfer]:
    return {
        TransferRef(p, seq): Transfer(TransferRef(p, seq), participant, amount, to)
        for p, state in parts.states.items()
        for seq, (participant, amount, to) in state.transfers_out.items()
    }


def partition_problems(parts: Partitions) -> Verdict:
    """Conservation across partitions (pure: what `greenex partitions` and the tests judge by)."""
    states = parts.states
    problems = [f"partition {p}: {line}" for p, st in states.items() for line in conservation_problems(st)]
    outs, credited, ahead = _outs(parts), set[TransferRef](), []
    problems += [
        f"transfer {TransferRef(p, seq)} is debited {times} times in partition {p}"
        for p, state in states.items() for seq, times in state.debited.items() if times > 1
    ]  # fmt: skip
    for p, state in states.items():
        for (source, seq), (participant, amount) in state.transfers_in.items():
            ref = TransferRef(source, seq)
            if (times := state.credited[(source, seq)]) > 1:
                problems.append(f"transfer {ref} is credited {times} times in partition {p}")
            if ref in credited:
                problems.append(f"transfer {ref} is credited in two partitions")
            credited.add(ref)
            debit = outs.get(ref)
            if debit is None and (debit := parts.later_outs.get(ref)) is not None:
                ahead.append(debit)
            if debit is None:
                problems.append(f"partition {p} credits transfer {ref}, which partition {source} never made")
            elif (debit.participant, debit.amount, debit.destination) != (participant, amount, p):
                problems.append(
                    f"transfer {ref}: debited {debit.participant} {debit.amount} fen for partition "
                    f"{debit.destination}, credited {participant} {amount} fen in partition {p}"
                )
    in_flight = [t for ref, t in sorted(outs.items()) if ref not in credited]
    external = sum(
        state.deposited - sum(a for _, a in state.transfers_in.values())
        - (state.withdrawn - sum(a for _, a, _ in state.transfers_out.values()))
        for state in states.values()
    )  # fmt: skip
    cash = sum(sum(state.settlement.balances().values()) for state in states.values())
    flying, early = sum(t.amount for t in in_flight), sum(t.amount for t in ahead)
    if cash + flying - early != external:
        problems.append(
            f"cash in every partition {cash} + in flight {flying} - credited ahead {early} != deposited "
            f"less withdrawn, across the exchange, {external} (fen)"
        )
    problems += _listed_twice(states)
    problems += [f"partition {p}: {line}" for p, check in parts.live.items() for line in check.problems()]
    return Verdict(problems, in_flight, ahead, external)


def _listed_twice(states: Mapping[int, ExchangeState]) -> list[str]:
    """An instrument trades in one partition: its book, its orders' reservations and its holdings are
    that partition's alone (moving one is not built: docs/architecture.md)."""
    where: dict[str, list[int]] = {}
    for p, state in states.items():
        for symbol in state.verification.state.instruments:
            where.setdefault(symbol, []).append(p)
    return [
        f"{symbol} is listed in partitions {', '.join(map(str, ps))}" for symbol, ps in sorted(where.items())
        if len(ps) > 1
    ]  # fmt: skip


async def read_partitions(settings: Settings, redis: Redis, *, live: bool = False) -> Partitions:
    """Every partition replayed in turn, then the transfers granted since in each (see Partitions).
    `live`: also compare each partition's running cores with its replay, as `greenex replay
    --compare-live` does for one (their published digests, read before the replay passes their seqs)."""
    each = [settings.in_partition(p) for p in range(1, settings.partitions + 1)]
    # Checked as `greenex replay` checks a log: chain, producer tags (each partition's own), causations.
    verifiers = {s.partition: log_verifier(s) for s in each}
    checks = {s.partition: await compare_live(redis, s) for s in each} if live else {}
    parts = Partitions({
        s.partition: await replay_log(
            history(s, redis), verifier=verifiers[s.partition],
            checkpoints=checks[s.partition].checkpoints() if live else None,
        )
        for s in each
    }, live=checks)  # fmt: skip
    for s in each:
        after = parts.states[s.partition].seq
        log = RedisEventLog(redis, s.keys)
        keys = verifiers[s.partition].producer_keys
        while entries := await log.read(after, 5000):
            for entry in entries:
                if entry.type != _OUT or entry.producer != "verification":
                    continue
                if keys is not None and not keys.authentic(entry):
                    continue  # not the exchange's: the next replay names it
                out = decode_event(entry.body)
                if isinstance(out, CashTransferredOut):
                    ref = TransferRef(s.partition, out.request_seq)
                    parts.later_outs[ref] = Transfer(ref, out.participant, out.amount, out.to_partition)
            after = entries[-1].seq
    return parts


def _table(parts: Partitions, settings: Settings) -> Table:
    table = Table(title=f"greenex: {settings.partitions} partition(s)")
    for column in ("partition", "keys", "log", "instruments", "cash CNY", "sent", "received", "t issued"):
        table.add_column(column, justify="left" if column in ("keys", "instruments") else "right")
    for p, state in parts.states.items():
        table.add_row(
            str(p), settings.in_partition(p).keys.root, f"{state.seq:,}",
            ", ".join(sorted(state.verification.state.instruments)) or "-",
            fen_for_people(sum(state.settlement.balances().values())),
            f"{len(state.transfers_out):,}", f"{len(state.transfers_in):,}",
            f"{sum(state.issued.values()):,}",
        )  # fmt: skip
    return table


def _cash_table(parts: Partitions, verdict: Verdict) -> Table:
    """Each participant's cash across the exchange: in each partition, in flight between them, in all."""
    table = Table(title="cash by participant (CNY)")
    for column in ("participant", *(f"partition {p}" for p in parts.states), "in flight", "total"):
        table.add_column(column, justify="left" if column == "participant" else "right")
    flying: dict[str, int] = {}
    for t in verdict.in_flight:
        flying[t.participant] = flying.get(t.participant, 0) + t.amount
    balances = {p: state.settlement.balances() for p, state in parts.states.items()}
    for who in sorted({w for b in balances.values() for w in b} | flying.keys()):
        each = [balances[p].get(who, 0) for p in parts.states]
        table.add_row(who, *map(fen_for_people, each), fen_for_people(flying.get(who, 0)),
                      fen_for_people(sum(each) + flying.get(who, 0)))  # fmt: skip
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def partitions(
        compare_live: Annotated[
            bool, typer.Option("--compare-live", help="Also compare every partition's running cores with it.")
        ] = False,
    ) -> None:
        """Every partition (GREENEX_PARTITIONS of them): instruments, cash, transfers between them, and
        conservation across the exchange; exit 1 on any problem (each on its own line)."""
        settings = load_settings()
        parts = read_exchange(settings, lambda redis: read_partitions(settings, redis, live=compare_live))
        verdict = partition_problems(parts)
        console.print(_table(parts, settings))
        console.print(_cash_table(parts, verdict))
        for t in verdict.in_flight:
            console.print(
                f"in flight: transfer {t.ref}, {t.participant} {fen_for_people(t.amount)} CNY to partition "
                f"{t.destination}", highlight=False,
            )  # fmt: skip
        for line in verdict.problems:
            console.print(f"[bold red]CONSERVATION CHECK FAILED[/]: {line}", highlight=False)
        if verdict.problems:
            raise typer.Exit(1)
        console.print(
            f"[bold green]conservation OK across {len(parts.states)} partition(s)[/]: cash in every "
            f"partition + {len(verdict.in_flight)} transfer(s) in flight = "
            f"{fen_for_people(verdict.external_cash)} CNY deposited less withdrawn; every credit answers "
            "one debit; tonnes per partition = issued there",
            highlight=False,
        )
        if compare_live:
            cores = sum(len(check.replayed) for check in parts.live.values())
            console.print(f"[bold green]live state agrees[/]: {cores} core digest(s) in {len(parts.live)} "
                          "partition(s) equal their replay")  # fmt: skip
