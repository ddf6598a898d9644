"""Process entry point shared by every service: settings, logging, then the process's FastStream app."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

import structlog

from services.runtime.app import cancel_tasks
from services.runtime.gcpolicy import collect_periodically, freeze_startup_objects
from services.runtime.system import System
from shared.config import load_settings
from shared.keyring import KeyMissing
from shared.logging import configure_logging

__all__ = ["run_process"]


def run_process(system: System, argv: Sequence[str]) -> None:
    """`python -m services <process>`: build the named process from the system map and run it."""
    names = [p.name for p in system.processes]
    if len(argv) != 1 or argv[0] not in names:
        sys.exit(f"usage: python -m services <process>, one of: {', '.join(names)}")
    process = system.process(argv[0])
    configure_logging(os.environ.get("GREENEX_LOG_LEVEL", "INFO"))
    structlog.contextvars.bind_contextvars(service=process.name)
    try:
        app = process.build(load_settings(), system, process)
    except KeyMissing as missing:  # a secret it needs is absent or well known: refuse to start
        sys.exit(f"{process.name}: refusing to start: {missing}")
    collector: list[asyncio.Task[None]] = []

    @app.after_startup
    async def calm_the_collector() -> None:
        freeze_startup_objects()  # after start-up: the rebuilt state is frozen too
        collector.append(asyncio.create_task(collect_periodically()))

    @app.on_shutdown
    async def stop_collector() -> None:
        await cancel_tasks(collector)

    asyncio.run(app.run())
