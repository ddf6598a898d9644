"""The settlement core: delivery versus payment at T+0 over cash accounts and first-in-first-out serials."""

from __future__ import annotations

import bisect
import hashlib
from collections import deque

import msgspec

from services.settlement.blocks import (
    Blocks,
    IssuedIndex,
    append_block,
    coalesce,
    first_overlap,
    plan_preferring,
    remove_pieces,
)
from services.settlement.selection import free_blocks, select_blocks
from services.settlement.surrender import plan_surrender
from shared.domain.certificates import Origin, SerialOrigins
from shared.domain.codec import Event, tags
from shared.domain.compliance import CreditsSurrendered, SurrenderApproved
from shared.domain.differences import first_key_difference
from shared.domain.eligibility import split_eligibility, with_window
from shared.domain.events import InstrumentListed, TradeExecuted
from shared.domain.fees import MAKER_FEE_BPS, TAKER_FEE_BPS, fee
from shared.domain.instruments import Instrument
from shared.domain.ledger import (
    BUFFER_ACCOUNT,
    EXCHANGE_ACCOUNT,
    CashDeposited,
    CashTransferredIn,
    CashTransferredOut,
    CashWithdrawn,
    CreditsIssued,
    ParticipantRegistered,
    SerialRange,
    TradeSettled,
)
from shared.domain.reasons import Reason
from shared.domain.registry import CreditsRetired, EligibilityChanged, RetirementApproved, RetirementRejected
from shared.domain.values import Side

__all__ = ["Settlement", "SettlementInvariantError"]

_SNAPSHOT_VERSION = 2  # 2: instruments and serial origins, for eligibility


class SettlementInvariantError(AssertionError):
    """A fact the upstream checks guarantee turned out false; the service must crash and rebuild."""


class _Snapshot(msgspec.Struct, frozen=True, array_like=True):
    version: int
    cash: dict[str, int]
    holdings: dict[str, dict[str, list[SerialRange]]]  # block order is delivery order: keep it
    issued: dict[str, list[SerialRange]]
    settled: list[int]
    deposited: int
    withdrawn: int
    retired: dict[str, list[SerialRange]] = {}  # retired and cancelled serials: out of the market
    instruments: dict[str, Instrument] = {}  # with their current eligibility windows
    origins: dict[str, list[Origin]] = {}  # every issued block with its standard and vintage


# Deterministic order sorts every dict key, so equal states encode to equal bytes.
_encoder = msgspec.msgpack.Encoder(order="deterministic")
_decoder = msgspec.msgpack.Decoder(_Snapshot)


