"""Checking an archive in a second process while this one folds it.

With producer tags, causations, freshness and checkpoints, checking an entry costs about as much as
folding it (loadtests/RESULTS.md, "Replay"), and both are pure Python: one process doing both replays at
~65k entries/s, two processes reading the same file side by side at the speed of the slower one. The
fold runs unchecked; its result is only returned once the checker has passed every entry it folded, so a
caller never sees a state built from an entry that fails its checks (LogCorrupt names the first one, as a
serial replay would).

The checker is a plain `python -m services.cli.verify_aside` given its verifier on stdin (it holds the
log master key: a pipe to our own child, never argv or the environment). Not multiprocessing's spawn,
which would re-import the caller's main module (the whole CLI, ~0.5 s), nor fork, which would copy the
progress bar's thread's locks.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

import msgspec

from shared.eventlog.archive import iter_archive
from shared.eventlog.port import LogCorrupt
from shared.eventlog.verify import ChainVerifier, VerifyReport

__all__ = ["folded_while_verified"]

T = TypeVar("T")


def folded_while_verified(
    path: Path, verifier: ChainVerifier, until: int | None, until_ns: int | None, fold: Callable[[], T]
) -> T:
    """`fold()`'s result once `verifier` (in a child process) has checked every entry of the archive at
    `path` that the fold took (up to seq `until`, or the last logged by `until_ns`); LogCorrupt if any of
    them fails, even when the fold itself failed on it first."""
    child = subprocess.Popen(
        [sys.executable, "-m", "services.cli.verify_aside"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    arguments, verdict = child.stdin, child.stdout
    if arguments is None or verdict is None:
        raise RuntimeError("the archive's checker has no pipes")
    try:
        with arguments:
            arguments.write(pickle.dumps((str(path), verifier, until, until_ns)))
        try:
            result = fold()
        except Exception:
            _raise_if_corrupt(_verdict(child, verdict))
            raise
        _raise_if_corrupt(_verdict(child, verdict))
        return result
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        verdict.close()


def _verdict(child: subprocess.Popen[bytes], verdict: IO[bytes]) -> VerifyReport:
    raw = verdict.read()
    if child.wait() != 0 or not raw:
        raise RuntimeError(f"the archive's checker failed (exit code {child.returncode})")
    return msgspec.msgpack.decode(raw, type=VerifyReport)


def _raise_if_corrupt(report: VerifyReport) -> None:
    if not report.ok:
        raise LogCorrupt(report.first_bad_seq or report.head_seq + 1, report.reason)


def check(path: str, verifier: ChainVerifier, until: int | None, until_ns: int | None) -> VerifyReport:
    """The child's work: the entries a replay with the same stop would fold, each checked."""
    try:
        for entry in iter_archive(path):
            if until is not None and entry.seq > until:
                break
            if until_ns is not None and entry.logged_ns > until_ns:
                break
            verifier.check(entry)
    except LogCorrupt as bad:
        return verifier.report(bad)
    return verifier.report()


if __name__ == "__main__":
    # Our own parent's pickle, read from a pipe only it holds: not input anyone else can shape.
    arguments = pickle.loads(sys.stdin.buffer.read())  # noqa: S301
    sys.stdout.buffer.write(msgspec.msgpack.encode(check(*arguments)))
