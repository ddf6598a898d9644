"""The system map: every process of the exchange, the cores it hosts, and what wakes it.

Everything that needs the list of parts reads this: `python -m services <process>`, the supervisor
behind `greenex up`, deploy/Procfile and deploy/docker-compose.yml (generated from it, checked by a
test), the wake-up bells every writer rings, replay and `--compare-live`, and the in-process harness.
Adding a follower is its package plus one entry here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, cast

from services.checkpoint.due import WAKES_ON as CHECKPOINT_WAKES_ON
from services.intake.reports import REPORTED_TYPES
from services.intake.reports.publisher import SNAPSHOT_NAME as REPORTS_SNAPSHOT
from services.matching.processor import MatchingProcessor
from services.public.core import PublicProjection
from services.registry.core import Registry
from services.runtime.system import Core, Process, ProcessBuilder, System
from services.settlement.core import Settlement
from services.transfers.credits import OUT as TRANSFER_OUT
from services.verification.core import Verification
from shared.keys import Role

if TYPE_CHECKING:
    from faststream import FastStream

    from shared.config import Settings

__all__ = ["SYSTEM", "build_followers"]


def _built_by(module: str, name: str = "build_app") -> ProcessBuilder:
    """A process's builder, imported when the process is built: whoever only reads the map (every CLI
    command) does not load FastStream and every service's code (~0.3 s of each command's start-up)."""

    def build(settings: Settings, system: System, process: Process) -> FastStream:
        return cast(ProcessBuilder, getattr(import_module(module), name))(settings, system, process)

    return build


def build_followers(settings: Settings, system: System, process: Process) -> FastStream:
    """A process that is nothing but its cores."""
    from services.runtime.app import follower_app  # noqa: PLC0415 - see _built_by

    return follower_app(settings, system, process).app


SYSTEM = System(
    processes=(
        # Client commands in, reports out; its report loop wakes for the entries that make reports.
        Process(
            "intake",
            _built_by("services.intake.service"),
            wakes_on=REPORTED_TYPES,
            keeps=("intake", REPORTS_SNAPSHOT),
        ),
        # Pre-trade reservations; the registry shares its read of the log (both fold most of the same
        # operator facts, and a second reader would double the wake-ups), with its own position.
        Process(
            "verification",
            build_followers,
            cores=(
                Core("verification", Verification, Verification.first_difference),
                Core("registry", Registry, Registry.first_difference),
            ),
        ),
        Process(
            "matching",
            _built_by("services.matching.service"),
            cores=(Core("matching", MatchingProcessor, MatchingProcessor.first_difference),),
        ),
        Process(
            "settlement",
            build_followers,
            cores=(Core("settlement", Settlement, Settlement.first_difference),),
        ),
        # Signs checkpoints of the log (every N entries, every close of day) with the exchange's key.
        Process("checkpoint", _built_by("services.checkpoint.service"), wakes_on=CHECKPOINT_WAKES_ON),
        # The public read model (`pub:*`): folds what may be published, answers nothing, so no bell rings
        # for it; it looks every block_ms. The web app serves it, as a user that can read nothing else.
        Process(
            "projection",
            _built_by("services.public.service"),
            cores=(Core("projection", PublicProjection, PublicProjection.first_difference),),
            roles=(Role.FOLLOWER, Role.PROJECTION),
        ),
        Process("web", _built_by("services.web.process"), roles=(Role.WEB,)),
        # Credits the cash other partitions transfer to this one (shared/partitions.py); with one
        # partition it follows nothing. It reads each other partition's CashTransferredOut index, not its
        # log (a log's every entry would cost each partition N-1 reads).
        Process("transfers", _built_by("services.transfers.service"), indexed=frozenset({TRANSFER_OUT})),
    )
)
