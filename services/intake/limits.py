"""Per-participant command rate limits: a token bucket each, refilled by the time the caller passes.

Throttling protects the exchange, it is not ledger state: the buckets live in intake's memory only and
start full after a restart, and a throttled command is not processed at all (its client order id stays
unused, so the sender may simply send it again).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_BURST", "DEFAULT_COMMANDS_PER_S", "QUERIES_PER_S", "QUERY_BURST", "RateLimits"]

DEFAULT_COMMANDS_PER_S = 500
DEFAULT_BURST = 1000
# Queries on top: each is logged with its answer (up to 500 orders), so a participant asking as fast as it
# may send orders would grow the log by megabytes a second. A client needs a few a second at most.
QUERIES_PER_S = 100
QUERY_BURST = 200
_NS = 1_000_000_000


@dataclass
class _Bucket:
    rate: int  # tokens per second
    burst: int  # the bucket's size
    tokens_ns: int  # tokens x 1e9, so refills stay integer
    at_ns: int


class RateLimits:
    def __init__(self, rate: int = DEFAULT_COMMANDS_PER_S, burst: int = DEFAULT_BURST) -> None:
        self._default = (rate, burst)
        self._limits: dict[str, tuple[int, int]] = {}
        self._buckets: dict[str, _Bucket] = {}

    def set(self, participant: str, commands_per_s: int, burst: int) -> None:
        rate, size = commands_per_s or self._default[0], burst or self._default[1]
        self._limits[participant] = (rate, size)
        self._buckets.pop(participant, None)

    def limits(self, participant: str) -> tuple[int, int]:
        return self._limits.get(participant, self._default)

    def take(self, participant: str, now_ns: int) -> bool:
        """Spend one token if the participant has one at `now_ns`."""
        bucket = self._buckets.get(participant)
        if bucket is None:
            rate, size = self.limits(participant)
            bucket = self._buckets[participant] = _Bucket(rate, size, size * _NS, now_ns)
        elapsed = max(0, now_ns - bucket.at_ns)
        bucket.tokens_ns = min(bucket.burst * _NS, bucket.tokens_ns + elapsed * bucket.rate)
        bucket.at_ns = max(bucket.at_ns, now_ns)
        if bucket.tokens_ns < _NS:
            return False
        bucket.tokens_ns -= _NS
        return True
