"""Process entry point shared by every service: settings, logging, then the FastStream app."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import structlog
from faststream import FastStream

from services.runtime.app import cancel_tasks
from services.runtime.gcpolicy import collect_periodically, freeze_startup_objects
from shared.config import Settings, load_settings
from shared.logging import configure_logging

__all__ = ["run_service"]


def run_service(name: str, build: Callable[[Settings], FastStream]) -> None:
    configure_logging(os.environ.get("GREENEX_LOG_LEVEL", "INFO"))
    structlog.contextvars.bind_contextvars(service=name)
    app = build(load_settings())
    collector: list[asyncio.Task[None]] = []

    @app.after_startup
    async def calm_the_collector() -> None:
        freeze_startup_objects()  # after start-up: the rebuilt state is frozen too
        collector.append(asyncio.create_task(collect_periodically()))

    @app.on_shutdown
    async def stop_collector() -> None:
        await cancel_tasks(collector)

    asyncio.run(app.run())
