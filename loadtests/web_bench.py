"""Public web benchmark (issue 16): page latency of the public web app with a large log behind its read
model and many live (SSE) pages connected.

A realistic log is built in-process (the replay benchmark's seeded session through every core, plus
`--retirements` retirements so the registry has certificates to search), folded through the public
projection, and its read model (`pub:*`) written to a private Redis by the projection's own publishing
code (services/public/service.py publish_once). The web app (services/web/app.py create_app, as
services/web/process.py builds it) is served by uvicorn in its own process on a free loopback port.
Then K sequential GETs of each page are timed, first with no SSE client, then with `--sse` clients
holding /api/stream open (side by side):

- the overview (/), the market page (/market/<symbol>), the registry page with a search
  (/registry?q=<beneficiary>), searches by serial number and by a word every beneficiary holds (the
  newest 50 of all), a certificate page (/certificates/<id>), and the JSON API's market (/api/market).

    .venv/bin/python -m loadtests.web_bench                    # 20,000 orders: about a minute
    .venv/bin/python -m loadtests.web_bench --orders 282000    # the 1,000,000-entry log
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time

import httpx
import msgspec
from redis.asyncio import Redis

from loadtests.order_stream import BENCH_INSTRUMENTS
from loadtests.private_redis import private_redis, run_line
from loadtests.replay_bench import PARTICIPANTS
from loadtests.restart_bench import _build
from services.cli.supervisor import ROOT
from services.harness import InProcessExchange
from services.public import views
from services.public.core import PublicProjection
from services.public.service import EVENTS_MAXLEN, publish_once
from shared.domain.codec import decode_event
from shared.domain.registry import RetirementRequested
from shared.eventlog.entry import Entry
from shared.keys import Keys

HOME = ROOT / "var" / "web-bench"
KEYS = Keys("bench")
TARGET_MS = 100.0
_json = msgspec.json.Encoder()


async def _retire(exchange: InProcessExchange, count: int) -> None:
    """`count` retirements spread over participants and instruments (each: request, approval, retired)."""
    events = [
        RetirementRequested(
            participant=f"P{n % PARTICIPANTS:03d}",
            client_order_id=f"ret-{n}",
            instrument=BENCH_INSTRUMENTS[n % len(BENCH_INSTRUMENTS)].symbol,
            quantity=1 + n % 5,
            beneficiary=f"Beneficiary {n:06d} Ltd",
            reason="bench",
            purpose="voluntary",
        )
        for n in range(count)
    ]
    for start in range(0, len(events), 50):
        await exchange.append_intake_events(events[start : start + 50])


def _fold(entries: list[Entry]) -> PublicProjection:
    proj = PublicProjection()
    for entry in entries:
        if entry.type in proj.inputs:
            proj.decide(entry.seq, entry.event_ns, decode_event(entry.body))
    return proj


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(url: str, port: int) -> None:
    """The web process's app (services/web/process.py), without its FastStream lifecycle."""
    import uvicorn  # noqa: PLC0415 - only in the server's process

    from services.web.app import create_app  # noqa: PLC0415
    from services.web.reader import Broadcast, PublicReader  # noqa: PLC0415

    async def run() -> None:
        redis = Redis.from_url(url)
        broadcast = Broadcast(redis, KEYS)
        config = uvicorn.Config(create_app(PublicReader(redis, KEYS), broadcast), host="127.0.0.1", port=port,
                                log_level="warning", access_log=False, lifespan="off")  # fmt: skip
        broadcast.start()
        await uvicorn.Server(config).serve()

    asyncio.run(run())


