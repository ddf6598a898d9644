"""The house holds together: one system map, one key schema, typed contracts, layers that match the docs."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

import msgspec
import pytest

from loadtests.order_stream import generate_commands
from loadtests.replay_bench import PARTICIPANTS, intake_events
from services.cli.deployfiles import COMPOSE, PROCFILE, compose_text, procfile_text
from services.cli.readmodel import replay_entries
from services.harness import InProcessExchange, Input
from services.intake.contract import contract_document
from services.intake.reports import REPORTED_TYPES
from services.runtime.system import Core, Process, System
from services.system import SYSTEM, build_followers
from shared.crypto import Sealer, new_key
from shared.domain.base import DomainEvent
from shared.domain.codec import Event, tags
from shared.domain.commands import PlaceOrder
from shared.domain.events import OrderAccepted, TradeExecuted
from shared.domain.ledger import HaltRequested, OrderSubmitted, OrderVerified
from shared.domain.reasons import Reason
from shared.eventlog.redis_log import _APPEND_LUA
from shared.keys import Keys
from shared.protocol import NewOrderMsg
from shared.reports import ExecutionReport
from tests.support import FakeClock

ROOT = Path(__file__).resolve().parents[2]
EVENT_TAGS = frozenset(cls.__name__ for cls in typing.get_args(Event))


def test_deploy_files_are_generated_from_the_system_map() -> None:
    """deploy/Procfile and docker-compose.yml are what `greenex system --write` makes of the map."""
    assert PROCFILE.read_text() == procfile_text(SYSTEM)
    assert COMPOSE.read_text() == compose_text(SYSTEM)
    for process in SYSTEM.processes:
        assert f"{process.name}: exec python -m services {process.name} --wait " in PROCFILE.read_text()


def test_every_type_the_cores_read_answer_or_report_is_an_event_of_the_log() -> None:
    """inputs, answers_to and the reported types are built from event classes, all in the Event union."""
    assert all(issubclass(cls, DomainEvent) for cls in typing.get_args(Event))
    for core in SYSTEM.cores:
        made = core.make()
        assert made.inputs <= EVENT_TAGS, core.name
        assert made.answers_to <= made.inputs, core.name  # a core answers only what it reads
    assert REPORTED_TYPES <= EVENT_TAGS
    for process in SYSTEM.processes:
        assert process.bell_types <= EVENT_TAGS, process.name


# ---------------------------------------------------------------- a fifth follower: one map entry


class CircuitBreaker:
    """A toy fifth core: halts an instrument when a trade prints 5 % or more away from the first."""

    name = "breaker"
    inputs = tags(TradeExecuted)
    answers_to = inputs

    def __init__(self) -> None:
        self.first: dict[str, int] = {}
        self.halted: set[str] = set()

    def decide(self, seq: int, event_ns: int, event: Event) -> list[Event]:
        assert isinstance(event, TradeExecuted)
        first = self.first.setdefault(event.instrument, event.price)
        if event.instrument in self.halted or abs(event.price - first) * 20 < first:
            return []
        self.halted.add(event.instrument)
        return [HaltRequested(instrument=event.instrument)]

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode((self.first, sorted(self.halted)))

    def restore(self, data: bytes) -> None:
        first, halted = msgspec.msgpack.decode(data, type=tuple[dict[str, int], list[str]])
        self.first, self.halted = first, set(halted)

    def digest(self) -> str:
        return self.snapshot().hex()


WITH_BREAKER = System(
    processes=(
        *SYSTEM.processes,
        Process("breaker", build_followers, cores=(Core("breaker", CircuitBreaker),)),
    )
)


def _setup(exchange: InProcessExchange) -> list[Input]:
    """An instrument and two funded participants with credits, as operator commands."""
    spec = {"symbol": "SZEA-T", "kind": "allowance", "standard": "SZEA", "registry": "SZ", "vintage": 2025,
            "reference_price": "50.00"}  # fmt: skip
    commands = [exchange.operator_command("op-1", "list_instrument", **spec)]
    for n, who in enumerate(("ann", "bob")):
        commands += [
            exchange.register(who, f"s-{who}-0123456789"),
            exchange.operator_command(f"op-d{n}", "deposit_cash", participant=who, amount="100000.00"),
            exchange.operator_command(f"op-i{n}", "issue_credits", participant=who, instrument="SZEA-T",
                                      serial_start=1 + n * 1000, serial_end=1000 + n * 1000),
        ]  # fmt: skip
    return commands


def _order(
    exchange: InProcessExchange, who: str, cid: str, side: str, price: str, quantity: int = 10
) -> Input:
    fields = {
        "instrument": "SZEA-T",
        "side": side,
        "order_type": "limit",
        "price": price,
        "quantity": quantity,
    }
    command = exchange.command(who, f"s-{who}-0123456789", type="new_order", client_order_id=cid, **fields)
    return who, command


async def test_a_fifth_follower_is_one_map_entry_plus_its_core() -> None:
    """A circuit breaker added to the map is woken by the trades it answers, its halt stops the next
    order in matching, and replay, the bells and the Procfile all include it without other edits."""
    exchange = InProcessExchange(system=WITH_BREAKER, clock=FakeClock())
    await exchange.submit(_setup(exchange))
    await exchange.submit(
        [_order(exchange, "ann", "a1", "sell", "50.00"), _order(exchange, "bob", "b1", "buy", "50.00")]
    )
    await exchange.submit(
        [_order(exchange, "ann", "a2", "sell", "53.00"), _order(exchange, "bob", "b2", "buy", "53.00")]
    )
    await exchange.submit([_order(exchange, "bob", "b3", "buy", "53.00")])
    entries = await exchange.log.read(0, 10_000)
    assert [e.producer for e in entries if e.type == "HaltRequested"] == ["breaker"]
    rejected = [d.report for d in exchange.reports if d.participant == "bob"]
    assert any(
        isinstance(r, ExecutionReport)
        and r.client_order_id == "b3"
        and r.reason.code is Reason.INSTRUMENT_HALTED
        for r in rejected
        if isinstance(r, ExecutionReport) and not isinstance(r.reason, msgspec.UnsetType)
    )
    replayed = replay_entries(entries, state=None)
    assert "breaker" not in replayed.cores  # the default map has four cores ...
    from services.cli.readmodel import ExchangeState  # noqa: PLC0415

    with_breaker = replay_entries(entries, state=ExchangeState(system=WITH_BREAKER))
    assert with_breaker.core("breaker").digest() == exchange.core("breaker").processor.digest()
    keys = Keys("t")
    bells = WITH_BREAKER.bells(keys)
    assert keys.bell("breaker") in bells.rung_by(["TradeExecuted"])
    assert keys.bell("breaker") not in bells.rung_by(["OrderAccepted"])
    assert "breaker: exec python -m services breaker --wait " in procfile_text(WITH_BREAKER)


# ---------------------------------------------------------------- the order fields agree everywhere

ORDER_FIELDS = (
    "participant",
    "client_order_id",
    "instrument",
    "side",
    "order_type",
    "quantity",
    "time_in_force",
)


def _types(cls: type[msgspec.Struct]) -> dict[str, object]:
    return {f.name: f.type for f in msgspec.structs.fields(cls)}


def test_order_structs_agree_field_by_field() -> None:
    """The order's fields have one type in the client message, the log's events and the core's command
    (price is a decimal string at the edge and integer fen inside)."""
    internal: list[type[msgspec.Struct]] = [PlaceOrder, OrderSubmitted, OrderVerified, OrderAccepted]
    for name in (*ORDER_FIELDS, "order_id", "price"):
        assert len({repr(_types(cls)[name]) for cls in internal}) == 1, name
    edge = _types(NewOrderMsg)
    for name in ORDER_FIELDS:
        assert repr(edge[name]) == repr(_types(OrderSubmitted)[name]), name


async def test_every_converter_carries_every_order_field() -> None:
    """A signed new order through intake, verification, matching (the harness runs the real cores):
    OrderSubmitted, OrderVerified and OrderAccepted carry the message's values; the replay benchmark's
    PlaceOrder -> OrderSubmitted converter too."""
    exchange = InProcessExchange(clock=FakeClock())
    await exchange.submit(_setup(exchange))
    fields = {
        "instrument": "SZEA-T",
        "side": "buy",
        "order_type": "limit",
        "quantity": 7,
        "time_in_force": "DAY",
    }
    order = exchange.command(
        "ann", "s-ann-0123456789", type="new_order", client_order_id="x1", price="49.99", **fields
    )
    await exchange.submit([("ann", order)])
    by_type = {e.type: msgspec.msgpack.decode(e.body) for e in await exchange.log.read(0, 10_000)}
    for kind in ("OrderSubmitted", "OrderVerified", "OrderAccepted"):
        got = by_type[kind]
        assert {k: got[k] for k in fields} == fields, kind
        assert (got["participant"], got["client_order_id"], got["price"], got["order_id"]) == (
            "ann",
            "x1",
            4999,
            1,
        )
    placed = [c for c in generate_commands(300, 3, participants=PARTICIPANTS) if isinstance(c, PlaceOrder)]
    submitted = [e for e in intake_events(300, 3, Sealer(new_key())) if isinstance(e, OrderSubmitted)]
    assert len(placed) == len(submitted) > 100
    for command, event in zip(placed, submitted, strict=True):
        assert msgspec.structs.asdict(command) == msgspec.structs.asdict(event)


# ---------------------------------------------------------------- one key schema

_KEY_NAME = re.compile(
    r":(?:in|log|digests|positions)(?![\w-])|(?:^|[:{}])(?:out|md|snapshots|bell|wake|reports|dead):"
)


def _code_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals and f-string parts, except docstrings and other bare string statements."""
    bare = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in bare:
            continue
        if isinstance(node, ast.JoinedStr):
            bare |= {id(v) for v in node.values}
            text = "".join(str(v.value) if isinstance(v, ast.Constant) else "{x}" for v in node.values)
            out.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


