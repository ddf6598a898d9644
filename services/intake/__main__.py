"""Run the intake service: `python -m services.intake`."""

from services.intake.service import build_app
from services.runtime.main import run_service

run_service("intake", build_app)
