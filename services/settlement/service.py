"""The settlement service: delivery versus payment at T+0 for every trade, a projection of the log."""

from __future__ import annotations

from faststream import FastStream

from services.runtime.app import follower_app
from services.settlement.core import Settlement
from shared.config import Settings

__all__ = ["build_app"]


def build_app(settings: Settings) -> FastStream:
    app, _ = follower_app(Settlement(), settings)
    return app