async def _time(client: httpx.AsyncClient, path: str, requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise AssertionError(f"GET {path}: {response.status_code}")
    return times


async def _sse(client: httpx.AsyncClient, opened: asyncio.Queue[None], received: list[int]) -> None:
    async with client.stream("GET", "/api/stream") as response:
        first = True
        async for chunk in response.aiter_bytes():
            if first:
                opened.put_nowait(None)
                first = False
            received[0] += chunk.count(b"data: ")


async def _feed(redis: Redis, proj: PublicProjection, rate: float) -> None:
    """Live updates as the projection publishes them (one market update per instrument and round)."""
    symbols = sorted(proj.state.markets)
    while True:
        await asyncio.sleep(1 / rate)
        for symbol in symbols:
            doc = _json.encode(views.update_doc(proj.state, symbol, proj.state.markets[symbol].tape[-3:]))
            await redis.xadd(KEYS.pub_events, {"data": doc}, maxlen=EVENTS_MAXLEN, approximate=True)


def _row(times: list[float]) -> str:
    q = statistics.quantiles(times, n=100, method="inclusive")
    return f"{q[49]:7.1f} {q[98]:7.1f} {max(times):7.1f}"


async def _streams(base: str, count: int) -> None:
    """The SSE clients' own process (not the timing client's event loop): prints `open` once every
    stream is open, holds them until its stdin closes, then prints the number of events received."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30.0, read=None), limits=limits) as c:
        opened: asyncio.Queue[None] = asyncio.Queue()
        received = [0]
        tasks = [asyncio.create_task(_sse(c, opened, received)) for _ in range(count)]
        for _ in range(count):
            await asyncio.wait_for(opened.get(), 60)
        print("open", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print(received[0], flush=True)


async def _measure(
    base: str, pages: dict[str, str], args: argparse.Namespace, redis: Redis, proj: PublicProjection
) -> tuple[dict[str, list[list[float]]], int]:
    results: dict[str, list[list[float]]] = {label: [] for label in pages}
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
        for label, path in pages.items():
            await _time(client, path, 5)  # warm-up: templates compiled, connection open
            results[label].append(await _time(client, path, args.requests))
        streams = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "loadtests.web_bench", "--streams", base, "--sse", str(args.sse),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert streams.stdin is not None
        assert streams.stdout is not None
        feed = None
        try:
            if await asyncio.wait_for(streams.stdout.readline(), 120) != b"open\n":
                raise AssertionError("the SSE clients did not open")
            if args.updates:
                feed = asyncio.create_task(_feed(redis, proj, args.updates))
            for label, path in pages.items():
                results[label].append(await _time(client, path, args.requests))
        finally:
            if feed is not None:
                feed.cancel()
                await asyncio.gather(feed, return_exceptions=True)
            streams.stdin.close()
            out, _ = await streams.communicate()
    return results, int(out or b"0")


async def _start_web(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "loadtests.web_bench", "--serve", url, "--port", str(port)]
    web = subprocess.Popen(command, cwd=ROOT)  # noqa: S603 - this module
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/api/market").status_code == 200:
                break
        await asyncio.sleep(0.1)
    return web, base


async def _run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    exchange, _ = await _build(args.orders, args.seed)
    await _retire(exchange, args.retirements)
    entries = await exchange.log.read(0, 10**9)
    built = time.perf_counter() - started
    started = time.perf_counter()
    proj = _fold(entries)
    folded = time.perf_counter() - started
    certs = sorted(proj.state.certificates)
    if not certs:
        raise AssertionError("no certificate in the log: were the retirements rejected?")
    async with private_redis(HOME) as (redis, url):
        started = time.perf_counter()
        await publish_once(proj, redis, KEYS, exchange.log)
        published = time.perf_counter() - started
        memory = (await redis.info("memory"))["used_memory"]
        web, base = await _start_web(url)
        try:
            symbol = sorted(proj.state.markets)[0]
            cert = proj.state.certificates[certs[len(certs) // 2]]
            serial = cert.serials[0].start
            word = cert.beneficiary[-10:]
            pages = {
                "market overview /": "/",
                f"market page /market/{symbol}": f"/market/{symbol}",
                f"registry search /registry?q={word}": f"/registry?q={word}",
                f"serial search /api/certificates?q={serial}": f"/api/certificates?q={serial}",
                "broad search /api/certificates?q=ltd": "/api/certificates?q=ltd",
                f"certificate page /certificates/{cert.id}": f"/certificates/{cert.id}",
                "JSON API /api/market": "/api/market",
            }
            results, received = await _measure(base, pages, args, redis, proj)
        finally:
            web.terminate()
            web.wait()
    print(run_line(orders=args.orders, retirements=args.retirements, seed=args.seed))
    print(f"log: {len(entries):,} entries (built in {built:.1f} s), projection fold {folded:.1f} s, "
          f"read model published in {published:.2f} s, Redis {memory / 2**20:,.0f} MiB, "
          f"{len(proj.state.markets)} instruments, {len(certs):,} certificates")  # fmt: skip
    print(f"{args.requests} sequential GETs per page; ms, p50 / p99 / max; SSE clients: 0 vs {args.sse} "
          f"(with {args.updates}/s update rounds, {received:,} SSE events delivered)")  # fmt: skip
    print(f"{'page':<52} {'p50':>7} {'p99':>7} {'max':>7}   | {'p50':>7} {'p99':>7} {'max':>7}")
    worst = 0.0
    for label, (quiet, busy) in results.items():
        print(f"{label:<52} {_row(quiet)}   | {_row(busy)}")
        worst = max(worst, *statistics.quantiles(quiet + busy, n=100, method="inclusive")[98:99])
    verdict = "holds" if worst <= TARGET_MS else "does not hold"
    print(f"the {TARGET_MS:.0f} ms target (p99) {verdict}: worst p99 {worst:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=20_000,
                        help="~3.5 log entries per order; 282000 gives the 1,000,000-entry log")  # fmt: skip
    parser.add_argument("--retirements", type=int, default=2_000, help="certificates in the registry")
    parser.add_argument("--sse", type=int, default=200, help="SSE clients held open")
    parser.add_argument("--requests", type=int, default=300, help="sequential GETs per page and phase")
    parser.add_argument(
        "--updates",
        type=float,
        default=10.0,
        help="live update rounds per second while the SSE clients are connected (0: none)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # the web server's own process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--streams", help=argparse.SUPPRESS)  # the SSE clients' own process
    args = parser.parse_args()
    if args.streams:
        asyncio.run(_streams(args.streams, args.sse))
    elif args.serve:
        _serve(args.serve, args.port)
    else:
        asyncio.run(_run(args))


if __name__ == "__main__":
    main()