def test_no_module_builds_a_key_name_outside_the_key_schema() -> None:
    """Every Redis key of the exchange is built by shared/keys.py; nothing else spells one."""
    allowed = {ROOT / "shared" / "keys.py", Path(__file__).resolve()}
    found: list[str] = []
    for folder in ("shared", "services", "loadtests", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in allowed:
                continue
            for line, text in _code_strings(ast.parse(path.read_text())):
                if _KEY_NAME.search(text) and "://" not in text:
                    found.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert found == []


@pytest.mark.parametrize(
    "name",
    ["greenex:in", "{x}:out:{x}", "md:trades", "p:log", "{x}:log:bell:{x}", "{x}:snapshots:{x}", "p:dead:x"],
)
def test_the_key_name_check_can_fail(name: str) -> None:
    """The check sees key names as literals and as f-strings (whose parts it reads as `{x}`)."""
    assert _KEY_NAME.search(name)


def test_the_append_script_touches_only_the_keys_it_is_given() -> None:
    """Every key the Lua script writes or reads comes in KEYS; no key name is built inside it."""
    calls = re.findall(r"redis\.call\(([^,]+),\s*([^,)]+)", _APPEND_LUA)
    assert calls
    assert all(key.strip().startswith("KEYS[") for _, key in calls), calls
    assert not re.search(r"KEYS\[[^\]]+\]\s*\.\.", _APPEND_LUA)


def test_the_schema_names_every_key_family_the_exchange_uses() -> None:
    """Each Keys builder is one SCHEMA entry, with a writer and a reader."""
    from shared.keys import SCHEMA  # noqa: PLC0415

    keys = Keys("p")
    built = [keys.commands("x"), keys.reports("x"), keys.trades, keys.depth("x"), keys.log, keys.positions,
             keys.bell("x"), keys.report_cursor, keys.digests, keys.snapshots("x"),
             keys.dead_letters]  # fmt: skip
    patterns = [spec.pattern("p") for spec in SCHEMA]
    for key in built:
        matching = [p for p in patterns if re.fullmatch(p.replace("*", ".*"), key)]
        assert len(matching) >= 1, key
    assert all(spec.writers and spec.readers for spec in SCHEMA)


# ---------------------------------------------------------------- the documented layers are the real ones


def _layers() -> dict[str, set[str]]:
    """The "may import" column of docs/architecture.md's map: folder -> the packages it may import."""
    rules: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0] != "`folder`":
            allowed = set(re.findall(r"`([\w./*]+)`", cells[2]))
            rules[cells[0].strip("`")] = allowed
    return rules


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] in ("shared", "services", "loadtests", "tests"):
                out.add(".".join(parts[:2]) if parts[0] == "services" else parts[0])
    return out


