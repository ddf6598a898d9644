"""Log verification: gapless seq, prev_hash links, recomputed hashes, producer tags and causations.

Constant memory but for one byte per entry when causations are checked against the types they answer.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Mapping
from typing import Protocol

import msgspec

from shared.eventlog.auth import ProducerKeys
from shared.eventlog.checkpoints import checkpoint_in, checkpoint_problem
from shared.eventlog.entry import GENESIS_HASH, Entry, content_digest, encode_content, link_hash
from shared.eventlog.freshness import Freshness
from shared.eventlog.port import LogCorrupt
from shared.partitions import transfer_of_causation, transfer_producer

CHECKPOINT_LOOKBACK = 1_000_000  # a checkpoint is appended within this many entries of the seq it signs
_HEX_LINK = re.compile(r"[0-9a-f]{40}")

__all__ = [
    "CHECKPOINT_LOOKBACK",
    "ChainVerifier",
    "PagedReader",
    "VerifyReport",
    "recompute_hash",
    "unvouched",
    "verify_entries",
    "verify_log",
]


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    count: int  # entries checked and found good before the first bad one
    head_seq: int  # the last good entry
    head_hash: str  # hex of the last good entry's hash
    first_bad_seq: int | None = None
    reason: str = ""
    tags_checked: bool = False  # producer tags verified with the log master key
    checkpoints: int = 0  # signed checkpoints verified with the exchange's public key
    last_checkpoint_seq: int = 0


def unvouched(first_seq: int) -> str:
    """Why a stream starting at `first_seq` without a signed checkpoint of the entry before it is refused."""
    return (
        f"the stream starts at seq {first_seq} and holds no signed checkpoint of seq {first_seq - 1}: it was "
        "trimmed by something other than `greenex log archive` (docs/operations.md, 'A trimmed log')"
    )


def recompute_hash(entry: Entry) -> bytes:
    return link_hash(entry.prev_hash, entry.seq, content_digest(encode_content(entry.content())))


class ChainVerifier:
    """Checks entries one at a time, so a log or archive of any size verifies without holding it.

    With `producer_keys` it checks every entry's producer tag (an entry nobody with the service keys
    wrote is named); with `answers` (producer -> the entry types it answers, from the system map) it
    checks that an answer's causation `log:<n>` names an earlier entry of a type its producer answers,
    and that every entry comes after its producer's (or sender's) previous one (freshness.py: a copy of
    a genuine entry is named).
    """

    def __init__(
        self,
        *,
        start_seq: int = 1,
        prev_hash: bytes = GENESIS_HASH,
        producer_keys: ProducerKeys | None = None,
        answers: Mapping[str, frozenset[str]] | None = None,
        checkpoint_key: bytes | None = None,
        expected: Mapping[int, bytes] | None = None,
        partition: int | None = None,
    ) -> None:
        self.count = 0
        # Links published outside the log (seq -> link): the log must hold each, so one cut short
        # before a published checkpoint is named too.
        self.expected = dict(expected or {})
        self.checkpoint_key = checkpoint_key  # with it, every LogCheckpoint is checked against the log
        self.partition = partition  # with it, every checkpoint must name this partition
        self.checkpoints = 0
        self.last_checkpoint_seq = 0
        # Recent entries' links, for the checkpoints that name them; a segment's starts with the link it
        # continues, so the checkpoint of the entry just before it (where a trimmed log starts) verifies.
        self._links: dict[int, bytes] = {start_seq - 1: prev_hash} if start_seq > 1 else {}
        self.head_seq = start_seq - 1
        self.head_hash = prev_hash
        self.producer_keys = producer_keys
        self.answers = answers
        self._first_seq = start_seq
        self._type_codes: dict[str, int] = {}
        self._type_names: list[str] = []
        self._types = array("B")  # the type of every entry checked, by code, for causation checks
        self.freshness = Freshness()
        # A segment (a trimmed stream) is vouched for by a signed checkpoint of the entry before it, which
        # `greenex log archive` always leaves in the stream; anything else trimmed it.
        self.start_vouched = start_seq == 1

    def check(self, entry: Entry) -> None:
        """Accept the next entry or raise LogCorrupt naming the first bad seq."""
        expected = self.head_seq + 1
        if entry.seq != expected:
            # Name the seq that should be here: a gap, a duplicate and a reorder all break it first.
            raise LogCorrupt(expected, f"sequence gap: expected seq {expected}, found {entry.seq}")
        if entry.prev_hash != self.head_hash:
            raise LogCorrupt(entry.seq, "prev_hash does not link to the previous entry")
        if recompute_hash(entry) != entry.hash:
            raise LogCorrupt(entry.seq, "hash mismatch")
        if self.producer_keys is not None and not self.producer_keys.authentic(entry):
            raise LogCorrupt(
                entry.seq, f"not written by {entry.producer!r}: its producer tag does not verify"
            )
        if self.answers is not None:
            self._check_causation(entry, self.answers)
            self.freshness.check(entry)
        if self.checkpoint_key is not None:
            self._check_checkpoint(entry)
        if entry.seq in self.expected and self.expected[entry.seq] != entry.hash:
            raise LogCorrupt(entry.seq, "its link is not the one published for this seq")
        self.count += 1
        self.head_seq = entry.seq
        self.head_hash = entry.hash

    def _check_checkpoint(self, entry: Entry) -> None:
        self._links[entry.seq] = entry.hash
        if len(self._links) > 2 * CHECKPOINT_LOOKBACK:
            self._links = {s: h for s, h in self._links.items() if s > entry.seq - CHECKPOINT_LOOKBACK}
        if self.checkpoint_key is None or (checkpoint := checkpoint_in(entry)) is None:
            return
        link = self._links.get(checkpoint.seq)
        if link is None and checkpoint.seq < self._first_seq - 1:
            # A segment (a trimmed log) holds checkpoints appended after its start of entries before it:
            # only their signature can be checked here (the archive before it holds what they sign).
            link = bytes.fromhex(checkpoint.link) if _HEX_LINK.fullmatch(checkpoint.link) else None
        problem = checkpoint_problem(checkpoint, link, self.checkpoint_key, self.partition)
        chained = self._first_seq == 1 or self.checkpoints > 0  # a segment: from its first checkpoint
        if problem is None and chained and checkpoint.previous != self.last_checkpoint_seq:
            problem = (
                f"it follows the checkpoint of seq {checkpoint.previous}, but the last one in the log "
                f"covers seq {self.last_checkpoint_seq}: a checkpoint was removed"
            )
        if problem is not None:
            raise LogCorrupt(entry.seq, f"checkpoint of seq {checkpoint.seq} refused: {problem}")
        self.checkpoints += 1
        self.last_checkpoint_seq = checkpoint.seq
        if checkpoint.seq == self._first_seq - 1:
            self.start_vouched = True

    def _check_causation(self, entry: Entry, answers: Mapping[str, frozenset[str]]) -> None:
        kind, _, ref = entry.causation.partition(":")
        if kind == "log":
            cause = int(ref) if ref.isdigit() else 0
            if not 0 < cause < entry.seq:
                raise LogCorrupt(entry.seq, f"answers log entry {ref!r}, which does not precede it")
            answered = answers.get(entry.producer)
            if answered is not None and cause >= self._first_seq:
                cause_type = self._type_names[self._types[cause - self._first_seq]]
                if cause_type not in answered:
                    raise LogCorrupt(
                        entry.seq, f"{entry.producer} does not answer {cause_type} (entry {cause})"
                    )
        elif kind == "xfer":  # a transfer from another partition's log (shared/partitions.py)
            transfer = transfer_of_causation(ref)
            if transfer is None or entry.producer != transfer_producer(transfer.source):
                raise LogCorrupt(entry.seq, f"names no transfer it answers (causation {entry.causation!r})")
        elif kind != "in" or not ref:
            raise LogCorrupt(entry.seq, f"names no input it answers (causation {entry.causation!r})")
        code = self._type_codes.get(entry.type)
        if code is None:
            if len(self._type_names) == 256:
                raise LogCorrupt(entry.seq, "more than 256 entry types")
            code = self._type_codes[entry.type] = len(self._type_names)
            self._type_names.append(entry.type)
        self._types.append(code)

    def check_run(self, entries: Iterable[Entry]) -> VerifyReport:
        """Check these entries in turn; the report, naming the first bad one if any."""
        try:
            for entry in entries:
                self.check(entry)
        except LogCorrupt as bad:
            return self.report(bad)
        return self.report()

    def report(self, bad: LogCorrupt | None = None) -> VerifyReport:
        beyond = [seq for seq in self.expected if seq > self.head_seq]
        if bad is None and beyond:
            ends = f"the log ends at seq {self.head_seq}, before the published seq {min(beyond)}"
            bad = LogCorrupt(self.head_seq + 1, ends)
        if bad is None and self.checkpoint_key is not None and not self.start_vouched:
            bad = LogCorrupt(self._first_seq, unvouched(self._first_seq))
        return VerifyReport(
            ok=bad is None,
            count=self.count,
            head_seq=self.head_seq,
            head_hash=self.head_hash.hex(),
            first_bad_seq=None if bad is None else bad.seq,
            reason="" if bad is None else bad.reason,
            tags_checked=self.producer_keys is not None,
            checkpoints=self.checkpoints,
            last_checkpoint_seq=self.last_checkpoint_seq,
        )


def verify_entries(
    entries: Iterable[Entry],
    *,
    start_seq: int = 1,
    prev_hash: bytes = GENESIS_HASH,
    producer_keys: ProducerKeys | None = None,
    answers: Mapping[str, frozenset[str]] | None = None,
) -> VerifyReport:
    """Verify a run of entries that should start at `start_seq` and link to `prev_hash`."""
    verifier = ChainVerifier(
        start_seq=start_seq, prev_hash=prev_hash, producer_keys=producer_keys, answers=answers
    )
    return verifier.check_run(entries)


class PagedReader(Protocol):
    async def read_checked(self, after_seq: int, limit: int) -> tuple[list[Entry], LogCorrupt | None]:
        """The good entries after `after_seq`, and the fault that stopped the page early, if any."""
        ...


async def verify_log(
    log: PagedReader, *, page: int = 1000, verifier: ChainVerifier | None = None
) -> VerifyReport:
    """Verify a whole log page by page, including entries its storage cannot decode (and producer tags,
    causations and checkpoints, with a verifier that holds what they need)."""
    verifier = verifier or ChainVerifier()
    while True:
        entries, fault = await log.read_checked(verifier.head_seq, page)
        try:
            for entry in entries:
                verifier.check(entry)
        except LogCorrupt as bad:
            return verifier.report(bad)
        if fault is not None:
            return verifier.report(fault)
        if len(entries) < page:
            return verifier.report()
