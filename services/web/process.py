"""The web process: the public app served by uvicorn inside a FastStream lifecycle, as the `web` Redis
user, which can read the public read model and nothing else (shared/keys.py, services/runtime/acl.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import structlog
import uvicorn
from faststream import FastStream

from services.runtime.app import cancel_tasks, fail_fast, lifecycle_app
from services.runtime.system import Process, System
from services.web.app import create_app
from services.web.reader import Broadcast, PublicReader
from shared.config import Settings, connect

__all__ = ["build_app"]

log = structlog.get_logger("greenex.web")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: FastStream's lifecycle owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_app(settings: Settings, system: System, process: Process) -> FastStream:
    redis = connect(settings, settings.user(process.name))
    reader, broadcast = PublicReader(redis, settings.keys), Broadcast(redis, settings.keys)
    host, port = settings.web_host, settings.partition_web_port
    config = uvicorn.Config(create_app(reader, broadcast), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off")  # fmt: skip
    server = _Server(config)
    app = lifecycle_app(settings, process.name)
    tasks: list[asyncio.Task[None]] = []

    async def serve() -> None:
        try:
            await server.serve()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                fail_fast(process.name, exc)
            raise
        if not server.should_exit:  # uvicorn returns when it cannot bind
            fail_fast(process.name, RuntimeError(f"cannot serve on {host}:{port}"))

    async def index() -> None:
        """The search index before the first search needs it (a large registry takes seconds to read)."""
        try:
            await reader.refresh()
        except Exception as exc:  # noqa: BLE001 - a search builds it then
            log.warning("search_index_not_built", error=repr(exc))

    @app.after_startup
    async def start_serving() -> None:
        broadcast.start()
        tasks.append(asyncio.create_task(serve()))
        tasks.append(asyncio.create_task(index()))

    @app.on_shutdown
    async def stop_serving() -> None:
        server.should_exit = True
        await broadcast.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(tasks[0]), 3.0) if tasks else None  # serve()
        await cancel_tasks(tasks)
        await redis.aclose()

    return app
