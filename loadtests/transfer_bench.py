"""Transfer benchmark: how long cash takes to move between two partitions (issue 17, "p99 transfer latency
in RESULTS.md"), on a fresh two-partition exchange on its own private Redis, every process running.

Participants send signed `transfer_cash` commands to partition 1 at a planned rate (open loop); each is
timed from its XADD to its `transferred_out` report in partition 1 (decided there: intake, verification,
report publisher) and to its `transferred_in` report in partition 2 (credited there by partition 2's
transfers process, then reported by partition 2's intake). A participant's transfers are reported in the
order sent, so the n-th report of each kind answers its n-th command. At the end the whole exchange is
checked as `greenex partitions` checks it: every transfer credited once, conservation across both.

    .venv/bin/python -m loadtests.transfer_bench --rate 200 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from collections import deque

from hdrh.histogram import HdrHistogram

from loadtests.hdr import summary_ms
from loadtests.private_redis import run_line
from services.cli.demo_registry import first_report
from services.cli.local import local_exchange, private_settings
from services.cli.partitions import partition_problems, read_partitions
from services.cli.supervisor import ROOT
from services.cli.venue import Venue
from shared.client import ExchangeClient
from shared.config import OPERATOR_USER

HOME = ROOT / "var" / "transfer-bench"


async def _collect(
    client: ExchangeClient, status: str, sent: deque[int], into: HdrHistogram, stop: asyncio.Event
) -> None:
    """Time each report of `status` on the client's stream from the send it answers (FIFO per sender)."""
    while not stop.is_set():
        for report in await client.reports(block_ms=100):
            if report.get("type") == "cash" and report.get("status") == status:
                into.record_value(time.perf_counter_ns() - sent.popleft())


async def _warm_up(senders: list[ExchangeClient], ins: list[ExchangeClient]) -> None:
    """One transfer per participant, credited, before the clock starts: sixteen processes have just
    started on the machine, and the first transfers would time their start-up."""
    for k, sender in enumerate(senders):
        await sender.send("transfer_cash", client_order_id=f"w{k}", amount="0.01", to_partition=2)
    for client in ins:
        credited = f"no credit of {client.participant}'s warm-up transfer"
        await first_report(client, lambda r: r.get("status") == "transferred_in", credited, timeout=60)
    await asyncio.sleep(2.0)


async def run(rate: float, seconds: float, participants: int) -> None:
    shutil.rmtree(HOME, ignore_errors=True)
    settings = private_settings(HOME, partitions=2, web_port=0)
    quiet = {"GREENEX_LOG_LEVEL": "WARNING"}
    async with local_exchange(settings, HOME / "redis", log_dir=HOME / "log", env=quiet):
        venue = Venue(settings)
        try:
            names = [f"tb{n}" for n in range(participants)]
            for name in names:
                await venue.onboard(name, name)
                op = venue.operator
                await op.operator("deposit_cash", f"d-{name}", participant=name, amount="1000000.00")
                await op.operator("set_limits", f"l-{name}", participant=name, commands_per_s=100_000,
                                  burst=100_000)  # fmt: skip
            senders = [await venue.client(name, 1).from_now() for name in names]
            await _warm_up(senders, [await venue.client(name, 2).from_now() for name in names])
            outs = [await venue.client(name, 1).from_now() for name in names]
            ins = [await venue.client(name, 2).from_now() for name in names]
            stop = asyncio.Event()
            out_times, in_times = HdrHistogram(1, 60 * 10**9, 3), HdrHistogram(1, 60 * 10**9, 3)
            pending_out = [deque[int]() for _ in names]
            pending_in = [deque[int]() for _ in names]
            readers = [
                *(asyncio.create_task(_collect(c, "transferred_out", q, out_times, stop))
                  for c, q in zip(outs, pending_out, strict=True)),
                *(asyncio.create_task(_collect(c, "transferred_in", q, in_times, stop))
                  for c, q in zip(ins, pending_in, strict=True)),
            ]  # fmt: skip
            total = int(rate * seconds)
            start = time.perf_counter()
            for n in range(total):
                due = start + n / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                k = n % len(names)
                now = time.perf_counter_ns()
                pending_out[k].append(now)
                pending_in[k].append(now)
                await senders[k].send("transfer_cash", client_order_id=f"t{n}", amount="0.01", to_partition=2)
            deadline = time.perf_counter() + 60
            while min(in_times.get_total_count(), out_times.get_total_count()) < total:
                if time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*readers)
            verdict = partition_problems(await read_partitions(settings, venue.redis(OPERATOR_USER)))
        finally:
            await venue.offboard()
            await venue.aclose()
    shutil.rmtree(HOME, ignore_errors=True)
    print(run_line(rate=rate, seconds=seconds, participants=participants))
    for label, hist in (("debited (transferred_out)", out_times), ("credited (transferred_in)", in_times)):
        ms = summary_ms(hist)
        print(f"{label}: {ms['count']:.0f}/{total} reported; p50 {ms['p50']:.1f} ms, p99 {ms['p99']:.1f} ms, "
              f"max {ms['max']:.1f} ms")  # fmt: skip
    print(f"in flight at the end: {len(verdict.in_flight)}; problems: {verdict.problems or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="transfers per second, planned")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--participants", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.participants))


if __name__ == "__main__":
    main()
