"""Intake's pure core: who sent a command, is it theirs, for this venue, now, and what does it ask for.

A command arrives on its sender's own stream, which only the sender's Redis user may write, so the
stream says who sent it. Then, in order:

1. size and JSON shape, and the command must name its stream's owner;  - refused, reported to the owner
2. the owner's rate limit (every well-formed input counts);           - throttled, reported, not processed
3. the HMAC under one of the owner's keys valid now;                   - refused, reported to the owner
4. its shape as a command, its client order id, not used before;      - refused, reported to the owner
5. venue and time window, then the command's own checks.              - refused *in the log*

The rate limit comes before the signature because the stream already names its writer (Redis checked
the login): a flood of badly signed commands costs its sender its own budget, not intake an HMAC each.
Anything a check did not foresee (an exception of any kind) refuses the input as malformed: no input
stops intake.

From step 5 on the command is authenticated: whatever the verdict, its client order id is spent for
good, because the verdict (the events, or CommandRejected) is in the log. Nothing unauthenticated ever
reaches the log, and a rejection is only ever reported to the owner of the stream it came in on.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from services.intake.keystore import SigningKeys
from services.intake.limits import QUERIES_PER_S, QUERY_BURST, RateLimits
from services.intake.validate import IntakeState, validate
from shared.crypto import ExchangeBox, SealedSecret, Sealer, SecretRefused
from shared.domain.base import Refused
from shared.domain.codec import Event, decode_event, encode_event
from shared.domain.compliance import SchemeDefined
from shared.domain.events import InstrumentListed
from shared.domain.integrity import ProjectReviewed
from shared.domain.labels import FactorTablePublished, FootprintRecalculated
from shared.domain.ledger import (
    OPERATOR,
    CommandRejected,
    CreditsIssued,
    KeyRotated,
    LimitsSet,
    OrderSubmitted,
    ParticipantRegistered,
    ReplaceSubmitted,
    TransferRequested,
)
from shared.domain.reasons import Reason
from shared.domain.registry import (
    ActivityRecorded,
    EligibilityChanged,
    ProductRegistered,
    ProjectRegistered,
)
from shared.eventlog.entry import Entry, position_of_stream_id
from shared.protocol import (
    MAX_CLIENT_ID_LEN,
    ClientMessage,
    OperatorMessage,
    QueryMsg,
    RotateKeyMsg,
    rotate_key_context,
)

__all__ = [
    "CONFIG_EVENTS",
    "MAX_ENTRY_BYTES",
    "RESERVED_IDS",
    "Intake",
    "Rejection",
    "Verdict",
    "valid_participant_id",
]

MAX_ENTRY_BYTES = 4096  # a real command is a few hundred bytes
_NS_PER_MS = 1_000_000
_CLIENT_ID = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_CLIENT_ID_LEN}}}")
_PARTICIPANT_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
# Participant ids are Redis user names and key parts too: the names of the exchange's own users are taken.
RESERVED_IDS = frozenset({"admin", "default", "public", OPERATOR, "intake", "verification", "matching",
                          "settlement", "checkpoint", "registry", "exchange", "buffer", "projection",
                          "web", "transfers"})  # fmt: skip
_any_json = msgspec.json.Decoder()
# Intake's events that are not orders: few, and together they set up everything intake checks against.
CONFIG_EVENTS = (ParticipantRegistered, KeyRotated, LimitsSet, InstrumentListed, CreditsIssued,
                 ProjectRegistered, ProductRegistered, EligibilityChanged, ProjectReviewed,
                 SchemeDefined, FactorTablePublished, ActivityRecorded, FootprintRecalculated)  # fmt: skip


def _unforeseen(exc: Exception) -> str:
    """The text of a refusal no check foresaw: the exception's type says where to look in the code."""
    return f"command could not be processed ({type(exc).__name__}: {str(exc)[:120]})"


def valid_participant_id(participant: str) -> bool:
    return bool(_PARTICIPANT_ID.fullmatch(participant)) and participant not in RESERVED_IDS


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """A command refused before it was authenticated (or throttled): reported to `participant`, the
    owner of the stream it came in on, when intake knows that owner; never logged."""

    participant: str | None
    client_order_id: str
    command: str
    reason: Reason
    text: str


class Verdict(msgspec.Struct, frozen=True):
    """An authenticated command's outcome, to append: its events, or a CommandRejected."""

    client_order_id: str
    events: list[Event]


