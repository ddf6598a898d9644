"""A bare stream hop in its own process: XREADGROUP BLOCK on one stream, XADD each entry to the next, XACK.

The physical floor a greenex service hop is compared with: same Redis, same kind of read and write, no
decoding, deciding, hashing or Lua.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

__all__ = ["URL_VARIABLE", "main", "relay"]

URL_VARIABLE = "GREENEX_RELAY_URL"


def relay(url: str, src: str, dst: str, group: str = "relay") -> None:
    redis = Redis.from_url(url)
    try:
        redis.xgroup_create(src, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    while True:
        reply: Any = redis.xreadgroup(group, "c1", {src: ">"}, count=500, block=1000)
        if not reply:
            continue
        rows = reply[0][1]
        pipe = redis.pipeline(transaction=False)
        for _, fields in rows:
            pipe.xadd(dst, fields)
        pipe.xack(src, group, *[stream_id for stream_id, _ in rows])
        pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("src")
    parser.add_argument("dst")
    args = parser.parse_args()
    # The URL carries a login: from the environment (readable only by its owner), never argv (by all).
    relay(os.environ[URL_VARIABLE], args.src, args.dst)


if __name__ == "__main__":
    main()
