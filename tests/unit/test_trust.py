"""The trust boundary in the pure cores (through the in-process harness): keys sealed and rotated,
limits, producer tags and signed checkpoints. The Redis side (ACLs, NOPERM): tests/integration/test_acl.py."""

from __future__ import annotations

import stat
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from services.checkpoint.due import due_checkpoints
from services.harness import InProcessExchange, Input
from services.intake.keystore import SigningKeys
from services.runtime.follower import LogFollower
from services.runtime.snapshots import decode_record, encode_record, new_snapshot
from services.settlement.core import Settlement
from shared.crypto import CheckpointKey, Sealer, seal_to_exchange
from shared.domain.ledger import KeyRotated, LogCheckpoint, ParticipantRegistered
from shared.eventlog.auth import IN_MEMORY_KEYS, ProducerKeys
from shared.eventlog.entry import Entry, NewEntry, content_digest, encode_content, entry_of, link_hash
from shared.eventlog.memory import InMemoryEventLog
from shared.eventlog.port import LogCorrupt
from shared.eventlog.verify import ChainVerifier, verify_entries
from shared.keyring import KeyMissing, KeyRing
from shared.partitions import partition_of_signed_venue, partition_venue
from shared.protocol import rotate_key_context
from shared.reports import ExecutionReport, KeyReport
from tests.support import FakeClock

SECOND = 1_000_000_000