class Intake:
    """State: participants' keys, limits, instruments, spent client ids, issued serials, order count."""

    name = "intake"

    def __init__(
        self,
        operator_secret: str,
        *,
        sealer: Sealer | None = None,
        box: ExchangeBox | None = None,
        venue: str = "greenex-dev",
        window_ms: int = 30_000,
        partition: int = 1,
        partitions: int = 1,
    ) -> None:
        self.sealer, self.box, self.venue, self.window_ms = sealer, box, venue, window_ms
        self.partition, self.partitions = partition, partitions
        self.keys = SigningKeys(sealer, OPERATOR, operator_secret)
        self.limits = RateLimits()
        self.query_limits = RateLimits(QUERIES_PER_S, QUERY_BURST)
        self.state = IntakeState(participants={OPERATOR})
        self.last_input: dict[str, str] = {}  # sender -> the position of its last input in the log
        self.logged_inputs = 0
        # Its events that configure it (keys, limits, listings...), in log order and still encoded: a
        # snapshot keeps these rather than what they open to, so no participant's key is ever stored
        # open (services/intake/snapshot.py).
        self.config_events: list[bytes] = []

    @property
    def orders_submitted(self) -> int:
        return self.state.orders_submitted

    @property
    def position(self) -> str:
        """Intake's producer position: how many inputs it has logged (the log's DUP check uses it)."""
        return f"I{self.logged_inputs:020d}"

    # ---------------------------------------------------------------- which inputs are in the log

    def already_logged(self, sender: str, input_id: str) -> bool:
        """Whether an input of this sender's stream is in the log (read again after a crash)."""
        last = self.last_input.get(sender)
        return last is not None and position_of_stream_id(input_id) <= last

    def note_logged(self, sender: str, input_id: str) -> None:
        self.last_input[sender] = position_of_stream_id(input_id)
        self.logged_inputs += 1

    def recall(self, entry: Entry) -> None:
        """Rebuild from one of intake's own entries: its event, the client order id it spent (its event
        id is `<sender>/<client order id>/<n>`) and the input it answers (`in:<sender>:<stream id>`)."""
        self.evolve(decode_event(entry.body))
        sender, _, rest = entry.event_id.partition("/")
        client_order_id, _, n = rest.rpartition("/")
        self.spend(sender, client_order_id)
        if n == "0":  # the first entry of an input
            stream_sender, _, input_id = entry.causation.removeprefix("in:").rpartition(":")
            self.note_logged(stream_sender, input_id)

    # ---------------------------------------------------------------- evolve (own events from the log)

    def spend(self, sender: str, client_order_id: str) -> None:
        """A client order id is used for good once an authenticated command carried it (rebuilt from the
        ids of intake's entries, `<sender>/<client order id>/<n>`)."""
        self.state.use(sender, client_order_id)

    def evolve(self, event: Event) -> None:
        s = self.state
        if isinstance(event, CONFIG_EVENTS):
            self.config_events.append(encode_event(event))
        match event:
            case OrderSubmitted():
                s.orders_submitted = max(s.orders_submitted, event.order_id)
                s.use(event.participant, event.client_order_id, names_order=True)
            case ReplaceSubmitted():
                s.use(event.participant, event.client_order_id, names_order=True)
            case ParticipantRegistered():
                self.keys.register(event)
                s.participants.add(event.participant)
                s.permitted[event.participant] = frozenset(event.instruments)
            case KeyRotated():
                self.keys.rotate(event)
            case LimitsSet():
                self.limits.set(event.participant, event.commands_per_s, event.burst)
            case InstrumentListed():
                s.instruments[event.instrument.symbol] = event.instrument
            case CreditsIssued():
                s.issued.setdefault(event.instrument, []).append((event.serials.start, event.serials.end))
            case ProjectRegistered():
                s.projects.add(event.project)
                s.sites.add(event)
            case ProjectReviewed():
                s.sites.review(event)
            case ProductRegistered():
                s.products[event.product] = event.participant
            case SchemeDefined():
                s.schemes.setdefault(event.scheme, event)
            case FactorTablePublished() | ActivityRecorded() | FootprintRecalculated():
                s.footprints.evolve(event)
            case EligibilityChanged() if event.instrument in s.instruments:
                s.instruments[event.instrument] = msgspec.structs.replace(
                    s.instruments[event.instrument], eligible_standards=event.eligible_standards,
                    min_vintage=event.min_vintage, max_vintage=event.max_vintage,
                )  # fmt: skip

    # ---------------------------------------------------------------- decide

    def decide(self, sender: str, input_id: str, data: bytes | None, now_ns: int) -> Verdict | Rejection:
        """One command from `sender`'s stream: the events to append (its outcome, or CommandRejected),
        or a Rejection to report at once. Never raises."""
        raw: Any = None
        try:
            raw = self._decode(sender, data)
            if not self.limits.take(sender, now_ns):
                rate, burst = self.limits.limits(sender)
                raise Refused(
                    Reason.RATE_LIMITED, f"over {rate} commands/s (burst {burst}); send it again later"
                )
            if not self.keys.verifies(sender, raw, now_ns):
                raise Refused(Reason.BAD_SIGNATURE, "sig is not the HMAC-SHA256 of the canonical command")
            msg: ClientMessage = msgspec.convert(raw, ClientMessage)
            self._check_client_id(msg)
            if isinstance(msg, QueryMsg) and not self.query_limits.take(sender, now_ns):
                raise Refused(Reason.RATE_LIMITED, f"over {QUERIES_PER_S} queries/s (burst {QUERY_BURST}); "
                                                   "ask again later")  # fmt: skip
        except Refused as refused:
            return self._rejection(sender, raw, refused.reason, refused.text)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError) as exc:
            return self._rejection(sender, raw, Reason.MALFORMED, str(exc)[:200])
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            return self._rejection(sender, raw, Reason.MALFORMED, _unforeseen(exc))
        self.spend(sender, msg.client_order_id)
        try:
            events = self._authenticated(msg, now_ns)
        except Refused as refused:
            events = [self._rejected_in_log(msg, input_id, refused.reason, refused.text)]
        except (msgspec.ValidationError, ValueError) as exc:
            events = [self._rejected_in_log(msg, input_id, Reason.MALFORMED, str(exc)[:200])]
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            events = [self._rejected_in_log(msg, input_id, Reason.MALFORMED, _unforeseen(exc))]
        for event in events:
            self.evolve(event)
        return Verdict(msg.client_order_id, events)

    def _decode(self, sender: str, data: bytes | None) -> dict[str, Any]:
        if sender not in self.keys:
            raise Refused(Reason.UNKNOWN_PARTICIPANT, f"{sender!r} is not a registered participant")
        if data is None:
            how = "XADD <your stream> * data <signed JSON>"
            raise Refused(Reason.MALFORMED, f"the entry has no `data` field: {how}")
        if len(data) > MAX_ENTRY_BYTES:
            raise Refused(Reason.MALFORMED, f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
        raw = _any_json.decode(data)
        if not isinstance(raw, dict):
            raise Refused(Reason.MALFORMED, "data must be a JSON object")
        if raw.get("participant") != sender:
            raise Refused(Reason.SENDER_MISMATCH, f"a command on {sender}'s stream must name {sender}")
        return raw

    def _check_client_id(self, msg: ClientMessage) -> None:
        cid = msg.client_order_id
        if not _CLIENT_ID.fullmatch(cid):
            raise Refused(Reason.MALFORMED, "client_order_id must be 1-64 of [A-Za-z0-9_.:-]")
        if cid in self.state.used_ids.get(msg.participant, ()):
            raise Refused(Reason.DUPLICATE_CLIENT_ORDER_ID, f"client_order_id {cid!r} was already used")

    def _authenticated(self, msg: ClientMessage, now_ns: int) -> list[Event]:
        """The checks of an authenticated command; Refused here is logged (the id is spent)."""
        if msg.venue != self.venue:
            raise Refused(Reason.WRONG_VENUE, f"signed for venue {msg.venue!r}, this is {self.venue!r}")
        skew_ms = abs(now_ns // _NS_PER_MS - msg.sent_ms)
        if skew_ms > self.window_ms:
            raise Refused(Reason.OUTSIDE_WINDOW, f"sent_ms is {skew_ms} ms from the exchange's clock "
                                                 f"(the window is {self.window_ms} ms)")  # fmt: skip
        if isinstance(msg, OperatorMessage) != (msg.participant == OPERATOR):
            raise Refused(Reason.NOT_PERMITTED, "operator actions are for the operator only")
        if isinstance(msg, RotateKeyMsg):
            return [self._self_rotation(msg, now_ns)]
        if isinstance(msg, OperatorMessage) and msg.action == "rotate_key":
            return [self._operator_rotation(msg.args, now_ns)]
        events = validate(self.state, msg)
        for event in events:
            self._check_sealed(event)
            if isinstance(event, TransferRequested):
                self._check_destination(event.to_partition)
        return events

    def _check_destination(self, to: int) -> None:
        """A transfer goes to another partition this exchange runs: cash sent anywhere else would be in
        flight for good."""
        if to == self.partition or not 1 <= to <= self.partitions:
            runs = f"partitions 1-{self.partitions}" if self.partitions > 1 else "one partition"
            raise Refused(
                Reason.UNKNOWN_PARTITION, f"cannot transfer to partition {to}: this is partition "
                f"{self.partition} of an exchange that runs {runs}",
            )

    def _check_sealed(self, event: Event) -> None:
        """A participant's sealed key must open here before it enters the log (else every rebuild fails)."""
        if isinstance(event, ParticipantRegistered):
            if not valid_participant_id(event.participant):
                raise Refused(
                    Reason.MALFORMED, "participant ids are 1-64 of [a-z0-9_.-], not a reserved name"
                )
            if self.sealer is None:
                raise Refused(Reason.NOT_PERMITTED, "this intake holds no key-encryption key")
            try:
                self.sealer.open(event.key, event.participant)
            except SecretRefused as exc:
                raise Refused(Reason.MALFORMED, str(exc)) from exc

    def _operator_rotation(self, args: dict[str, Any], now_ns: int) -> KeyRotated:
        participant, overlap_s = args.get("participant"), args.get("overlap_s", 300)
        if not isinstance(participant, str) or participant not in self.state.participants - {OPERATOR}:
            raise Refused(Reason.UNKNOWN_PARTICIPANT, f"unknown participant {participant!r}")
        if not isinstance(overlap_s, int) or not 0 <= overlap_s <= 86_400:
            raise Refused(Reason.MALFORMED, "overlap_s must be 0..86400")
        event = KeyRotated(
            participant=participant, key=msgspec.convert(args.get("key"), type=SealedSecret),
            previous_valid_until_ns=now_ns + overlap_s * 1_000_000_000, requested_by=OPERATOR,
        )  # fmt: skip
        self._check_opens(event)
        return event

    def _self_rotation(self, msg: RotateKeyMsg, now_ns: int) -> KeyRotated:
        if self.box is None or self.sealer is None:
            raise Refused(Reason.NOT_PERMITTED, "this intake takes no key rotations")
        if not 0 <= msg.overlap_s <= 86_400:
            raise Refused(Reason.MALFORMED, "overlap_s must be 0..86400")
        try:
            secret = self.box.open(
                msg.new_key, rotate_key_context(msg.venue, msg.participant, msg.client_order_id)
            )
        except SecretRefused as exc:
            raise Refused(Reason.MALFORMED, str(exc)) from exc
        if len(secret) < 16:
            raise Refused(Reason.MALFORMED, "a signing key must be at least 16 bytes")
        key_id = self.keys.next_key_id(msg.participant)
        return KeyRotated(
            participant=msg.participant, key=self.sealer.seal(secret, msg.participant, key_id),
            previous_valid_until_ns=now_ns + msg.overlap_s * 1_000_000_000, requested_by=msg.participant,
        )  # fmt: skip

    def _check_opens(self, event: KeyRotated) -> None:
        if self.sealer is None:
            raise Refused(Reason.NOT_PERMITTED, "this intake holds no key-encryption key")
        try:
            self.sealer.open(event.key, event.participant)
        except SecretRefused as exc:
            raise Refused(Reason.MALFORMED, str(exc)) from exc

    @staticmethod
    def _rejected_in_log(msg: ClientMessage, input_id: str, reason: Reason, text: str) -> CommandRejected:
        tag = msg.__struct_config__.tag
        return CommandRejected(
            participant=msg.participant, client_order_id=msg.client_order_id,
            command=tag if isinstance(tag, str) else "", input_id=input_id, reason=reason, text=text,
        )  # fmt: skip

    def _rejection(self, sender: str, raw: Any, reason: Reason, text: str) -> Rejection:
        fields = raw if isinstance(raw, dict) else {}
        cid, command = fields.get("client_order_id"), fields.get("type")
        return Rejection(
            participant=sender if sender in self.keys else None,
            client_order_id=cid if isinstance(cid, str) else "",
            command=command if isinstance(command, str) else "",
            reason=reason,
            text=text,
        )
