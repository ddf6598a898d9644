"""Run the verification service: `python -m services.verification`."""

from services.runtime.main import run_service
from services.verification.service import build_app

run_service("verification", build_app)