class Clock:
    """A clock the test moves by hand (FakeClock moves itself)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000 * SECOND

    def __call__(self) -> int:
        return self.now


async def _exchange(clock: Clock) -> InProcessExchange:
    exchange = InProcessExchange(clock=clock)
    spec = {"symbol": "SZEA-T", "kind": "allowance", "standard": "SZEA", "registry": "SZ", "vintage": 2025,
            "reference_price": "50.00"}  # fmt: skip
    await exchange.submit([
        exchange.operator_command("op-1", "list_instrument", **spec),
        exchange.register("ann", "ann-key-0123456789"),
        exchange.operator_command("op-2", "deposit_cash", participant="ann", amount="100000.00"),
    ])  # fmt: skip
    return exchange


def _order(exchange: InProcessExchange, key: str, cid: str, price: str = "49.00") -> Input:
    fields = {"instrument": "SZEA-T", "side": "buy", "order_type": "limit", "price": price, "quantity": 1}
    return "ann", exchange.command("ann", key, type="new_order", client_order_id=cid, **fields)


def _outcomes(exchange: InProcessExchange) -> dict[str, str]:
    """client order id -> exec type, or `rejected:<reason>`."""
    out: dict[str, str] = {}
    for delivery in exchange.reports:
        report = delivery.report
        if isinstance(report, ExecutionReport) and delivery.participant == "ann":
            reason = "" if isinstance(report.reason, msgspec.UnsetType) else f":{report.reason.code}"
            out[report.client_order_id] = f"{report.exec_type}{reason}"
    return out


async def test_an_operator_rotation_keeps_the_old_key_only_for_the_overlap() -> None:
    """After rotate_key with a 60 s overlap, both keys sign; past it only the new one does."""
    clock = Clock()
    exchange = await _exchange(clock)
    new_key = "ann-new-key-0123456789"
    sealed = msgspec.to_builtins(exchange.sealer.seal(new_key.encode(), "ann", "k2"))
    await exchange.submit(
        [exchange.operator_command("op-r", "rotate_key", participant="ann", key=sealed, overlap_s=60)]
    )
    clock.now += 30 * SECOND
    await exchange.submit(
        [_order(exchange, "ann-key-0123456789", "old-1"), _order(exchange, new_key, "new-1")]
    )
    clock.now += 60 * SECOND
    await exchange.submit(
        [_order(exchange, "ann-key-0123456789", "old-2"), _order(exchange, new_key, "new-2")]
    )
    outcomes = _outcomes(exchange)
    assert (outcomes["old-1"], outcomes["new-1"], outcomes["new-2"]) == ("new", "new", "new")
    assert outcomes["old-2"] == "rejected:bad_signature"
    assert [d.report.requested_by for d in exchange.reports if isinstance(d.report, KeyReport)] == [
        "operator"
    ]


async def test_a_participant_rotates_its_own_key_sealed_to_the_exchange() -> None:
    """rotate_key signed with the current key carries the new one sealed to the exchange's box key: the
    log holds it sealed under the KEK, never in the clear, and the new key signs from then on."""
    clock = Clock()
    exchange = await _exchange(clock)
    new_key = "ann-self-chosen-key-0123"
    boxed = seal_to_exchange(
        exchange.box.public_key, new_key.encode(), rotate_key_context(exchange.venue, "ann", "rot-1")
    )
    rotate = exchange.command("ann", "ann-key-0123456789", type="rotate_key", client_order_id="rot-1",
                              new_key=msgspec.to_builtins(boxed), overlap_s=0)  # fmt: skip
    await exchange.submit([("ann", rotate)])
    clock.now += SECOND
    await exchange.submit([_order(exchange, new_key, "n1"), _order(exchange, "ann-key-0123456789", "o1")])
    assert (_outcomes(exchange)["n1"], _outcomes(exchange)["o1"]) == ("new", "rejected:bad_signature")
    log_bytes = b"".join(e.body for e in await exchange.log.read(0, 10_000))
    assert new_key.encode() not in log_bytes
    assert b"ann-key-0123456789" not in log_bytes
    # A box opened for another command (replayed into another rotation) does not open.
    replay = exchange.command("ann", new_key, type="rotate_key", client_order_id="rot-2",
                              new_key=msgspec.to_builtins(boxed))  # fmt: skip
    await exchange.submit([("ann", replay)])
    assert _outcomes(exchange)["rot-2"] == "rejected:malformed"


async def test_rate_and_open_order_limits_refuse_with_their_own_codes() -> None:
    """Two commands a second with a burst of two: the third at once is throttled (its id unspent: sent
    again later it passes); with at most two open orders the third resting order is refused."""
    clock = Clock()
    exchange = await _exchange(clock)
    limits = {"participant": "ann", "commands_per_s": 2, "burst": 2, "max_open_orders": 2}
    await exchange.submit([exchange.operator_command("op-l", "set_limits", **limits)])
    clock.now += 10 * SECOND
    orders = [_order(exchange, "ann-key-0123456789", f"b{i}", price=f"49.{i}0") for i in range(3)]
    await exchange.submit(orders)
    assert _outcomes(exchange)["b2"] == "rejected:rate_limited"
    clock.now += 2 * SECOND
    await exchange.submit([orders[2]])  # the same signed entry, a moment later: not a duplicate
    assert _outcomes(exchange)["b2"] == "rejected:too_many_open_orders"


def _check_all(verifier: ChainVerifier, entries: list[Entry]) -> None:
    for entry in entries:
        verifier.check(entry)


def _chain(producer_keys: ProducerKeys, contents: list[tuple[NewEntry, str]]) -> list[Entry]:
    """Entries sealed in a row, tagged with `producer_keys` (what a writer holding them could forge)."""
    out: list[Entry] = []
    prev = bytes(20)
    for seq, (new, producer) in enumerate(contents, start=1):
        content = producer_keys.content(new, producer, 1)
        link = link_hash(prev, seq, content_digest(encode_content(content)))
        out.append(entry_of(content, seq=seq, prev_hash=prev, hash=link))
        prev = link
    return out


def _new(i: int, type_: str = "InstrumentHalted", body: bytes = b"\x80") -> NewEntry:
    return NewEntry(event_id=f"e{i}", causation=f"in:test:{i}-0", type=type_, event_ns=i, body=body)


def test_an_entry_tagged_without_the_producers_key_is_named() -> None:
    """A chain that links perfectly, but whose entry 3 was tagged by someone without the keys: the chain
    alone verifies, the tags name seq 3."""
    entries = _chain(IN_MEMORY_KEYS, [(_new(1), "matching"), (_new(2), "matching")])
    forged = ProducerKeys(b"\x01" * 32).content(_new(3), "matching", 1)
    prev = entries[-1].hash
    entries.append(
        entry_of(
            forged, seq=3, prev_hash=prev, hash=link_hash(prev, 3, content_digest(encode_content(forged)))
        )
    )
    assert verify_entries(entries).ok
    verifier = ChainVerifier(producer_keys=IN_MEMORY_KEYS)
    with pytest.raises(LogCorrupt) as bad:
        _check_all(verifier, entries)
    assert (bad.value.seq, bad.value.reason) == (
        3,
        "not written by 'matching': its producer tag does not verify",
    )


def test_a_signed_checkpoint_catches_a_rewritten_history_that_links_and_tags_perfectly() -> None:
    """An insider with the producer keys rewrites entry 2 and reseals the whole chain: links and tags
    all verify, but the checkpoint the exchange signed over seq 4 no longer does."""
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    key = CheckpointKey(raw)
    original = _chain(IN_MEMORY_KEYS, [(_new(i), "matching") for i in range(1, 5)])
    (checkpoint,) = due_checkpoints(original, every=4, key=key, venue="v")
    body = msgspec.msgpack.encode(checkpoint)
    tail = (
        NewEntry(event_id="cp", causation="log:4", type="LogCheckpoint", event_ns=9, body=body),
        "checkpoint",
    )
    honest = _chain(IN_MEMORY_KEYS, [*((_new(i), "matching") for i in range(1, 5)), tail])
    verifier = ChainVerifier(producer_keys=IN_MEMORY_KEYS, checkpoint_key=key.public_key)
    for entry in honest:
        verifier.check(entry)
    assert (verifier.checkpoints, verifier.last_checkpoint_seq) == (1, 4)
    rewritten = _chain(IN_MEMORY_KEYS, [(_new(1), "matching"), (_new(2, body=b"\x81\xa1x\x01"), "matching"),
                                        *((_new(i), "matching") for i in (3, 4)), tail])  # fmt: skip
    assert verify_entries(rewritten).ok
    checked = ChainVerifier(producer_keys=IN_MEMORY_KEYS, checkpoint_key=key.public_key)
    with pytest.raises(LogCorrupt) as bad:
        _check_all(checked, rewritten)
    assert (bad.value.seq, bad.value.reason) == (
        5,
        "checkpoint of seq 4 refused: its link for seq 4 is not the log's",
    )
    other = CheckpointKey(
        Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    )
    wrong_key = ChainVerifier(checkpoint_key=other.public_key)
    with pytest.raises(LogCorrupt, match="signed by key"):
        _check_all(wrong_key, honest)


def test_checkpoints_fall_on_seq_multiples_and_closes_of_day() -> None:
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    key = CheckpointKey(raw)
    types = {7: "TradingDayClosed"}
    entries = _chain(
        IN_MEMORY_KEYS, [(_new(i, types.get(i, "InstrumentHalted")), "intake") for i in range(1, 21)]
    )
    due = due_checkpoints(entries, every=10, key=key, venue="v")
    assert [(c.seq, c.reason) for c in due] == [(7, "close_of_day"), (10, "interval"), (20, "interval")]
    assert [c.previous for c in due] == [0, 7, 10]
    assert due == due_checkpoints(entries, every=10, key=key, venue="v")  # deterministic signatures


def test_a_checkpoint_removed_from_between_two_others_is_named() -> None:
    """Each checkpoint signs the seq of the one before it: an insider who drops one (the only way to
    hide a rewrite of what it covers) and re-chains and re-tags the log is named at the next one."""
    key = CheckpointKey(Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                                   NoEncryption()))  # fmt: skip
    plain = [(_new(i), "intake") for i in range(1, 13)]
    first, second, third = due_checkpoints(_chain(IN_MEMORY_KEYS, plain), every=4, key=key, venue="v")

    def signed(checkpoint: LogCheckpoint) -> tuple[NewEntry, str]:
        body = msgspec.msgpack.encode(checkpoint)
        new = NewEntry(event_id=f"checkpoint:{checkpoint.seq}:0", causation=f"log:{checkpoint.seq}",
                       type="LogCheckpoint", event_ns=1, body=body)  # fmt: skip
        return new, "checkpoint"

    # Checkpoints come in after the entries they cover, as the checkpoint process appends them; the
    # seqs of the plain entries must stay where they were signed, so each goes in at the end.
    honest = _chain(IN_MEMORY_KEYS, [*plain, signed(first), signed(second), signed(third)])
    verifier = ChainVerifier(producer_keys=IN_MEMORY_KEYS, checkpoint_key=key.public_key)
    _check_all(verifier, honest)
    assert (verifier.checkpoints, verifier.last_checkpoint_seq) == (3, 12)
    without_second = _chain(IN_MEMORY_KEYS, [*plain, signed(first), signed(third)])
    checked = ChainVerifier(producer_keys=IN_MEMORY_KEYS, checkpoint_key=key.public_key)
    with pytest.raises(LogCorrupt) as bad:
        _check_all(checked, without_second)
    assert bad.value.seq == 14
    assert "follows the checkpoint of seq 8, but the last one in the log covers seq 4" in bad.value.reason


def _answer(cause: int, i: int, producer: str = "matching") -> tuple[NewEntry, str]:
    new = NewEntry(event_id=f"{producer}:{cause}:{i}", causation=f"log:{cause}", type="OrderAccepted",
                   event_ns=cause, body=b"\x80")  # fmt: skip
    return new, producer


def _input(
    sender: str, stream_id: str, cid: str, i: int = 0, type_: str = "OrderSubmitted"
) -> tuple[NewEntry, str]:
    new = NewEntry(event_id=f"{sender}/{cid}/{i}", causation=f"in:{sender}:{stream_id}",
                   type=type_, event_ns=1, body=b"\x80")  # fmt: skip
    return new, "intake"


_mislabelled = (
    NewEntry(event_id="settlement:1:0", causation="log:2", type="TradeSettled", event_ns=2, body=b"\x80"),
    "settlement",
)


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (_input("ann", "5-0", "a1"), "'ann/a1/0' does not come after ann's previous entry"),  # a copy
        (_input("ann", "4-0", "a0"), "'ann/a0/0' does not come after ann's previous entry"),  # older input
        (_answer(1, 0), "'matching:1:0' does not come after matching's previous entry"),  # a copy
        (_answer(1, 1), "'matching:1:1' does not come after matching's previous entry"),  # earlier cause
        (_mislabelled, "event id 'settlement:1:0' is not settlement:2:<i>"),  # names another cause
    ],
)
def test_a_copy_of_a_genuine_entry_tags_perfectly_and_is_named(
    tail: tuple[NewEntry, str], reason: str
) -> None:
    """Tags cannot cover the seq, so a copy of a genuine entry (appended with a stolen Redis password)
    verifies tag and chain; its event id and causation, which the tag does cover, come out of order."""
    good = [_input("ann", "5-0", "a1"), _answer(1, 0), _answer(1, 1), _input("ann", "6-0", "a2"),
            _answer(2, 0, "settlement"), _answer(4, 0)]  # fmt: skip
    entries = _chain(IN_MEMORY_KEYS, [*good, tail])
    verifier = ChainVerifier(producer_keys=IN_MEMORY_KEYS)
    _check_all(verifier, entries)  # tags and chain alone: all fine
    checked = ChainVerifier(producer_keys=IN_MEMORY_KEYS, answers={})
    with pytest.raises(LogCorrupt) as bad:
        _check_all(checked, entries)
    assert bad.value.seq == len(entries)
    assert reason in bad.value.reason


async def test_a_follower_restored_from_a_snapshot_still_refuses_a_copy_of_an_earlier_entry() -> None:
    """The marks a copy is refused by travel in the follower's snapshot: after a restart from one, a
    copy of an entry folded before it is still refused."""
    deposits = [_input("ann", f"{n}-0", f"a{n}", type_="CashDeposited") for n in (5, 6)]
    entries = _chain(IN_MEMORY_KEYS, deposits)
    log = InMemoryEventLog(clock=FakeClock())
    first = LogFollower(Settlement(), log, producer_keys=IN_MEMORY_KEYS)
    first._check_links(entries)
    record = encode_record(new_snapshot(first.processor, 2, entries[-1].hash, "", first.freshness.state()),
                           IN_MEMORY_KEYS)  # fmt: skip
    snap = decode_record(record, IN_MEMORY_KEYS)
    restarted = LogFollower(Settlement(), log, producer_keys=IN_MEMORY_KEYS)
    restarted.restore(snap, "")
    copy = _chain(IN_MEMORY_KEYS, [*deposits, deposits[0]])[-1]
    with pytest.raises(LogCorrupt, match="does not come after ann's previous entry"):
        restarted._check_links([msgspec.structs.replace(copy, prev_hash=entries[-1].hash)])


def test_the_key_ring_refuses_exposed_linked_or_foreign_secrets(tmp_path: Path) -> None:
    """A secret readable by others, a symlink where a key should be: refused with what to do; files are
    created 0600 and never through a symlink."""
    ring = KeyRing.create(tmp_path / "keys", ("intake",))
    assert stat.S_IMODE((ring.path / "log-master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((ring.path / "checkpoint.pub").stat().st_mode) == 0o644
    ring.read("redis-intake.pass")
    (ring.path / "redis-intake.pass").chmod(0o644)
    with pytest.raises(KeyMissing, match="readable by others"):
        ring.read("redis-intake.pass")
    (ring.path / "redis-intake.pass").chmod(0o600)
    (tmp_path / "elsewhere").write_text("a" * 64)
    (tmp_path / "elsewhere").chmod(0o600)
    (ring.path / "kek.key").unlink()
    (ring.path / "kek.key").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyMissing, match="not a plain file"):
        ring.read("kek.key")
    ring.set_redis_password("intake", "fresh-password-0123")  # replaced by rename: the link stays a link
    (ring.path / "redis-public.pass").symlink_to(tmp_path / "elsewhere")
    KeyRing.create(tmp_path / "keys", ("public",))  # exists (as a link): kept, never written through
    assert (tmp_path / "elsewhere").read_text() == "a" * 64
    assert ring.redis_password("intake") == "fresh-password-0123"


def test_key_ids_never_repeat_after_old_keys_are_dropped() -> None:
    """Intake keeps the newest three keys of a participant; the ids of new ones keep counting."""
    sealer = Sealer(b"\x01" * 32)
    keys = SigningKeys(sealer, "operator", "op-secret-0123456789")
    sealed = sealer.seal(b"key-1", "ann", "k1")
    keys.register(ParticipantRegistered(participant="ann", name="Ann", key=sealed))
    ids = []
    for n in range(2, 7):
        key_id = keys.next_key_id("ann")
        ids.append(key_id)
        keys.rotate(KeyRotated(participant="ann", key=sealer.seal(f"key-{n}".encode(), "ann", key_id),
                               previous_valid_until_ns=0, requested_by="ann"))  # fmt: skip
    assert ids == ["k2", "k3", "k4", "k5", "k6"]


@pytest.mark.parametrize(("signed_for", "checked_as"), [(2, 1), (1, 2), (3, 2)])
def test_a_checkpoint_signed_for_another_partition_is_named(signed_for: int, checked_as: int) -> None:
    """Each partition's log counts seqs from 1 under the same checkpoint key: a checkpoint (and the archive
    it vouches for) of one partition must not pass as another's, even to someone holding only the
    public key. The signed venue names the partition; the right partition verifies."""
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    key = CheckpointKey(raw)
    original = _chain(IN_MEMORY_KEYS, [(_new(i), "matching") for i in range(1, 5)])
    venue = partition_venue("szgx", signed_for)
    (checkpoint,) = due_checkpoints(original, every=4, key=key, venue=venue)
    assert partition_of_signed_venue(checkpoint.venue) == signed_for
    body = msgspec.msgpack.encode(checkpoint)
    tail = (
        NewEntry(event_id="cp", causation="log:4", type="LogCheckpoint", event_ns=9, body=body),
        "checkpoint",
    )
    entries = _chain(IN_MEMORY_KEYS, [*((_new(i), "matching") for i in range(1, 5)), tail])
    right = ChainVerifier(producer_keys=IN_MEMORY_KEYS, checkpoint_key=key.public_key, partition=signed_for)
    _check_all(right, entries)
    assert right.checkpoints == 1
    wrong = ChainVerifier(producer_keys=IN_MEMORY_KEYS, checkpoint_key=key.public_key, partition=checked_as)
    with pytest.raises(LogCorrupt, match=f"signed for partition {signed_for} .*, not partition {checked_as}"):
        _check_all(wrong, entries)


def test_a_partitions_signed_venue_names_it_and_partition_1_keeps_the_venue() -> None:
    assert [partition_venue("szgx", n) for n in (1, 2, 12)] == ["szgx", "szgx/p2", "szgx/p12"]
    assert [partition_of_signed_venue(v) for v in ("szgx", "szgx/p2", "szgx/p12", "a/b", "x/p")] == [
        1,
        2,
        12,
        1,
        1,
    ]
