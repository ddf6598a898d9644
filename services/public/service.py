"""The projection process: the generic follower around the public projection, plus its publication.

Every PUBLISH_INTERVAL_S, between batches and only when something changed, it overwrites the touched
documents of the read model (`pub:*`, shared/keys.py) in one pipeline and adds what changed to
`pub:events`, which the web app fans out to its live pages. Like matching's depth views, publication is
off the folding path: a view, idempotent, rewritten whole.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import structlog
from faststream import FastStream
from redis.asyncio import Redis

from services.public import views
from services.public.core import PublicProjection
from services.runtime.app import cancel_tasks, follower_app
from services.runtime.system import Process, System
from shared.config import Settings
from shared.eventlog.port import EventLog
from shared.keys import Keys

__all__ = ["EVENTS_MAXLEN", "PUBLISH_INTERVAL_S", "build_app", "publish_once"]

PUBLISH_INTERVAL_S = 0.1
EVENTS_MAXLEN = 1000
log = structlog.get_logger("greenex.public")
_json = msgspec.json.Encoder()


async def _entry_links(event_log: EventLog, seqs: list[int]) -> dict[int, str]:
    """The chain link of each entry (a certificate shows the link of the entry that made it)."""
    links: dict[int, str] = {}
    for seq in sorted(set(seqs)):
        entries = await event_log.read(seq - 1, 1)
        if entries and entries[0].seq == seq:
            links[seq] = entries[0].hash.hex()
    return links


async def publish_once(proj: PublicProjection, redis: Redis, keys: Keys, event_log: EventLog) -> int:
    """Write what changed since the last call; return the number of documents written."""
    s = proj.state
    touched, trades, certs = proj.touched, proj.new_trades, proj.new_certificates
    registry, checkpoints = proj.registry_changed, proj.checkpoints_changed
    if not (touched or registry or checkpoints):
        return 0
    proj.touched, proj.new_trades, proj.new_certificates = set(), {}, set()
    proj.registry_changed = proj.checkpoints_changed = False
    links = await _entry_links(event_log, [s.certificates[c].seq for c in certs])
    pipe = redis.pipeline(transaction=False)
    events: list[dict[str, Any]] = []
    for symbol in sorted(touched):
        pipe.set(keys.pub_instrument(symbol), _json.encode(views.instrument_doc(s, symbol)))
        events.append(views.update_doc(s, symbol, trades.get(symbol, [])))
    if touched:
        pipe.set(keys.pub_market, _json.encode(views.market_doc(s)))
    if registry:
        pipe.set(keys.pub_registry, _json.encode(views.registry_doc(s)))
        events.append({"type": "registry", "seq": s.seq, "certificates": sorted(certs)})
    # In seq order, each document before its place in the order: a reader that finds an id in
    # `pub:certificate-order` finds its document, and every certificate of an earlier seq (a pipeline runs
    # its commands in order, though others' commands may fall between them).
    for cert in sorted((s.certificates[c] for c in certs), key=lambda c: (c.seq, c.id)):
        doc = views.certificate_doc(cert) | {"entry_link": links.get(cert.seq, "")}
        pipe.hset(keys.pub_certificates, cert.id, _json.encode(doc))
        pipe.zadd(keys.pub_certificate_order, {cert.id: cert.seq})
    if checkpoints:
        pipe.set(keys.pub_checkpoints, _json.encode(views.checkpoints_doc(s)))
        events.append({"type": "checkpoint", "seq": s.seq})
    for event in events:
        pipe.xadd(keys.pub_events, {"data": _json.encode(event)}, maxlen=EVENTS_MAXLEN, approximate=True)
    try:
        await pipe.execute()
    except Exception:
        # Nothing lost: the state is whole; the next round writes these documents again.
        proj.touched |= touched
        proj.new_certificates |= certs
        proj.registry_changed |= registry
        proj.checkpoints_changed |= checkpoints
        raise
    return len(touched) + len(certs) + registry + checkpoints


async def _publish(proj: PublicProjection, redis: Redis, keys: Keys, event_log: EventLog,
                   settled: Any) -> None:  # fmt: skip
    while True:
        await asyncio.sleep(PUBLISH_INTERVAL_S)
        if not settled():
            continue  # mid-batch: the state is ahead of its cursor's batch; publish it whole next round
        try:
            await publish_once(proj, redis, keys, event_log)
        except Exception as exc:  # noqa: BLE001 - a view; the next round rewrites it
            log.warning("public_publish_failed", error=repr(exc))


def build_app(settings: Settings, system: System, process: Process) -> FastStream:
    hosted = follower_app(settings, system, process)
    follower = hosted.followers[0]
    proj = follower.processor
    if not isinstance(proj, PublicProjection):
        raise TypeError(f"the projection process must host the public projection, not {proj.name}")
    tasks: list[asyncio.Task[None]] = []

    @hosted.app.after_startup
    async def start_publishing() -> None:
        proj.touch_everything()  # the read model may be older than the state rebuilt at start
        tasks.append(asyncio.create_task(
            _publish(proj, hosted.redis, hosted.keys, follower.log, lambda: follower.settled)
        ))  # fmt: skip

    @hosted.app.on_shutdown
    async def stop_publishing() -> None:
        await cancel_tasks(tasks)

    return hosted.app
