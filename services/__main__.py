"""Run one process of the exchange: `python -m services <process>` (listed in services/system.py)."""

import sys

from services.runtime.main import run_process
from services.system import SYSTEM

run_process(SYSTEM, sys.argv[1:])
