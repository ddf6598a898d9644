"""Live state digests: each follower publishes `<seq>:<digest>` of its core so replay can compare."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from shared.keys import Keys

__all__ = ["parse_digests", "publish_digest", "read_digests"]


async def publish_digest(redis: Redis, keys: Keys, core: str, seq: int, digest: str) -> None:
    await redis.hset(keys.digests, core, f"{seq}:{digest}")


def parse_digests(raw: dict[bytes, bytes]) -> dict[str, tuple[int, str]]:
    """{core: (seq, digest)} from the hash's fields."""
    out: dict[str, tuple[int, str]] = {}
    for core, value in raw.items():
        seq, _, digest = value.decode().partition(":")
        out[core.decode()] = (int(seq), digest)
    return out


async def read_digests(redis: Redis, keys: Keys) -> dict[str, tuple[int, str]]:
    raw = cast(dict[bytes, bytes], await redis.hgetall(keys.digests))
    return parse_digests(raw)
