"""Cash moved between partitions: each transfer debited once in its source and credited once in its
destination, whatever order the relays run in and however often one is started again; conservation across
partitions holds at every step, counting what is in flight. Over in-process partitions (services/harness.py)
with the real intake, verification, settlement and transfers cores."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.cli.partitions import Partitions, partition_problems
from services.cli.readmodel import replay_log
from services.harness import InProcessExchange
from services.transfers.credits import Credits
from services.transfers.service import credited_up_to
from shared.eventlog.auth import IN_MEMORY_KEYS
from shared.eventlog.entry import position_of_seq
from shared.eventlog.port import DuplicateAppend
from shared.partitions import transfer_event_id, transfer_of_causation
from tests.support import FakeClock

PEOPLE = ("alice", "bob")
SECRETS = {name: secrets.token_hex(16) for name in PEOPLE}

# (kind, partition, other partition, participant, whole CNY)
Step = tuple[str, int, int, str, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(("deposit", "transfer", "transfer", "relay", "relay_again", "withdraw")),
        st.integers(1, 3), st.integers(1, 3), st.sampled_from(PEOPLE), st.integers(1, 500),
    ),
    max_size=25,
)  # fmt: skip


class Exchange3:
    """Three partitions, each a whole in-process exchange; the relays are the transfers core run by hand."""

    def __init__(self) -> None:
        clock = FakeClock()
        self.parts = {
            p: InProcessExchange(clock=clock, partition=p, partitions=3, venue="greenex-test")
            for p in (1, 2, 3)
        }
        self.cids = iter(range(1, 10**9))
        self.sent = 0  # transfers granted, for the test's own count

    async def start(self) -> None:
        for ex in self.parts.values():
            await ex.submit([ex.register(name, SECRETS[name]) for name in PEOPLE])

    async def operator(self, p: int, action: str, **args: Any) -> None:
        ex = self.parts[p]
        await ex.submit([ex.operator_command(f"op-{next(self.cids)}", action, **args)])

    async def transfer(self, p: int, to: int, who: str, cny: int) -> None:
        """As the participant itself: a signed `transfer_cash` on its own stream."""
        ex = self.parts[p]
        command = ex.command(who, SECRETS[who], type="transfer_cash", client_order_id=f"t-{next(self.cids)}",
                             amount=f"{cny}.00", to_partition=to)  # fmt: skip
        await ex.submit([(who, command)])

    async def relay(self, dest: int) -> int:
        """One start of partition `dest`'s transfers process: from what its log holds, credit what is due."""
        own = self.parts[dest]
        credited = 0
        for source in (s for s in self.parts if s != dest):
            credits = Credits(dest, source, IN_MEMORY_KEYS, 0)
            credits.credited_up_to = await credited_up_to(own.log, credits, IN_MEMORY_KEYS)
            due = credits.due(await self.parts[source].log.read(credits.credited_up_to, 100_000))
            if due:
                position = position_of_seq(due[-1][0].seq)
                await own.log.append(credits.producer, [n for _, n in due], position=position)
                credited += len(due)
        await own.settle()
        return credited

    async def view(self) -> Partitions:
        return Partitions({p: await replay_log(ex.log) for p, ex in self.parts.items()})


async def one_transfer_credited(source: int, dest: int, who: str) -> Exchange3:
    """Three partitions where `who` deposited 100 CNY in `source` and moved 50 to `dest`, credited there."""
    ex = Exchange3()
    await ex.start()
    await ex.operator(source, "deposit_cash", participant=who, amount="100.00")
    await ex.transfer(source, dest, who, 50)
    assert await ex.relay(dest) == 1
    return ex


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@settings(max_examples=40, deadline=None)
@given(steps)
def test_every_transfer_is_debited_and_credited_once(plan: list[Step]) -> None:
    async def scenario() -> None:
        ex = Exchange3()
        await ex.start()
        for kind, p, q, who, cny in plan:
            if kind == "deposit":
                await ex.operator(p, "deposit_cash", participant=who, amount=f"{cny}.00")
            elif kind == "withdraw":
                await ex.operator(p, "withdraw_cash", participant=who, amount=f"{cny}.00")
            elif kind == "transfer":
                await ex.transfer(p, q, who, cny)
            else:
                await ex.relay(p)
                if kind == "relay_again":  # a restart right after: nothing is credited twice
                    assert await ex.relay(p) == 0
            verdict = partition_problems(await ex.view())
            assert verdict.problems == []
        for p in ex.parts:
            await ex.relay(p)
        view = await ex.view()
        verdict = partition_problems(view)
        assert verdict.problems == []
        assert verdict.in_flight == []
        sent = sum(len(s.transfers_out) for s in view.states.values())
        assert sent == sum(len(s.transfers_in) for s in view.states.values())
        granted = sum(1 for kind, p, q, *_ in plan if kind == "transfer" and p != q)
        assert sent <= granted  # some were refused (funds), none was made up

    _run(scenario())


