"""Process entry point shared by every service: settings, logging, then the FastStream app."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import structlog
from faststream import FastStream

from shared.config import Settings, load_settings
from shared.logging import configure_logging

__all__ = ["run_service"]


def run_service(name: str, build: Callable[[Settings], FastStream]) -> None:
    configure_logging(os.environ.get("GREENEX_LOG_LEVEL", "INFO"))
    structlog.contextvars.bind_contextvars(service=name)
    app = build(load_settings())
    asyncio.run(app.run())
