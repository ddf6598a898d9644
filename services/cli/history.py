"""The whole log as operators' views read it: the archived segments, then the stream in Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.config import Settings
from shared.eventlog.redis_log import RedisEventLog
from shared.eventlog.segments import ArchiveDir, HistoryLog

__all__ = ["history"]


def history(settings: Settings, redis: Redis) -> HistoryLog:
    """Segments from GREENEX_ARCHIVE_DIR (`greenex log archive` moved them there), then the stream: a
    replay, an audit or a view over a trimmed log still starts at seq 1."""
    return HistoryLog(ArchiveDir(settings.partition_archive_dir), RedisEventLog(redis, settings.keys))
