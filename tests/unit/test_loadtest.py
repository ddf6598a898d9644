"""The load test's pure parts: the open-loop plan, latency from the planned time, percentiles, the sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from loadtests.cpu import cpu_per_order_us
from loadtests.flow import build_flow, parse_mix
from loadtests.hdr import summary_ms
from loadtests.openloop import LatencyBook, due_until, new_histogram, schedule
from loadtests.redis_stats import per_order
from loadtests.sweep import RateSearch, sustained_runs
from loadtests.sweep_plot import sweep_plot
from shared.protocol import sign

MS = 1_000_000


def test_schedule_spaces_sends_evenly_by_rate_and_duration() -> None:
    """1,000/s for 2 s is 2,000 sends 1 ms apart, planned before the run starts."""
    plan = schedule(1000, duration_s=2)
    assert len(plan) == 2000
    assert plan.offsets_ns[:3] == [0, MS, 2 * MS]
    assert plan.offsets_ns[-1] == 1999 * MS


def test_schedule_by_count_and_rejects_ambiguous_bounds() -> None:
    """A count bounds the plan instead of a duration; exactly one of them must be given."""
    assert schedule(3, count=4).offsets_ns == [0, 333_333_333, 666_666_667, 1_000_000_000]
    with pytest.raises(ValueError, match="exactly one"):
        schedule(10, duration_s=1, count=5)
    with pytest.raises(ValueError, match="positive"):
        schedule(0, count=5)


def test_due_until_sends_everything_whose_time_came_in_one_batch() -> None:
    """A sender that wakes late sends all overdue orders at once (it never skips or delays the plan)."""
    offsets = [0, 10, 20, 30, 40]
    assert due_until(offsets, 0, 0) == 1
    assert due_until(offsets, 1, 5) == 1  # nothing new is due yet
    assert due_until(offsets, 1, 35) == 4  # woke up late: three are overdue, all go now
    assert due_until(offsets, 4, 10_000) == 5


def test_latency_counts_from_the_scheduled_time_not_the_send_time() -> None:
    """Coordinated omission corrected: a report 7 ms after a plan slot is 7 ms, however late the send was."""
    book = LatencyBook()
    book.expect("alice", "o1", scheduled_ns=100 * MS)
    new = {"type": "execution_report", "exec_type": "new", "client_order_id": "o1", "seq": 5}
    book.on_report("alice", new, received_ns=107 * MS)
    trade = {
        "type": "execution_report", "exec_type": "trade", "client_order_id": "o1",
        "liquidity": "taker", "trade_id": 9, "seq": 6,
    }  # fmt: skip
    book.on_report("alice", trade, received_ns=109 * MS)
    book.on_report("alice", {**trade, "trade_id": 10, "seq": 7}, received_ns=111 * MS)  # second fill
    book.on_report("alice", {"type": "settlement", "trade_id": 9}, received_ns=112 * MS)
    assert book.ack.get_max_value() == pytest.approx(7 * MS, rel=1e-3)
    assert book.match.get_total_count() == 1  # only the first taker fill is match latency
    assert book.match.get_max_value() == pytest.approx(9 * MS, rel=1e-3)
    assert book.settle.get_max_value() == pytest.approx(3 * MS, rel=1e-3)
    assert book.match_seqs == [(6, 109 * MS)]
    assert book.unanswered() == 0


def test_cancel_is_acknowledged_by_the_cancelled_report_of_its_target() -> None:
    """The `cancelled` report names the cancelled order; it answers the cancel request that asked for it."""
    book = LatencyBook()
    book.expect("bob", "o1", 0)
    book.expect("bob", "o2", 5 * MS, cancels="o1")
    book.on_report("bob", {"type": "execution_report", "exec_type": "new", "client_order_id": "o1"}, MS)
    cancelled: dict[str, object] = {
        "type": "execution_report", "exec_type": "cancelled", "client_order_id": "o1",
        "reason": {"code": "user_cancel", "text": "user cancel"},
    }  # fmt: skip
    book.on_report("bob", cancelled, 8 * MS)
    assert book.unanswered() == 0
    assert book.ack.get_max_value() == pytest.approx(3 * MS, rel=1e-3)


def test_unanswered_orders_count_until_the_end_instead_of_vanishing() -> None:
    """An order that never got an answer is recorded with the time it waited so far."""
    book = LatencyBook()
    book.expect("carol", "o1", 0)
    book.record_unanswered(now_ns=2_000 * MS)
    assert book.unanswered() == 1
    assert book.ack.get_max_value() == pytest.approx(2_000 * MS, rel=1e-3)


def test_summary_gives_percentiles_in_ms() -> None:
    """p50 of 1..100 ms is 50 ms, p99 is 99 ms, max is 100 ms (HdrHistogram at 3 significant digits)."""
    hist = new_histogram()
    for ms in range(1, 101):
        hist.record_value(ms * MS)
    s = summary_ms(hist)
    assert s["count"] == 100
    assert s["p50"] == pytest.approx(50, rel=1e-3)
    assert s["p99"] == pytest.approx(99, rel=1e-3)
    assert s["max"] == pytest.approx(100, rel=1e-3)
    assert summary_ms(new_histogram())["p99"] == 0.0


def test_rate_search_doubles_then_bisects_to_the_highest_passing_rate() -> None:
    """With a true limit of 5,000/s: 1k, 2k, 4k pass, 8k fails, then bisection closes in on 5k."""
    search = RateSearch(start=1000, resolution=0.05)
    tried = []
    while (rate := search.next_rate()) is not None:
        tried.append(rate)
        search.record(rate, rate <= 5000)
    assert tried[:4] == [1000, 2000, 4000, 8000]
    assert search.passed is not None
    assert 4750 <= search.passed <= 5000
    assert search.failed is not None
    assert search.failed <= search.passed * 1.05


def test_rate_search_goes_down_when_the_first_rate_fails() -> None:
    """A machine that cannot do the start rate is halved until it passes or reaches the floor."""
    search = RateSearch(start=1000, floor=100)
    while (rate := search.next_rate()) is not None:
        search.record(rate, rate <= 300)
    assert search.passed is not None
    assert 250 <= search.passed <= 300


def test_sustained_needs_answers_the_planned_rate_and_a_p99_under_the_limit() -> None:
    """A run passes only when nothing went unanswered, the plan was kept and p99 match is in bounds."""
    good = {"rate": 1000, "achieved_rate": 999, "unanswered": 0, "match_ms": {"count": 10, "p99": 4.0}}
    assert sustained_runs([good], 10)
    assert not sustained_runs([{**good, "unanswered": 1}], 10)
    assert not sustained_runs([{**good, "achieved_rate": 900}], 10)
    assert not sustained_runs([{**good, "match_ms": {"count": 10, "p99": 12.0}}], 10)
    assert not sustained_runs([], 10)


def test_several_runs_at_a_rate_are_judged_by_their_median_p99() -> None:
    """One stalled run of three does not fail a rate; two do; an unanswered order in any run does."""

    def run(p99: float, unanswered: int = 0) -> dict[str, Any]:
        return {"rate": 1000, "achieved_rate": 1000, "unanswered": unanswered,
                "match_ms": {"count": 10, "p99": p99}}  # fmt: skip

    assert sustained_runs([run(6), run(106), run(8)], 10)
    assert not sustained_runs([run(6), run(106), run(61)], 10)
    assert not sustained_runs([run(6), run(7, unanswered=1), run(8)], 10)


def test_flow_is_signed_seeded_and_cancels_only_the_senders_own_orders() -> None:
    """Every payload carries a valid signature; the same seed gives the same bytes."""
    flow = build_flow(
        300, clients=3, instruments=2, mix=parse_mix("passive=50,marketable=30,cancel=20"), seed=1
    )
    assert [o.payload for o in flow] == [
        o.payload for o in build_flow(300, 3, 2, parse_mix("passive=50,marketable=30,cancel=20"), 1)
    ]
    placed: dict[str, str] = {}
    for order in flow:
        cmd = msgspec.json.decode(order.payload)
        assert cmd["sig"] == sign(cmd, f"loadtest-secret-{cmd['participant']}")
        if cmd["type"] == "new_order":
            placed[cmd["client_order_id"]] = cmd["participant"]
        else:
            assert order.cancels == cmd["orig_client_order_id"]
            assert placed[cmd["orig_client_order_id"]] == cmd["participant"]
    assert any(o.cancels for o in flow)


def test_parse_mix_normalizes_and_refuses_unknown_kinds() -> None:
    """Shares are relative weights; a typo in a kind is an error, not a silent zero."""
    assert parse_mix("passive=3,cancel=1") == {"passive": 0.75, "cancel": 0.25}
    with pytest.raises(ValueError, match="unknown order kind"):
        parse_mix("pasive=1")


def test_sweep_plot_draws_every_run_and_refuses_none(tmp_path: Path) -> None:
    """The sweep picture is a PNG with the runs in it (a run more makes a different picture); an empty
    sweep is refused rather than drawn as an empty chart."""

    def run(rate: float, p99: float) -> dict[str, Any]:
        return {"rate": rate, "sustained": p99 <= 10, "match_ms": {"p50": p99 / 3, "p99": p99}}

    two = sweep_plot([run(1000, 6), run(2000, 14)], 10.0, "t", tmp_path / "two.png")
    three = sweep_plot([run(1000, 6), run(2000, 14), run(1500, 9)], 10.0, "t", tmp_path / "three.png")
    assert two.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert two.read_bytes() != three.read_bytes()
    with pytest.raises(ValueError, match="at least one run"):
        sweep_plot([], 10.0, "t", tmp_path / "none.png")


def test_cpu_per_order_divides_each_share_by_the_rate() -> None:
    """0.34 cores at 1,000 orders/s is 340 us of CPU per order; no rate, no figure."""
    assert cpu_per_order_us({"intake": 0.34, "redis-server": 0.4}, 1000.0) == {
        "intake": 340.0,
        "redis-server": 400.0,
    }
    assert cpu_per_order_us({"intake": 0.43}, 5000.0) == {"intake": 86.0}
    assert cpu_per_order_us({"intake": 0.34}, 0.0) == {}


def test_redis_work_per_order_is_the_difference_of_two_readings_over_the_orders() -> None:
    """Commands not called in between are left out; the costliest first."""
    before = {"evalsha": (100, 5_000), "xadd": (10, 100), "ping": (7, 7)}
    after = {"evalsha": (300, 25_000), "xadd": (410, 2_100), "ping": (7, 7), "xread": (50, 1_000)}
    assert per_order(before, after, 100) == {
        "evalsha": {"calls": 2.0, "us": 200.0},
        "xadd": {"calls": 4.0, "us": 20.0},
        "xread": {"calls": 0.5, "us": 10.0},
    }
    assert per_order(before, after, 0) == {}
