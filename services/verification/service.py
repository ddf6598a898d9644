"""The verification service: pre-trade checks and reservations, a projection of the log."""

from __future__ import annotations

from faststream import FastStream

from services.runtime.app import follower_app
from services.verification.core import Verification
from shared.config import Settings

__all__ = ["build_app"]


def build_app(settings: Settings) -> FastStream:
    app, _ = follower_app(Verification(), settings)
    return app
