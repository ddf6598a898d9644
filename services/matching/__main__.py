"""Run the matching service: `python -m services.matching`."""

from services.matching.service import build_app
from services.runtime.main import run_service

run_service("matching", build_app)
