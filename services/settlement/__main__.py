"""Run the settlement service: `python -m services.settlement`."""

from services.runtime.main import run_service
from services.settlement.service import build_app

run_service("settlement", build_app)
