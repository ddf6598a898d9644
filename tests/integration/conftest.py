"""The running exchange shared by an end-to-end test module: its own prefix, the four real services."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.integration.exchange import Exchange, running_exchange


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exchange(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Exchange]:
    """One exchange per module on the session's Redis, ACLs on; tests keep apart by unique names."""
    async with running_exchange(redis_server, tmp_path_factory.mktemp("keys"), "e2e") as ex:
        yield ex
