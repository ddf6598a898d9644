"""Partitions: one exchange run as several complete venues, each with its own log and its own hash tag.

Partition 1 is the exchange as it runs unpartitioned, under the base prefix (`{greenex}:log`); partition
`i` >= 2 is the same venue under `<prefix>-p<i>` (`{greenex-p2}:log`), so on Redis Cluster each partition's
keys live in a slot of their own and its append script runs there. Which instruments a partition trades
is what its own log lists (an operator event, `list_instrument`, sent to that partition): the map is
data in the logs, never a setting.

Cash moves between partitions by transfers: a `TransferRequested` in the source partition's log becomes a
`CashTransferredOut` there (verification debits it like a withdrawal), and the destination's `transfers`
process appends the matching `CashTransferredIn` to its own log, with the request's seq in the source as
its producer position in the same atomic append: exactly once, whatever dies when (services/transfers).
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "MAX_PARTITIONS",
    "TRANSFERS",
    "TransferRef",
    "check_partitions",
    "partition_of_signed_venue",
    "partition_prefix",
    "partition_user",
    "partition_venue",
    "transfer_causation",
    "transfer_event_id",
    "transfer_of_causation",
    "transfer_producer",
]

MAX_PARTITIONS = 64
TRANSFERS = "transfers"  # the producer (and process) that credits transfers from other partitions


def check_partitions(partition: int, partitions: int) -> None:
    """ValueError unless 1 <= partition <= partitions <= MAX_PARTITIONS."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"GREENEX_PARTITIONS is 1 to {MAX_PARTITIONS}, not {partitions}")
    if not 1 <= partition <= partitions:
        raise ValueError(f"GREENEX_PARTITION is 1 to GREENEX_PARTITIONS ({partitions}), not {partition}")


def partition_prefix(base: str, partition: int) -> str:
    """The key prefix of one partition: the base for partition 1, `<base>-p<i>` for the others."""
    return base if partition == 1 else f"{base}-p{partition}"


def partition_venue(venue: str, partition: int) -> str:
    """The venue a partition's signed checkpoints name: the venue for partition 1 (as before partitions),
    `<venue>/p<i>` for the others, so a checkpoint (and the archive it vouches for) of one partition
    cannot be passed off as another's, even to someone holding only the public key."""
    return venue if partition == 1 else f"{venue}/p{partition}"


_SIGNED_PARTITION = re.compile(r".*/p([0-9]{1,2})")


def partition_of_signed_venue(signed: str) -> int:
    """The partition a checkpoint's venue names (partition_venue's inverse): 1 without a `/p<i>`."""
    match = _SIGNED_PARTITION.fullmatch(signed)
    return int(match.group(1)) if match else 1


class TransferRef(NamedTuple):
    """(source partition, seq of the TransferRequested there, which its CashTransferredOut answers): a
    transfer's id, unique across the exchange and read from the source log alone."""

    source: int
    seq: int

    def __str__(self) -> str:
        return f"p{self.source}:{self.seq}"


def partition_user(process: str, partition: int) -> str:
    """The Redis user a service process of `partition` logs in as: its own name in partition 1, and
    `<name>@p<n>` in partition n, whose rights cover partition n's keys only (services/runtime/acl.py;
    participant ids cannot hold `@`, so no participant can take one of these names)."""
    return process if partition == 1 else f"{process}@p{partition}"


def transfer_producer(source: int) -> str:
    """The producer crediting one source partition's transfers: its position is that source's request
    seq, kept by the append script with each credit (one position per producer)."""
    return f"{TRANSFERS}.p{source}"


def transfer_event_id(producer: str, ref: TransferRef) -> str:
    """The event id of the CashTransferredIn answering `ref`: one per transfer, so a copy stands out."""
    return f"{producer}:{ref}"


def transfer_causation(ref: TransferRef) -> str:
    """The causation of a CashTransferredIn: `xfer:<source partition>:<seq>`, the entry it answers in
    another partition's log."""
    return f"xfer:{ref.source}:{ref.seq}"


_XFER = re.compile(r"([0-9]{1,2}):([0-9]{1,20})")  # ASCII digits, bounded (see shared/eventlog/freshness.py)


def transfer_of_causation(ref: str) -> TransferRef | None:
    """The transfer an `xfer:` causation's reference (the part after `xfer:`) names; None if malformed."""
    match = _XFER.fullmatch(ref)
    return None if match is None else TransferRef(int(match[1]), int(match[2]))
