"""`greenex log`: verify, export, import and tail the event log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from redis.exceptions import WatchError

from services.cli.repair import HeadRepair, inspect_head, repair_head
from services.cli.replay import parse_time
from services.cli.retention import Archived, ArchiveRefused, archive_log
from services.cli.trust import log_verifier
from services.system import SYSTEM
from shared.config import ADMIN, OPERATOR_USER, Settings, cli_user, connect, load_settings
from shared.eventlog.archive import export_log, import_archive, verify_archive
from shared.eventlog.auth import ProducerKeys
from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt, LogFenced
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.segments import ArchiveDir, HistoryLog
from shared.eventlog.verify import VerifyReport, verify_log
from shared.keyring import KeyMissing

__all__ = ["format_entry", "log_app"]

log_app = typer.Typer(help="Verify, export, import and tail the event log.", no_args_is_help=True)

RedisUrl = Annotated[str | None, typer.Option("--redis-url", help="Default: REDIS_URL or the settings.")]
Prefix = Annotated[
    str | None, typer.Option("--prefix", help="Key prefix of the exchange. Default: GREENEX_PREFIX.")
]


PublicKey = Annotated[
    str | None,
    typer.Option(
        "--public-key", help="The exchange's checkpoint key (hex, or a .pub file). Default: the key ring's."
    ),
]


@asynccontextmanager
async def _open_log(
    redis_url: str | None, prefix: str | None, user: str = OPERATOR_USER
) -> AsyncIterator[RedisEventLog]:
    settings = load_settings(redis_url=redis_url, prefix=prefix)
    client = connect(settings, user or cli_user())
    try:  # with the system's routes, so an import fills the index streams as appends do
        yield RedisEventLog(client, settings.keys, bells=SYSTEM.bells(settings.keys))
    finally:
        await client.aclose()


def _print_report(report: VerifyReport) -> None:
    if not report.ok:
        typer.echo(f"BAD seq={report.first_bad_seq}: {report.reason} (after {report.count} good entries)")
        raise typer.Exit(1)
    typer.echo(f"OK count={report.count} head_seq={report.head_seq} head_hash={report.head_hash}")
    typer.echo(
        "producer tags checked"
        if report.tags_checked
        else "producer tags NOT checked (no log master key here)"
    )
    if report.checkpoints:
        typer.echo(
            f"{report.checkpoints} signed checkpoints verified, "
            f"the last covering seq {report.last_checkpoint_seq}; "
            f"{report.head_seq - report.last_checkpoint_seq} entries after it are not signed yet"
        )
    else:
        typer.echo("no signed checkpoint verified (none in the log, or no public key given)")


@log_app.command()
def verify(
    file: Annotated[Path | None, typer.Option("--file", help="Verify an archive instead of Redis.")] = None,
    public_key: PublicKey = None,
    expect: Annotated[
        list[str] | None,
        typer.Option("--expect", help="SEQ:LINK of a checkpoint published elsewhere; the log must hold it."),
    ] = None,
    redis_url: RedisUrl = None,
    prefix: Prefix = None,
) -> None:
    """Check the sequence, the hash chain, every producer tag and causation, and every signed checkpoint;
    exit 1 naming the first bad seq."""
    try:
        verifier = log_verifier(load_settings(redis_url=redis_url, prefix=prefix), public_key)
        verifier.expected = dict(_published(text) for text in expect or ())
    except (ValueError, OSError) as bad:
        typer.echo(f"error: {bad}", err=True)
        raise typer.Exit(2) from None
    if file is not None:
        _print_report(verify_archive(file, verifier))
        return

    settings = load_settings(redis_url=redis_url, prefix=prefix)
    archives = ArchiveDir(settings.partition_archive_dir)

    async def run() -> VerifyReport:
        async with _open_log(redis_url, prefix) as log:
            first = await log.read(0, 1)
            if not first or first[0].seq == 1 or archives.segments():
                return await verify_log(HistoryLog(archives, log), verifier=verifier)
            # Trimmed, and the archives are elsewhere: check the stream from where it starts.
            start, link = first[0].seq, first[0].prev_hash
            typer.echo(
                f"the stream starts at seq {start} and {archives.path} holds no archive: checking from "
                f"{start}; its link to {start - 1} must be vouched for by the exchange's signed checkpoint "
                f"of {start - 1} (give GREENEX_ARCHIVE_DIR to check all)"
            )
            segment = log_verifier(settings, public_key, start_seq=start, prev_hash=link)
            segment.expected = verifier.expected
            return await verify_log(log, verifier=segment)

    try:
        report = asyncio.run(run())
    except LogCorrupt as bad:  # the archives do not join up
        report = VerifyReport(
            ok=False, count=0, head_seq=0, head_hash="", first_bad_seq=bad.seq, reason=bad.reason
        )
    _print_report(report)


def _published(text: str) -> tuple[int, bytes]:
    seq, _, link = text.partition(":")
    try:
        return int(seq), bytes.fromhex(link)
    except ValueError:
        hint = "give SEQ:LINK, the link in hex (from a LogCheckpoint)"
        raise ValueError(f"--expect {text!r}: {hint}") from None


@log_app.command()
def export(path: Path, redis_url: RedisUrl = None, prefix: Prefix = None) -> None:
    """Write the whole Redis log to an archive file."""

    async def run() -> int:
        async with _open_log(redis_url, prefix) as log:
            return await export_log(log, path)

    typer.echo(f"exported {asyncio.run(run())} entries to {path}")


@log_app.command()
def reindex(redis_url: RedisUrl = None, prefix: Prefix = None) -> None:
    """Rebuild the index streams (`log:index:<type>`) from the log, after one was damaged or deleted
    (appends of its type refused: 'ahead of the log')."""

    async def run() -> dict[str, int]:
        async with _open_log(redis_url, prefix, ADMIN) as log:  # the services' keys: admin writes them
            return await log.rebuild_indexes()

    try:
        copies = asyncio.run(run())
    except LogFenced as moved:
        typer.echo(f"error: {moved}", err=True)
        raise typer.Exit(1) from None
    for key, count in copies.items():
        typer.echo(f"{key}: {count} entries")


@log_app.command("import")
def import_(path: Path, redis_url: RedisUrl = None, prefix: Prefix = None) -> None:
    """Load an archive into an empty Redis log; producer positions are not restored."""

    async def run() -> int:
        async with _open_log(redis_url, prefix, ADMIN) as log:  # only service users and admin write the log
            head_seq, _ = await log.head()
            if head_seq:
                typer.echo(f"refused: {log.key} is not empty (head seq {head_seq})", err=True)
                raise typer.Exit(1)
            return await import_archive(log, path)

    try:
        count = asyncio.run(run())
    except LogCorrupt as bad:
        typer.echo(f"BAD seq={bad.seq}: {bad.reason}; nothing was imported", err=True)
        raise typer.Exit(1) from bad
    typer.echo(f"imported {count} entries; producer positions are not restored")


_BEFORE_HELP = "A seq, or a date / ISO time (UTC if no zone): archive what is older."
_DIR_HELP = "Where segments go. Default: GREENEX_ARCHIVE_DIR, or var/archive."


@log_app.command()
def archive(
    before: Annotated[str, typer.Option("--before", help=_BEFORE_HELP)],
    archive_dir: Annotated[Path | None, typer.Option("--dir", help=_DIR_HELP)] = None,
    redis_url: RedisUrl = None,
    prefix: Prefix = None,
) -> None:
    """Move entries older than --before out of Redis into a verified segment file, then trim the stream,
    keeping every entry a service still needs to restart (each keeps a snapshot) and the last signed
    checkpoint below the cut."""
    try:
        seq, ns = (int(before), None) if before.isascii() and before.isdigit() else (None, parse_time(before))
    except ValueError:
        hint = "e.g. 120000 or 2026-11-30"
        typer.echo(f"error: --before {before!r} is neither a seq nor a date; {hint}", err=True)
        raise typer.Exit(2) from None
    settings = load_settings(redis_url=redis_url, prefix=prefix)
    archives = ArchiveDir(archive_dir or settings.partition_archive_dir)
    seen = {"verified": 0, "archived": 0}

    def progress(what: str, n: int) -> None:
        before_n = seen[what]
        seen[what] += n
        if seen[what] // 100_000 != before_n // 100_000:
            typer.echo(f"{what} {seen[what]:,} entries", err=True)

    async def run() -> Archived:
        async with _open_log(redis_url, prefix, ADMIN) as log:  # XTRIM writes the log: admin only
            return await archive_log(
                log.redis, log, SYSTEM, archives, before=seq, before_ns=ns, sealer=_sealer(settings),
                verifier=lambda start, link: log_verifier(settings, start_seq=start, prev_hash=link),
                progress=progress,
            )  # fmt: skip

    try:
        done = asyncio.run(run())
    except ArchiveRefused as refused:
        typer.echo(f"nothing archived: {refused}", err=True)
        raise typer.Exit(1) from None
    except LogCorrupt as bad:
        typer.echo(f"BAD seq={bad.seq}: {bad.reason}; nothing was trimmed", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"archived seq {done.first}..{done.cut - 1} ({done.cut - done.first:,} entries, "
        f"{done.bytes:,} bytes) to {done.path}; the stream starts at {done.cut} (kept by {done.limited_by})"
    )


def _sealer(settings: Settings) -> ProducerKeys | None:
    try:
        return settings.producer_keys()
    except KeyMissing:
        return None


@log_app.command("repair-head")
def repair_head_command(
    yes: Annotated[bool, typer.Option("--yes", help="Delete them; without it, only list them.")] = False,
    redis_url: RedisUrl = None,
    prefix: Prefix = None,
) -> None:
    """Delete rows written after the log's last good entry by anything but the append script (appends
    fail with BADHEAD or a refused stream id) and set the stream's last id back so appends go on."""

    async def run() -> tuple[HeadRepair, bool]:
        async with _open_log(redis_url, prefix, ADMIN) as log:  # XDEL and XSETID write the log: admin
            plan = await inspect_head(log.redis, log.key)
            if plan.needed and yes:
                await repair_head(log.redis, log.key, plan)
            return plan, plan.needed and yes

    try:
        plan, repaired = asyncio.run(run())
    except LogCorrupt as bad:
        typer.echo(f"error: {bad.reason}", err=True)
        raise typer.Exit(1) from None
    except WatchError:
        typer.echo("error: the log moved during the repair; nothing was changed: run it again", err=True)
        raise typer.Exit(1) from None
    good = plan.good_id or "none (the chain is empty)"
    if not plan.needed:
        typer.echo(f"the head is sound: last entry {good}")
        return
    typer.echo(f"last good entry {good}; the stream's last id is {plan.last_id}")
    for row in plan.bad_ids:
        typer.echo(f"  bad row {row}")
    if repaired:
        typer.echo(f"deleted {len(plan.bad_ids)} rows; the last id is {plan.good_id or '0-0'} again")
    else:
        typer.echo("run again with --yes to delete them and set the last id back", err=True)
        raise typer.Exit(1)


