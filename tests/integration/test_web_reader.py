"""The web app's registry search over a real Redis: the index follows `pub:certificate-order`, never skips
a certificate whose document comes late, starts over when the read model was rebuilt, and refuses
searches once the second's search time is spent (a remembered answer still comes)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from services.web import reader as reader_module
from services.web.reader import PublicReader, SearchBusyError
from shared.keys import Keys

pytestmark = pytest.mark.integration

KEYS = Keys("webr")
_encode = msgspec.json.Encoder().encode


def _doc(n: int, beneficiary: str) -> dict[str, Any]:
    return {"id": f"RC-{n}", "beneficiary": beneficiary, "instrument": "X", "seq": n, "tonnes": 1,
            "serials": [{"label": f"X-{n}", "start": 100 * n, "end": 100 * n + 9}]}  # fmt: skip


async def _publish(redis: Redis, doc: dict[str, Any], *, document: bool = True) -> None:
    if document:
        await redis.hset(KEYS.pub_certificates, doc["id"], _encode(doc))
    await redis.zadd(KEYS.pub_certificate_order, {doc["id"]: doc["seq"]})


async def _ids(reader: PublicReader, q: str) -> list[str]:
    return [c["id"] for c in await reader.search(q)]


async def test_a_late_document_is_indexed_when_it_comes(redis_client: Redis) -> None:
    reader = PublicReader(redis_client, KEYS)
    await _publish(redis_client, _doc(1, "Alpha Co"), document=False)  # named, not written yet
    await _publish(redis_client, _doc(2, "Beta Ltd"))
    assert await _ids(reader, "alpha") == []
    assert await _ids(reader, "beta") == []  # not past the missing one: it would be skipped for good
    await _publish(redis_client, _doc(1, "Alpha Co"))
    assert await _ids(reader, "alpha") == ["RC-1"]
    assert await _ids(reader, "ltd") == ["RC-2"]
    assert await _ids(reader, "205") == ["RC-2"]
    await _publish(redis_client, _doc(3, "Gamma Ltd"))
    assert await _ids(reader, "ltd") == ["RC-3", "RC-2"]


async def test_a_rebuilt_read_model_is_indexed_again(redis_client: Redis) -> None:
    reader = PublicReader(redis_client, KEYS)
    for n, name in ((1, "Old One"), (2, "Old Two")):
        await _publish(redis_client, _doc(n, name))
    assert await _ids(reader, "old") == ["RC-2", "RC-1"]
    await redis_client.delete(KEYS.pub_certificates, KEYS.pub_certificate_order)
    await _publish(redis_client, _doc(1, "New One"))
    assert await _ids(reader, "old") == []
    assert await _ids(reader, "new") == ["RC-1"]


async def test_searches_beyond_the_seconds_budget_are_refused(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = PublicReader(redis_client, KEYS)
    await _publish(redis_client, _doc(1, "Delta"))
    assert await _ids(reader, "delta") == ["RC-1"]
    monkeypatch.setattr(reader_module, "SEARCH_CPU_S", 0.0)  # this second's share is spent
    with pytest.raises(SearchBusyError):
        await reader.search("something else")
    assert await _ids(reader, "delta") == ["RC-1"]  # remembered: costs no search
