"""Live state digests: each follower publishes `<seq>:<digest>` of its core so replay can compare."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

__all__ = ["digests_key", "parse_digests", "publish_digest", "read_digests"]


def digests_key(prefix: str) -> str:
    return f"{prefix}:digests"


async def publish_digest(redis: Redis, prefix: str, service: str, seq: int, digest: str) -> None:
    await redis.hset(digests_key(prefix), service, f"{seq}:{digest}")


def parse_digests(raw: dict[bytes, bytes]) -> dict[str, tuple[int, str]]:
    """{service: (seq, digest)} from the hash's fields."""
    out: dict[str, tuple[int, str]] = {}
    for service, value in raw.items():
        seq, _, digest = value.decode().partition(":")
        out[service.decode()] = (int(seq), digest)
    return out


async def read_digests(redis: Redis, prefix: str) -> dict[str, tuple[int, str]]:
    raw = cast(dict[bytes, bytes], await redis.hgetall(digests_key(prefix)))
    return parse_digests(raw)
