"""`greenex replay`: rebuild the whole state from the log (Redis or an archive), summarize, compare live."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, cast

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from services.cli.compare import first_difference, restore_core
from services.cli.history import history
from services.cli.local import running_here
from services.cli.readmodel import Checkpoint, ExchangeState, replay_archive, replay_log
from services.cli.trust import log_verifier
from services.cli.views import print_book
from services.runtime.digests import read_digests
from services.runtime.snapshots import Snapshot, decode_record
from services.system import SYSTEM
from shared.config import Settings, cli_user, connect, load_settings
from shared.domain.values import fen_for_people
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.port import LogCorrupt
from shared.keyring import KeyMissing

__all__ = ["LiveCheck", "compare_live", "format_ns", "parse_time", "register"]

console = Console(highlight=False)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(text: str) -> int:
    """ISO 8601 to Unix ns; a time without a zone is UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def format_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds") if ns else "-"


class LiveCheck:
    """What the running services published, and the checkpoints that compare replay against it."""

    def __init__(
        self,
        live: dict[str, tuple[int, str]],
        snapshots: dict[str, Snapshot],
        stopped: frozenset[str] = frozenset(),
    ) -> None:
        self.live, self.snapshots = live, snapshots
        self.stopped = stopped  # cores whose process holds no lease: their digests are not compared
        self.replayed: dict[str, str] = {}  # core -> replayed digest at the live seq
        self.differences: dict[str, str] = {}  # core -> first difference against its newest snapshot

    @property
    def until(self) -> int:
        return max((seq for seq, _ in self.live.values()), default=0)

    def checkpoints(self) -> dict[int, Checkpoint]:
        due: dict[int, list[Checkpoint]] = {}
        for core, (seq, _) in self.live.items():
            due.setdefault(seq, []).append(partial(self._digest, core))
        for core, snap in self.snapshots.items():
            due.setdefault(snap.seq, []).append(partial(self._diff, core, snap))
        return {seq: partial(_run_all, calls) for seq, calls in due.items()}

    def _digest(self, core: str, state: ExchangeState) -> None:
        self.replayed[core] = state.core(core).digest()

    def _diff(self, core: str, snap: Snapshot, state: ExchangeState) -> None:
        try:
            found = first_difference(SYSTEM, restore_core(SYSTEM, core, snap.state), state.core(core))
        except (ValueError, AssertionError) as exc:  # a snapshot that breaks an invariant is refused
            found = f"its snapshot does not restore: {exc}"
        if found is not None:
            self.differences[core] = f"at seq {snap.seq} (its newest snapshot): {found}"

    def problems(self) -> list[str]:
        out = [f"{core}: its process is not running (no live lease)" for core in sorted(self.stopped)]
        out += [
            f"{core}: the service published no digest"
            for core in SYSTEM.core_names
            if core not in self.live and core not in self.stopped
        ]
        for core, (seq, digest) in sorted(self.live.items()):
            replayed = self.replayed.get(core)
            if replayed is None:
                out.append(f"{core}: live seq {seq} is beyond the replayed log")
            elif replayed != digest:
                detail = self.differences.get(core, "no snapshot of it shows the difference")
                out.append(
                    f"{core} differs at seq {seq}: live {digest[:16]} != replayed {replayed[:16]}; {detail}"
                )
        return out


def _run_all(calls: list[Checkpoint], state: ExchangeState) -> None:
    for call in calls:
        call(state)


async def compare_live(redis: Redis, settings: Settings) -> LiveCheck:
    """Read the services' published digests and their newest snapshots (for naming a difference)."""
    # Only a running process's digests say what is live: an exited one's stay behind in the hash.
    running = await running_here(settings, redis)  # this partition's: each runs its own processes
    stopped = frozenset(c.name for p in SYSTEM.processes if p.name not in running for c in p.cores)
    cores = set(SYSTEM.core_names) - stopped
    live = {k: v for k, v in (await read_digests(redis, settings.keys)).items() if k in cores}
    try:
        sealer: ProducerKeys | None = settings.producer_keys()
    except KeyMissing:
        sealer = None  # only to name a difference: an unsealed look is still useful
    snapshots: dict[str, Snapshot] = {}
    for core in cores:
        records = cast(list[bytes], await redis.lrange(settings.keys.snapshots(core), 0, -1))
        for record in records:
            try:
                snapshots[core] = decode_record(record, sealer)
                break
            except ValueError:
                continue
    return LiveCheck(live, snapshots, stopped)


def _progress() -> Progress:
    return Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        console=console,
        transient=True,
    )


async def _replay_redis(
    settings: Settings, until: int | None, until_ns: int | None, live: bool
) -> tuple[ExchangeState, LiveCheck | None]:
    redis = connect(settings, cli_user())
    try:
        check = await compare_live(redis, settings) if live else None
        if check is not None:
            until = check.until
        event_log = history(settings, redis)
        head, _ = await event_log.head()
        total = min(head, until) if until is not None else head
        with _progress() as progress:
            task = progress.add_task("replay", total=total, rate="")
            started = time.perf_counter()

            def tick(n: int) -> None:
                done = progress.tasks[0].completed + n
                progress.update(
                    task, advance=n, rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f}/s"
                )

            state = await replay_log(
                event_log,
                verifier=log_verifier(settings),
                until=until,
                until_ns=until_ns,
                progress=tick,
                checkpoints=check.checkpoints() if check is not None else None,
            )
        return state, check
    finally:
        await redis.aclose()


