"""Checking an archive in a second process while this one folds it.

With producer tags, causations and checkpoints, checking an entry costs about as much as folding it
(loadtests/RESULTS.md, "Replay"), and both are pure Python: one process doing both replays at ~75k
entries/s, two processes reading the same file side by side at the speed of the slower one. The fold
runs unchecked; its result is only returned once the checker has passed every entry it folded, so a
caller never sees a state built from an entry that fails its checks (LogCorrupt names the first one,
as a serial replay would).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

import msgspec

from shared.eventlog.archive import iter_archive
from shared.eventlog.entry import Entry
from shared.eventlog.port import LogCorrupt
from shared.eventlog.verify import ChainVerifier, VerifyReport

__all__ = ["folded_while_verified"]

T = TypeVar("T")
# spawn, not fork: the CLI's progress bar runs a thread, and a forked child would inherit its locks.
_CONTEXT = multiprocessing.get_context("spawn")


def folded_while_verified(
    path: Path, verifier: ChainVerifier, stopped: Callable[[Entry], bool], fold: Callable[[], T]
) -> T:
    """`fold()`'s result once `verifier` (in a child process) has checked every entry of the archive at
    `path` up to the first one `stopped` names; LogCorrupt if any of them fails, even when the fold
    itself failed on it first."""
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(target=_verify, args=(path, verifier, stopped, sender), daemon=True)
    child.start()
    sender.close()
    try:
        try:
            result = fold()
        except Exception:
            _raise_if_corrupt(_verdict(receiver, child))
            raise
        _raise_if_corrupt(_verdict(receiver, child))
        return result
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()


def _verify(path: Path, verifier: ChainVerifier, stopped: Callable[[Entry], bool], out: Connection) -> None:
    try:
        for entry in iter_archive(path):
            if stopped(entry):
                break
            verifier.check(entry)
        report = verifier.report()
    except LogCorrupt as bad:
        report = verifier.report(bad)
    out.send_bytes(msgspec.msgpack.encode(report))
    out.close()


def _verdict(receiver: Connection, child: multiprocessing.process.BaseProcess) -> VerifyReport:
    try:
        raw = receiver.recv_bytes()
    except EOFError:
        child.join()
        raise RuntimeError(f"the archive's checker died (exit code {child.exitcode})") from None
    return msgspec.msgpack.decode(raw, type=VerifyReport)


def _raise_if_corrupt(report: VerifyReport) -> None:
    if not report.ok:
        raise LogCorrupt(report.first_bad_seq or report.head_seq + 1, report.reason)
