"""Matching's own reports (services/matching/reports.py): after a restore from a snapshot they are the
reports the publisher's projection of the whole log makes, and answers the log already holds are folded
but not reported again."""

from __future__ import annotations

import msgspec
import pytest

from loadtests.order_stream import BENCH_INSTRUMENTS
from services.intake.reports import Reporter
from services.matching.engine import MatchingEngine
from services.matching.processor import MatchingProcessor
from services.matching.reports import MatchingReports
from services.matching.snapshot import decode_engine, encode_engine
from shared.eventlog.effects import SEQ_PLACEHOLDER, Effect
from shared.keys import Keys
from shared.order_reports import report_effect
from tests.unit.test_snapshot_matching import SEEDS, commands

KEYS = Keys("mr")


def _data(effect: Effect) -> bytes:
    """The report a report's XADD carries."""
    data = effect.args[2]
    assert isinstance(data, bytes)
    return data


@pytest.mark.parametrize("seed", SEEDS)
def test_reports_after_a_restore_are_those_of_the_whole_log(seed: int) -> None:
    """Snapshot mid-stream (orders resting, partly filled, amended, halted books), restore, and report
    the tail from what the restored book remembers: every report, fill prices included, equals what a
    projection that saw the stream from its first event writes."""
    cmds = commands(seed, 4000)
    whole, engine = Reporter(), MatchingEngine(BENCH_INSTRUMENTS)
    head = [event for cmd in cmds[: len(cmds) // 2] for event in engine.decide(cmd)]
    for seq, event in enumerate(head, start=1):
        whole.order_reports(seq, event)

    processor = MatchingProcessor()
    processor.engine = decode_engine(encode_engine(engine))  # what a restart restores
    reports = MatchingReports(processor, KEYS)
    reports.restored()
    fills = 0
    for seq, event in enumerate((e for cmd in cmds[len(cmds) // 2 :] for e in processor.engine.decide(cmd)),
                                start=len(head) + 1):  # fmt: skip
        expected = [report_effect(KEYS, d) for d in whole.order_reports(seq, event)]
        written = reports(event, True)
        completed = [e._replace(args=(*e.args[:2], _data(e).replace(SEQ_PLACEHOLDER, b"%d" % seq)),
                                reports=0) for e in written]  # fmt: skip
        assert completed == expected, (seq, event)
        fills += sum(b'"exec_type":"trade"' in _data(e) for e in written)
    assert fills > 100  # the tail fills orders that rested before the snapshot


def test_answers_the_log_holds_are_folded_not_reported() -> None:
    """On a restart the follower feeds answers already logged with write False: remembered, not sent."""
    processor = MatchingProcessor()
    processor.engine = MatchingEngine(BENCH_INSTRUMENTS)
    reports = MatchingReports(processor, KEYS)
    events = [event for cmd in commands(SEEDS[0], 300) for event in processor.engine.decide(cmd)]
    assert all(reports(event, False) == [] for event in events)
    assert reports.memory.orders  # the open orders are remembered all the same
    written = reports(events[0], True)
    sent = [msgspec.json.decode(_data(e).replace(SEQ_PLACEHOLDER, b"1")) for e in written]
    assert sent
    assert all(r["seq"] == 1 for r in sent)
