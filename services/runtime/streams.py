"""FastStream glue for plain Redis stream entries: a parser and decoders that skip its JSON envelope."""

from __future__ import annotations

from typing import Any

from faststream.redis.message import RedisBatchStreamMessage

from shared.eventlog.entry import Entry
from shared.eventlog.redis_log import decode_stream_entry

__all__ = ["decode_log_batch", "decode_raw_batch", "parse_raw_batch"]


async def parse_raw_batch(message: Any, _original: Any) -> RedisBatchStreamMessage:
    """Keep the batch as Redis returned it: clients write plain `XADD key * data <json>` (trap 10)."""
    return RedisBatchStreamMessage(raw_message=message, body=b"", consumer=None, group=None)  # type: ignore[arg-type]


async def decode_raw_batch(message: Any, _original: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """[(stream id, fields)] of the batch, in stream order."""
    raw = message.raw_message
    return list(zip(raw["message_ids"], raw["data"], strict=True))


async def decode_log_batch(message: Any, _original: Any) -> list[Entry]:
    raw = message.raw_message
    return [decode_stream_entry(i, f) for i, f in zip(raw["message_ids"], raw["data"], strict=True)]