def test_a_transfer_is_in_flight_until_credited_and_refusals_change_nothing() -> None:
    async def scenario() -> None:
        ex = Exchange3()
        await ex.start()
        await ex.operator(1, "deposit_cash", participant="alice", amount="1000.00")
        await ex.transfer(1, 2, "alice", 400)
        await ex.transfer(1, 2, "alice", 700)  # beyond the 600 left: refused by verification
        await ex.transfer(1, 1, "alice", 1)  # to itself: refused by intake
        await ex.transfer(1, 4, "alice", 1)  # to a partition the exchange does not run
        verdict = partition_problems(await ex.view())
        assert verdict.problems == []
        assert [(t.participant, t.amount, t.destination) for t in verdict.in_flight] == [("alice", 40_000, 2)]
        reports = [msgspec.to_builtins(d.report) for d in ex.parts[1].reports if d.participant == "alice"]
        cash = [(r["status"], r.get("partition"), r.get("reason", {}).get("code"))
                for r in reports if r["type"] == "cash"]  # fmt: skip
        assert cash == [
            ("deposited", None, None), ("transferred_out", 2, None), ("rejected", None, "insufficient_funds")
        ]
        refused = [r["reason"]["code"] for r in reports if r["type"] == "execution_report" and "reason" in r]
        assert refused == ["unknown_partition", "unknown_partition"]
        assert await ex.relay(2) == 1
        view = await ex.view()
        verdict = partition_problems(view)
        assert verdict.problems == []
        assert verdict.in_flight == []
        assert view.states[1].settlement.balances()["alice"] == 60_000
        assert view.states[2].settlement.balances()["alice"] == 40_000
        into = [msgspec.to_builtins(d.report) for d in ex.parts[2].reports if d.participant == "alice"]
        request = next(iter(view.states[1].transfers_out))
        assert [r for r in into if r["type"] == "cash"] == [
            {"type": "cash", "seq": view.states[2].seq, "status": "transferred_in", "amount": "400.00",
             "partition": 1, "transfer_seq": request},
        ]  # fmt: skip

    _run(scenario())


def test_the_position_refuses_a_second_credit_and_the_log_alone_finds_the_first() -> None:
    """A relay that credits again what it credited (its position lost, say) is refused by the append; one
    whose positions hash is gone still reads in its own entries how far it got."""

    async def scenario() -> None:
        ex = await one_transfer_credited(1, 3, "bob")
        again = Credits(3, 1, IN_MEMORY_KEYS, 0)  # started from nothing: it would credit the transfer again
        due = again.due(await ex.parts[1].log.read(0, 1000))
        assert len(due) == 1
        position = position_of_seq(due[0][0].seq)
        with pytest.raises(DuplicateAppend):  # the append script refuses a second credit of the transfer
            await ex.parts[3].log.append(again.producer, [n for _, n in due], position=position)
        ex.parts[3].log._positions.clear()  # the positions hash lost: the log still says
        fresh = Credits(3, 1, IN_MEMORY_KEYS, 0)
        assert await credited_up_to(ex.parts[3].log, fresh, IN_MEMORY_KEYS) == due[0][0].seq

    _run(scenario())


def test_a_copy_of_a_genuine_debit_is_not_credited_again_and_a_double_credit_is_named() -> None:
    """A byte-copy of a genuine CashTransferredOut appended later (tags still verify) names a request
    already credited: the relay skips it. A credit forced in twice is caught by the global check."""

    async def scenario() -> None:
        ex = await one_transfer_credited(2, 1, "alice")
        source = ex.parts[2].log
        out = next(e for e in await source.read(0, 1000) if e.type == "CashTransferredOut")
        await source.append(out.producer, [_new(out)])  # the same content again, under its producer's tag
        assert await ex.relay(1) == 0
        # Forced: a second credit under another producer's name, which no position guards.
        credit = next(e for e in await ex.parts[1].log.read(0, 1000) if e.type == "CashTransferredIn")
        ref = transfer_of_causation(credit.causation.removeprefix("xfer:"))
        assert ref is not None
        await ex.parts[1].log.append("transfers.p9", [_new(credit, transfer_event_id("transfers.p9", ref))])
        problems = partition_problems(await ex.view()).problems
        assert f"transfer {ref} is debited 2 times in partition 2" in problems
        assert f"transfer {ref} is credited 2 times in partition 1" in problems

    _run(scenario())


def test_a_transfer_reaches_a_participant_not_registered_in_the_destination_yet() -> None:
    """Onboarding registers a participant partition by partition, so a credit can come first. Settlement
    there opens the participant's account with it (it stopped on an unknown participant before), and the
    registration that follows keeps the cash. Holding the credit back instead would hold every later
    transfer from that source behind it."""

    async def scenario() -> None:
        ex = Exchange3()
        await ex.start()
        late = "carol"
        SECRETS.setdefault(late, secrets.token_hex(16))
        await ex.parts[1].submit([ex.parts[1].register(late, SECRETS[late])])
        await ex.operator(1, "deposit_cash", participant=late, amount="10.00")
        await ex.transfer(1, 2, late, 4)
        await ex.transfer(1, 2, "alice", 0)  # refused (not positive): changes nothing
        await ex.operator(1, "deposit_cash", participant="alice", amount="5.00")
        await ex.transfer(1, 2, "alice", 5)  # behind carol's: not held back by it
        assert await ex.relay(2) == 2
        view = await ex.view()
        assert partition_problems(view).problems == []
        assert partition_problems(view).in_flight == []
        assert view.states[2].settlement.balances()[late] == 400
        await ex.parts[2].submit([ex.parts[2].register(late, SECRETS[late])])
        view = await ex.view()
        assert partition_problems(view).problems == []
        assert view.states[2].settlement.balances()[late] == 400

    _run(scenario())


def _new(entry: Any, event_id: str | None = None) -> Any:
    from shared.eventlog.entry import NewEntry  # noqa: PLC0415

    return NewEntry(event_id=event_id or entry.event_id, causation=entry.causation, type=entry.type,
                    event_ns=entry.event_ns, body=entry.body)  # fmt: skip