@log_app.command()
def tail(
    from_seq: Annotated[int | None, typer.Option("--from", help="Print entries after this seq.")] = None,
    count: Annotated[int, typer.Option("--count", help="Stop after this many; 0 follows forever.")] = 0,
    redis_url: RedisUrl = None,
    prefix: Prefix = None,
) -> None:
    """Follow the log and print new entries; by default only those after the current head."""

    async def run() -> None:
        async with _open_log(redis_url, prefix) as log:
            after = (await log.head())[0] if from_seq is None else from_seq
            printed = 0
            while count == 0 or printed < count:
                limit = 1000 if count == 0 else min(1000, count - printed)
                for entry in await log.follow(after, limit, block_ms=1000):
                    typer.echo(format_entry(entry))
                    after = entry.seq
                    printed += 1

    asyncio.run(run())


def format_entry(entry: Entry) -> str:
    """One readable line: seq, type, producer, causation and the body as JSON."""
    try:
        body = msgspec.json.encode(msgspec.msgpack.decode(entry.body)).decode()
    except (msgspec.DecodeError, msgspec.EncodeError, TypeError):
        body = f"<{len(entry.body)} bytes, not msgpack: {entry.body[:32].hex()}>"
    return f"{entry.seq} {entry.type} producer={entry.producer} causation={entry.causation} {body}"