def _replay_file(
    settings: Settings, path: Path, until: int | None, until_ns: int | None, check: LiveCheck | None
) -> ExchangeState:
    if check is not None:
        until = check.until
    with _progress() as progress:
        task = progress.add_task("replay", total=until, rate="")
        return replay_archive(
            path,
            verifier=log_verifier(settings),
            aside=True,
            until=until,
            until_ns=until_ns,
            progress=lambda n: progress.update(task, advance=n),
            checkpoints=check.checkpoints() if check is not None else None,
        )


def print_replay_summary(state: ExchangeState, seconds: float) -> None:
    c = state.counts
    resting = sum(len(b.orders) for b in state.matching.engine.books.values())
    table = Table(title="Replayed state", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    rows = [
        ("log entries replayed", f"{state.seq:,} (to seq {state.seq}, logged {format_ns(state.logged_ns)})"),
        ("speed", f"{state.seq / max(seconds, 1e-9):,.0f} entries/s ({seconds:.2f} s)"),
        ("head hash", state.head_hash.hex()),
        (
            "instruments / accounts",
            f"{len(state.matching.engine.books)} / {len(state.settlement.balances())}",
        ),
        (
            "orders submitted / verified / accepted",
            f"{c.get('OrderSubmitted', 0)} / {c.get('OrderVerified', 0)} / {c.get('OrderAccepted', 0)}",
        ),
        (
            "rejected / cancelled / expired",
            f"{c.get('OrderRejected', 0)} / {c.get('OrderCancelled', 0)} / {c.get('OrderExpired', 0)}",
        ),
        ("trades / settled", f"{c.get('TradeExecuted', 0)} / {c.get('TradeSettled', 0)}"),
        ("orders resting on the books", str(resting)),
        (
            "reservations (open orders, unsettled trades)",
            f"{len(state.verification.state.orders)}, {len(state.verification.state.unsettled)}",
        ),
        ("cash deposited - withdrawn", fen_for_people(state.deposited - state.withdrawn)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for core, digest in state.core_digests().items():
        table.add_row(f"{core} digest", digest)
    console.print(table)


def print_account(state: ExchangeState, account: str) -> None:
    balances = state.settlement.balances()
    if account not in balances:
        console.print(f"[red]no account {account!r} at seq {state.seq}[/]")
        return
    cash, frozen, credits = state.verification.account(account)
    console.print(
        f"account {account}: cash {fen_for_people(balances[account])} CNY (verification sees "
        f"{fen_for_people(cash)}, frozen {fen_for_people(frozen)})"
    )
    table = Table(title=f"{account}: holdings by serial block (oldest first)")
    for col in ("instrument", "tonnes", "frozen", "serial blocks"):
        table.add_column(col, justify="right" if col in ("tonnes", "frozen") else "left")
    for symbol, blocks in sorted(state.settlement.holdings(account).items()):
        table.add_row(
            symbol,
            str(sum(b.tonnes for b in blocks)),
            str(credits.get(symbol, (0, 0))[1]),
            ", ".join(f"{b.start}-{b.end}" for b in blocks),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command()
    def replay(
        file: Annotated[Path | None, typer.Option("--file", help="Replay an exported archive.")] = None,
        until: Annotated[int | None, typer.Option("--until", help="Stop after this seq.")] = None,
        until_time: Annotated[
            str | None, typer.Option("--until-time", help="ISO time (UTC if no zone): state as logged then.")
        ] = None,
        instrument: Annotated[str | None, typer.Option("--instrument", help="Show this book.")] = None,
        account: Annotated[str | None, typer.Option("--account", help="Show this account.")] = None,
        live: Annotated[
            bool, typer.Option("--compare-live", help="Check against the running services' digests.")
        ] = False,
        redis_url: Annotated[str | None, typer.Option("--redis-url", help="Default: REDIS_URL.")] = None,
    ) -> None:
        """Rebuild books, orders, reservations, balances, holdings and trades from the log; print a digest."""
        settings = load_settings(redis_url=redis_url)
        if live and (until is not None or until_time is not None):
            raise typer.BadParameter("--compare-live replays to the seqs the services report; drop --until")
        try:
            until_ns = parse_time(until_time) if until_time is not None else None
        except ValueError:
            raise typer.BadParameter(f"{until_time!r} is not an ISO time, e.g. 2026-11-30T14:00") from None
        started = time.perf_counter()
        try:
            if file is None:
                state, check = asyncio.run(_replay_redis(settings, until, until_ns, live))
            else:
                check = asyncio.run(_live_only(settings)) if live else None
                state = _replay_file(settings, file, until, until_ns, check)
        except LogCorrupt as bad:
            typer.echo(f"BAD seq={bad.seq}: {bad.reason}; replay refused", err=True)
            raise typer.Exit(1) from bad
        print_replay_summary(state, time.perf_counter() - started)
        if instrument is not None:
            if instrument not in state.matching.engine.books:
                raise typer.BadParameter(f"no instrument {instrument} at seq {state.seq}")
            print_book(console, state, instrument)
        if account is not None:
            print_account(state, account)
        console.print(f"state digest {state.digest()}")
        if check is not None:
            problems = check.problems()
            for problem in problems:
                console.print(f"[red]LIVE MISMATCH[/] {problem}")
            if problems:
                raise typer.Exit(1)
            seqs = ", ".join(f"{core}@{seq}" for core, (seq, _) in sorted(check.live.items()))
            console.print(f"[green]live digests match[/] ({seqs})")


async def _live_only(settings: Settings) -> LiveCheck:
    redis = connect(settings, cli_user())
    try:
        return await compare_live(redis, settings)
    finally:
        await redis.aclose()
