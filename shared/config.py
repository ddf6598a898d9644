"""Runtime settings read once from the environment."""

from __future__ import annotations

import os

import msgspec

from shared.keys import Keys

__all__ = ["Settings", "load_settings"]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "greenex"  # every Redis key the exchange owns starts with this
    batch_size: int = 500  # entries per XREAD(GROUP) COUNT
    block_ms: int = 100
    snapshot_every: int = 100_000  # log entries between a follower's snapshots; 0: only at shutdown

    @property
    def keys(self) -> Keys:
        """The names of every key of this exchange (shared/keys.py)."""
        return Keys(self.prefix)


def load_settings(**overrides: object) -> Settings:
    """Settings from GREENEX_* / REDIS_URL environment variables, then explicit overrides."""
    env: dict[str, object] = {}
    if url := os.environ.get("REDIS_URL"):
        env["redis_url"] = url
    if prefix := os.environ.get("GREENEX_PREFIX"):
        env["prefix"] = prefix
    if every := os.environ.get("GREENEX_SNAPSHOT_EVERY"):
        env["snapshot_every"] = int(every)
    env.update({k: v for k, v in overrides.items() if v is not None})
    return msgspec.convert(env, Settings)