class Settlement:
    """Cash in fen per participant, serial blocks per (participant, instrument), fees to the exchange.

    `decide` works out a `TradeSettled` for each `TradeExecuted` without touching the state, then applies
    it, so a refused trade leaves the state as it was before the error is raised.
    """

    name = "settlement"
    inputs = tags(
        ParticipantRegistered,
        CashDeposited,
        CashWithdrawn,
        CashTransferredIn,  # a deposit and a withdrawal here, across partitions (shared/partitions.py)
        CashTransferredOut,
        CreditsIssued,
        TradeExecuted,
        RetirementApproved,
        InstrumentListed,
        EligibilityChanged,
        SurrenderApproved,
    )
    answers_to = inputs  # trades are nearly all of them; the rest are rare

    def __init__(self) -> None:
        self._cash: dict[str, int] = {EXCHANGE_ACCOUNT: 0}
        self._holdings: dict[str, dict[str, Blocks]] = {}
        self._issued: dict[str, IssuedIndex] = {}
        # Grows with every trade; trade ids are the only reliable guard, since the engine is the
        # source of them and a replayed or duplicated entry must never move cash twice.
        self._settled: set[int] = set()
        self._deposited = 0
        self._withdrawn = 0
        self._retired: dict[str, IssuedIndex] = {}
        self._instruments: dict[str, Instrument] = {}
        self._origins = SerialOrigins()

    # ------------------------------------------------------------ the processor

    def decide(self, seq: int, event_ns: int, event: Event) -> list[Event]:
        """Apply one input; answers a `TradeSettled` per trade, already applied here."""
        match event:
            case TradeExecuted():
                settled = self._decide(event)
                self._evolve_settled(settled)
                return [settled]
            case ParticipantRegistered():
                # Intake refuses a second registration; should one slip through, keep the money.
                self._cash.setdefault(event.participant, 0)
            case CashTransferredIn():
                # Cash from another partition may come before onboarding registers its participant here
                # (partition by partition): it waits in the participant's account, opened by it.
                self._cash.setdefault(event.participant, 0)
                self._deposit(event)
            case CashDeposited():
                self._deposit(event)
            case CashWithdrawn():
                self._withdraw(event)
            case CreditsIssued():
                self._issue(event)
            case RetirementApproved():
                retired = self._decide_retirement(seq, event_ns, event)
                if isinstance(retired, CreditsRetired):
                    self._retire(retired)
                return [retired]
            case SurrenderApproved():
                blocks = self._holdings.get(event.participant, {}).get(event.instrument, deque())
                origins = self._origins.blocks.get(event.instrument, [])
                inst = self._instruments.get(event.instrument)
                surrendered = plan_surrender(seq, event, blocks, inst, origins)
                if surrendered is None:
                    raise _broken(f"surrender {seq}: {event.participant} lacks {event.quantity} t")
                self._retire(surrendered)  # out of the market, like a retirement
                return [surrendered]
            case InstrumentListed():
                self._instruments[event.instrument.symbol] = event.instrument
            case EligibilityChanged():
                inst = self._instruments.get(event.instrument)
                if inst is not None:
                    self._instruments[event.instrument] = with_window(inst, event)
        return []

    def snapshot(self) -> bytes:
        """The whole state, canonically encoded (equal states give equal bytes)."""
        return _encoder.encode(
            _Snapshot(
                version=_SNAPSHOT_VERSION,
                cash=self._cash,
                holdings={p: {i: list(b) for i, b in held.items()} for p, held in self._holdings.items()},
                issued={i: [SerialRange(s, e) for s, e in index] for i, index in self._issued.items()},
                settled=sorted(self._settled),
                deposited=self._deposited,
                withdrawn=self._withdrawn,
                retired={i: [SerialRange(s, e) for s, e in index] for i, index in self._retired.items()},
                instruments=self._instruments,
                origins=self._origins.blocks,
            )
        )

    def restore(self, data: bytes) -> None:
        """Load the state `snapshot` wrote; a snapshot that breaks an invariant is refused (raises) and
        this core keeps the state it had."""
        state = _decoder.decode(data)
        if state.version != _SNAPSHOT_VERSION:
            raise SettlementInvariantError(f"unknown settlement snapshot version {state.version}")
        candidate = Settlement()
        candidate._cash = dict(state.cash)
        candidate._holdings = {
            p: {i: deque(blocks) for i, blocks in held.items()} for p, held in state.holdings.items()
        }
        # Sorted again because the overlap search bisects it and a hand-edited file may not be.
        candidate._issued = {i: sorted((r.start, r.end) for r in rs) for i, rs in state.issued.items()}
        candidate._settled = set(state.settled)
        candidate._deposited = state.deposited
        candidate._withdrawn = state.withdrawn
        candidate._retired = {i: sorted((r.start, r.end) for r in rs) for i, rs in state.retired.items()}
        candidate._instruments = dict(state.instruments)
        candidate._origins.blocks = {i: sorted(o, key=lambda b: b.start) for i, o in state.origins.items()}
        candidate.check_invariants()
        self._adopt(candidate)

    def _adopt(self, other: Settlement) -> None:
        """Take over another core's state (the shells hold this object, so it must stay the same one)."""
        self._cash, self._holdings, self._issued = other._cash, other._holdings, other._issued
        self._settled, self._deposited, self._withdrawn = other._settled, other._deposited, other._withdrawn
        self._retired, self._instruments, self._origins = other._retired, other._instruments, other._origins

    def digest(self) -> str:
        """Hex sha256 of the snapshot: two replicas agree exactly when their digests do."""
        return hashlib.sha256(self.snapshot()).hexdigest()

    def first_difference(self, other: Settlement) -> str | None:
        """The first account whose cash or holdings differ between two settlement states."""
        a, b = self.balances(), other.balances()
        if diff := first_key_difference(a, b, "cash of account"):
            return diff
        accounts = sorted(a.keys() | b.keys())
        return first_key_difference(
            {p: self.holdings(p) for p in accounts},
            {p: other.holdings(p) for p in accounts},
            "holdings of account",
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settlement):
            return NotImplemented
        return self.snapshot() == other.snapshot()

    __hash__ = None  # type: ignore[assignment]  # mutable state: equal now, different later

    # ------------------------------------------------------------ queries for tests and operators

    def balances(self) -> dict[str, int]:
        """Cash in fen of every account, the exchange's fee account included."""
        return dict(self._cash)

    def holdings(self, participant: str) -> dict[str, list[SerialRange]]:
        """Instrument -> the participant's blocks, oldest first; instruments it lacks are absent."""
        return {i: list(blocks) for i, blocks in self._holdings.get(participant, {}).items()}

    def retired(self, instrument: str) -> list[SerialRange]:
        """Serials of `instrument` retired or cancelled so far, by start."""
        return [SerialRange(s, e) for s, e in self._retired.get(instrument, [])]

    def check_invariants(self) -> None:
        """Raise `SettlementInvariantError` unless cash and credits are whole and conserved.

        Every issued serial is in exactly one place: one holding, or out of the market (retired).
        """
        self._check_cash()
        held: dict[str, list[tuple[int, int]]] = {}
        for participant, by_instrument in self._holdings.items():
            for instrument, blocks in by_instrument.items():
                if not blocks:
                    raise _broken(f"{participant} keeps an empty holding of {instrument}")
                held.setdefault(instrument, []).extend((b.start, b.end) for b in blocks)
        for instrument, index in self._retired.items():
            held.setdefault(instrument, []).extend(index)
        for instrument in sorted(held.keys() | self._issued.keys()):
            _check_credits(instrument, held.get(instrument, []), self._issued.get(instrument, []))

    # ------------------------------------------------------------ decide and evolve

    def _decide(self, trade: TradeExecuted) -> TradeSettled:
        """The settlement of `trade`, computed from the state without changing it."""
        if trade.trade_id in self._settled:
            raise _broken(f"trade {trade.trade_id} settled twice")
        if trade.quantity <= 0 or trade.price <= 0:
            raise _broken(f"trade {trade.trade_id} has price {trade.price} and quantity {trade.quantity}")
        maker_buys = trade.maker_side is Side.BUY
        buyer, seller = trade.maker_participant, trade.taker_participant
        buy_order, sell_order = trade.maker_order_id, trade.taker_order_id
        if not maker_buys:
            buyer, seller, buy_order, sell_order = seller, buyer, sell_order, buy_order
        cash = trade.price * trade.quantity
        buyer_fee = fee(cash, MAKER_FEE_BPS if maker_buys else TAKER_FEE_BPS)
        seller_fee = fee(cash, TAKER_FEE_BPS if maker_buys else MAKER_FEE_BPS)
        if self._balance(buyer) < cash + buyer_fee:
            raise _broken(f"trade {trade.trade_id}: {buyer} lacks {cash + buyer_fee} fen")
        self._balance(seller)  # an unknown seller fails here
        # Eligible blocks first; ineligible ones only for what they cannot cover, which verification lets
        # happen only to sells resting when the window tightened (docs/registry.md).
        serials = self._plan(seller, trade.instrument, trade.quantity, prefer_eligible=True)
        if serials is None:
            raise _broken(f"trade {trade.trade_id}: {seller} lacks {trade.quantity} t of {trade.instrument}")
        return TradeSettled(
            trade_id=trade.trade_id, instrument=trade.instrument, price=trade.price,
            quantity=trade.quantity, buyer=buyer, seller=seller, buy_order_id=buy_order,
            sell_order_id=sell_order, cash=cash, buyer_fee=buyer_fee, seller_fee=seller_fee,
            serials=serials,
        )  # fmt: skip

    def _evolve_settled(self, settled: TradeSettled) -> None:
        """Move cash, fees and serials as `settled` says; O(blocks delivered)."""
        by_instrument = self._holdings.get(settled.seller, {})
        blocks = by_instrument.get(settled.instrument, deque())
        if not remove_pieces(blocks, settled.serials):
            raise _broken(f"trade {settled.trade_id}: delivered serials are not the seller's")
        if not blocks:
            # Dropping empty holdings keeps snapshots canonical: holding nothing has one encoding only.
            del by_instrument[settled.instrument]
            if not by_instrument:
                del self._holdings[settled.seller]
        self._settled.add(settled.trade_id)
        self._cash[settled.buyer] -= settled.cash + settled.buyer_fee
        self._cash[settled.seller] += settled.cash - settled.seller_fee
        self._cash[EXCHANGE_ACCOUNT] += settled.buyer_fee + settled.seller_fee
        received = self._holdings.setdefault(settled.buyer, {}).setdefault(settled.instrument, deque())
        for piece in settled.serials:
            append_block(received, piece)

    def _decide_retirement(
        self, seq: int, event_ns: int, ok: RetirementApproved
    ) -> CreditsRetired | RetirementRejected:
        """The selected blocks, if held free; else the oldest ineligible blocks, then the oldest eligible
        ones, leave the market; the certificate is named after `seq`. Ineligible first keeps the
        eligible tonnes that resting sells claim."""
        if ok.selection is not None:
            picked = self._select(ok)
            if isinstance(picked, str):
                return RetirementRejected(
                    participant=ok.participant, client_order_id=ok.client_order_id,
                    instrument=ok.instrument, quantity=ok.quantity, kind=ok.kind,
                    reason=Reason.SERIALS_NOT_FREE, text=picked, request_seq=ok.request_seq,
                )  # fmt: skip
            serials: tuple[SerialRange, ...] | None = picked
        else:
            serials = self._plan(ok.participant, ok.instrument, ok.quantity, prefer_eligible=False)
        if serials is None or ok.quantity <= 0:
            raise _broken(f"retirement {seq}: {ok.participant} lacks {ok.quantity} t of {ok.instrument}")
        return CreditsRetired(
            certificate_id=f"RC-{seq}", participant=ok.participant, beneficiary=ok.beneficiary,
            reason=ok.reason, instrument=ok.instrument, serials=serials, tonnes=ok.quantity, kind=ok.kind,
            client_order_id=ok.client_order_id, request_seq=ok.request_seq, purpose=ok.purpose,
            identifier=ok.identifier, retired_ns=event_ns,
        )  # fmt: skip

    def _select(self, ok: RetirementApproved) -> tuple[SerialRange, ...] | str:
        """Exactly the blocks the retirement chose, from what sells have not frozen; or why not."""
        assert ok.selection is not None
        blocks = self._holdings.get(ok.participant, {}).get(ok.instrument, deque())
        inst, origins = self._instruments.get(ok.instrument), self._origins.blocks.get(ok.instrument, [])
        free = free_blocks(blocks, ok.sell_claim, lambda b: split_eligibility(inst, origins, b))
        picked = select_blocks(free, ok.quantity, ok.selection, origins)
        if isinstance(picked, str):
            return f"{ok.participant} cannot retire {ok.selection.describe()} of {ok.instrument}: {picked} " \
                   f"({ok.sell_claim} t of the holding are frozen for sells)"  # fmt: skip
        return picked

    def _retire(self, retired: CreditsRetired | CreditsSurrendered) -> None:
        by_instrument = self._holdings.get(retired.participant, {})
        blocks = by_instrument.get(retired.instrument, deque())
        if not remove_pieces(blocks, retired.serials):
            raise _broken(f"{retired.certificate_id}: retired serials are not the holder's")
        if not blocks:
            del by_instrument[retired.instrument]
            if not by_instrument:
                del self._holdings[retired.participant]
        index = self._retired.setdefault(retired.instrument, [])
        for piece in retired.serials:
            bisect.insort(index, (piece.start, piece.end))

    def _deposit(self, event: CashDeposited) -> None:
        if event.amount < 0:
            raise _broken(f"negative deposit {event.amount} for {event.participant}")
        self._cash[event.participant] = self._balance(event.participant) + event.amount
        self._deposited += event.amount

    def _withdraw(self, event: CashWithdrawn) -> None:
        balance = self._balance(event.participant)
        if event.amount < 0 or event.amount > balance:
            raise _broken(f"{event.participant} withdraws {event.amount} fen of {balance}")
        self._cash[event.participant] = balance - event.amount
        self._withdrawn += event.amount

    def _issue(self, event: CreditsIssued) -> None:
        block = event.serials
        if event.participant == BUFFER_ACCOUNT:
            self._cash.setdefault(BUFFER_ACCOUNT, 0)  # the registry's buffer pool, never registered
        self._balance(event.participant)  # an unknown holder fails here
        if block.start > block.end:
            raise _broken(f"empty serial block {block.start}..{block.end} of {event.instrument}")
        index = self._issued.get(event.instrument, [])
        clash = first_overlap(index, block)
        if clash is not None:
            raise _broken(
                f"serials {block.start}..{block.end} of {event.instrument} overlap {clash[0]}..{clash[1]}"
            )
        bisect.insort(index, (block.start, block.end))
        self._issued[event.instrument] = index
        self._origins.add(event)
        holding = self._holdings.setdefault(event.participant, {}).setdefault(event.instrument, deque())
        append_block(holding, block)

    def _plan(
        self, participant: str, instrument: str, quantity: int, *, prefer_eligible: bool
    ) -> tuple[SerialRange, ...] | None:
        """The serials `quantity` t of the holding takes, oldest first among those preferred."""
        blocks = self._holdings.get(participant, {}).get(instrument, deque())
        inst, origins = self._instruments.get(instrument), self._origins.blocks.get(instrument, [])
        return plan_preferring(
            blocks, quantity, lambda b: split_eligibility(inst, origins, b), prefer_eligible
        )

    def _balance(self, participant: str) -> int:
        """The participant's cash; unknown participants are a broken upstream check, not a new account."""
        balance = self._cash.get(participant)
        if balance is None:
            raise _broken(f"unknown participant {participant!r}")
        return balance

    def _check_cash(self) -> None:
        for participant, balance in sorted(self._cash.items()):
            if balance < 0:
                raise _broken(f"{participant} holds {balance} fen")
        total = sum(self._cash.values())
        if total != self._deposited - self._withdrawn:
            raise _broken(f"cash {total} != deposited {self._deposited} - withdrawn {self._withdrawn}")


def _check_credits(instrument: str, held: list[tuple[int, int]], issued: IssuedIndex) -> None:
    """Every issued serial of `instrument` is held exactly once and nothing else is held."""
    if any(start > end for start, end in held):
        raise _broken(f"an empty block is held of {instrument}")
    held_merged, twice = coalesce(held)
    if twice is not None:
        raise _broken(f"serial {twice} of {instrument} is held twice")
    issued_merged, reissued = coalesce(issued)
    if reissued is not None:
        raise _broken(f"serial {reissued} of {instrument} was issued twice")
    held_tonnes = sum(end - start + 1 for start, end in held)
    issued_tonnes = sum(end - start + 1 for start, end in issued)
    if held_tonnes != issued_tonnes:
        raise _broken(f"{held_tonnes} t of {instrument} held but {issued_tonnes} t issued")
    if held_merged != issued_merged:
        raise _broken(f"the serials held of {instrument} are not the serials issued")


def _broken(message: str) -> SettlementInvariantError:
    return SettlementInvariantError(message)