def test_every_module_imports_only_what_the_architecture_map_allows() -> None:
    """docs/architecture.md's map of the house is the rule: shared imports no service, a service's core
    imports shared and the runtime, only the composing layers (the map, the harness, the CLI) import
    services."""
    rules = _layers()
    assert {"shared/", "services/runtime/", "services/matching/", "services/cli/"} <= rules.keys()
    broken: list[str] = []
    for folder in ("shared", "services", "loadtests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            rule = max((f for f in rules if rel.startswith(f) or rel == f), key=len, default=None)
            assert rule is not None, f"{rel} is in no folder of the architecture map"
            allowed = rules[rule]
            if "*" not in allowed:
                broken += [f"{rel} imports {name}" for name in sorted(_imports(path) - allowed)]
    assert broken == []


def test_the_contract_lists_every_channel_a_client_touches_with_typed_payloads() -> None:
    document = contract_document()
    keys = Keys()
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {
        keys.commands("{participant}"),
        keys.reports("{participant}"),
        keys.trades,
        keys.depth("{instrument}"),
    }
    payloads = {m["payload"]["$ref"].rpartition("/")[2] for m in document["components"]["messages"].values()}
    assert payloads == {"ClientCommand", "ParticipantReport", "TradeReport", "DepthView"}
    for name in payloads:
        assert document["components"]["schemas"][name], name


def test_the_layer_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The import scan finds a service imported from shared (what the layer test must refuse)."""
    module = tmp_path / "bad.py"
    module.write_text("from services.matching.engine import MatchingEngine\nimport shared.keys\n")
    assert _imports(module) == {"services.matching", "shared"}
    assert "services.matching" not in _layers()["shared/"]


def test_no_participant_can_take_the_name_of_one_of_the_exchanges_own_users() -> None:
    """Participant ids are Redis user names: every role's user (each process of the map, the operator,
    public, admin) and `default` must be reserved, or provisioning one would reset that user. A process
    added to the map fails this until its name is reserved too."""
    from services.cli.provision import role_users  # noqa: PLC0415
    from services.intake.core import RESERVED_IDS, valid_participant_id  # noqa: PLC0415

    taken = {*role_users(SYSTEM), "default"}
    assert taken <= RESERVED_IDS
    assert not any(valid_participant_id(name) for name in taken)


@pytest.mark.parametrize(
    "url", ["unix:///tmp/greenex x/redis.sock", "unix:///tmp/r.sock?db=0", "redis://127.0.0.1:6390/0"]
)
def test_a_url_with_a_login_is_one_redis_py_reads_back(url: str) -> None:
    """What the load test hands its relays: the same server, logged in as the user (odd characters in
    the password survive)."""
    from redis import Redis  # noqa: PLC0415

    from shared.config import url_with_login  # noqa: PLC0415

    options = Redis.from_url(url_with_login(url, "admin", "p@ss:w/rd %x")).connection_pool.connection_kwargs
    assert (options["username"], options["password"]) == ("admin", "p@ss:w/rd %x")
    where = options.get("path", options.get("host"))
    assert where in {"/tmp/greenex x/redis.sock", "/tmp/r.sock", "127.0.0.1"}
