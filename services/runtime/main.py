"""Process entry point shared by every service: settings, logging, then the process's FastStream app."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Sequence

import msgspec
import structlog

from services.runtime.app import cancel_tasks, fail_fast
from services.runtime.gcpolicy import collect_periodically, freeze_startup_objects
from services.runtime.startwait import NotReady, wait_until_ready
from services.runtime.system import System
from shared.cluster import ClusterPlace, place_on_cluster, watch_slot
from shared.config import Settings, connect, load_settings
from shared.eventlog.lease import LeaseHeld, LeaseLost, keep_lease, new_lease_value, take_lease
from shared.keyring import KeyMissing
from shared.logging import configure_logging

__all__ = ["run_process"]


def run_process(system: System, argv: Sequence[str]) -> None:
    """`python -m services <process>`: build the named process from the system map and run it."""
    names = [p.name for p in system.processes]
    name, wait_s = _parse(argv, names)
    process = system.process(name)
    parent = os.getppid()  # now: the supervisor may die while we start
    configure_logging(os.environ.get("GREENEX_LOG_LEVEL", "INFO"))
    structlog.contextvars.bind_contextvars(service=process.name)
    # One live copy per process: its appends carry the lease's value, taken before anything is read or
    # written (shared/eventlog/lease.py).
    settings = msgspec.structs.replace(load_settings(), lease=new_lease_value())
    try:
        if wait_s > 0:
            asyncio.run(wait_until_ready(settings, process.name, wait_s))
        app = process.build(settings, system, process)  # first: it checks the secrets the process needs
        # On Redis Cluster: talk to the master serving the exchange's slot (shared/cluster.py). Building
        # connects nothing yet, so the app is built again for that node.
        settings, place = asyncio.run(place_on_cluster(settings, settings.user(process.name)))
        if place is not None:
            app = process.build(settings, system, process)
        asyncio.run(_take_lease(settings, process.name))
    # A secret missing or well known; another live copy; what `--wait` waited for never came.
    except (KeyMissing, LeaseHeld, NotReady, LookupError) as refused:
        sys.exit(f"{process.name}: refusing to start: {refused}")
    collector: list[asyncio.Task[None]] = []

    @app.after_startup
    async def renew_the_lease() -> None:
        collector.append(asyncio.create_task(_keep_lease(settings, process.name)))
        if os.environ.get("GREENEX_EXIT_WITH_PARENT") == "1":
            collector.append(asyncio.create_task(_exit_with_parent(process.name, parent)))

    @app.after_startup
    async def follow_the_slot() -> None:
        if place is not None:
            collector.append(asyncio.create_task(_follow_slot(settings, process.name, place)))

    @app.after_startup
    async def calm_the_collector() -> None:
        freeze_startup_objects()  # after start-up: the rebuilt state is frozen too
        collector.append(asyncio.create_task(collect_periodically()))

    @app.on_shutdown
    async def stop_collector() -> None:
        await cancel_tasks(collector)

    asyncio.run(app.run())


def _parse(argv: Sequence[str], names: list[str]) -> tuple[str, float]:
    """`<process> [--wait SECONDS]`: the process's name and how long to wait for its keys and Redis."""
    usage = f"usage: python -m services <process> [--wait SECONDS], <process> one of: {', '.join(names)}"
    if len(argv) not in (1, 3) or argv[0] not in names or (len(argv) == 3 and argv[1] != "--wait"):
        sys.exit(usage)
    try:
        wait_s = float(argv[2]) if len(argv) == 3 else 0.0
    except ValueError:
        sys.exit(usage)
    return argv[0], wait_s


ORPHAN_EXIT_S = 10.0  # how long an orphan's clean stop may take before it simply exits


async def _exit_with_parent(process: str, parent: int) -> None:
    """Exit once the process that started us is gone (we were re-parented): a supervisor killed with -9
    leaves no orphans. Polled (Linux's parent-death signal would need prctl through ctypes)."""
    while True:
        if os.getppid() != parent:
            structlog.get_logger("greenex.runtime").warning("supervisor_gone", service=process, parent=parent)
            os.kill(os.getpid(), signal.SIGTERM)  # the clean way out: snapshot, release the lease
            # ... unless that hangs (seen: orphans of a killed load test idle for minutes after it): a
            # thread the event loop cannot hold up ends the process anyway; the log is the state.
            timer = threading.Timer(ORPHAN_EXIT_S, os._exit, args=(70,))
            timer.daemon = True
            timer.start()
            return
        await asyncio.sleep(0.5)


async def _follow_slot(settings: Settings, process: str, place: ClusterPlace) -> None:
    """After a failover another master serves the slot: exit, to be started again on it (the state is
    rebuilt from the log there, which is all the new master has)."""
    moved = await watch_slot(place, settings, settings.user(process))
    fail_fast(process, SlotMoved(moved))


class SlotMoved(Exception):  # noqa: N818 - an event, not an error of ours
    """The exchange's slot is served by another master now."""


async def _take_lease(settings: Settings, process: str) -> None:
    redis = connect(settings, settings.user(process))
    try:
        await take_lease(redis, settings.keys.lease(process), settings.lease)
    finally:
        await redis.aclose()


async def _keep_lease(settings: Settings, process: str) -> None:
    redis = connect(settings, settings.user(process))
    try:
        await keep_lease(redis, settings.keys.lease(process), settings.lease)
    except LeaseLost as lost:
        fail_fast(process, lost)
    finally:
        await redis.aclose()
