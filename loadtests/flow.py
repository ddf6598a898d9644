"""The live load's order flow: signed client commands built and signed before the clock starts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from shared.protocol import signed

__all__ = ["DEFAULT_MIX", "REFERENCE_FEN", "FlowOrder", "build_flow", "client_names", "parse_mix", "symbols"]

REFERENCE_FEN = 5000  # 50.00 CNY/t; the band is +-10 %, every price below stays well inside it
DEFAULT_MIX = "passive=45,marketable=40,cancel=15"
_KINDS = ("passive", "marketable", "market", "cancel")


@dataclass(frozen=True, slots=True)
class FlowOrder:
    client: int  # index into the client list
    client_order_id: str
    payload: bytes  # the signed JSON, ready for `XADD <prefix>:in * data <payload>`
    cancels: str | None = None  # for a cancel: the client order id of the order it cancels


def client_names(clients: int, tag: str = "") -> list[str]:
    """The load's participants; `tag` (e.g. the run's) makes them unique on a shared Redis, whose users
    are global."""
    return [f"lt{tag}{i:03d}" for i in range(clients)]


def symbols(instruments: int) -> list[str]:
    return [f"LT{i}-2025" for i in range(instruments)]


def secret_of(participant: str) -> str:
    return f"loadtest-secret-{participant}"


def parse_mix(text: str) -> dict[str, float]:
    """`passive=45,marketable=40,cancel=15` -> shares summing to 1 (market orders are IOC)."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        if name not in _KINDS:
            raise ValueError(f"unknown order kind {name!r}; use {', '.join(_KINDS)}")
        shares[name] = float(value)
    total = sum(shares.values())
    if total <= 0 or any(v < 0 for v in shares.values()):
        raise ValueError(f"mix {text!r} needs non-negative shares with a positive sum")
    return {k: v / total for k, v in shares.items()}


def _price(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def build_flow(
    count: int,
    clients: int,
    instruments: int,
    mix: dict[str, float],
    seed: int,
    *,
    signing_keys: Sequence[str] | None = None,
    venue: str = "greenex-dev",
    sent_ms: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
) -> list[FlowOrder]:
    """`count` signed commands, round-robin over the clients; cancels target the sender's resting orders.

    Client i signs with `signing_keys[i]` (default: secret_of its name), for `venue`, command n stamped
    `sent_ms[n]` (its planned send time; default 0)."""
    names = list(names) if names is not None else client_names(clients)
    keys = list(signing_keys) if signing_keys is not None else [secret_of(n) for n in names]
    rng = random.Random(seed)
    syms = symbols(instruments)
    kinds = list(mix)
    weights = [mix[k] for k in kinds]
    resting: list[list[tuple[str, str]]] = [[] for _ in names]  # per client: (symbol, client order id)
    encode = msgspec.json.encode
    out: list[FlowOrder] = []
    for n in range(count):
        c = n % clients
        who = names[c]
        cid = f"o{n}"
        kind = rng.choices(kinds, weights)[0]
        if kind == "cancel" and resting[c]:
            sym, orig = resting[c].pop(rng.randrange(len(resting[c])))
            cmd: dict[str, str | int] = {
                "type": "cancel_order",
                "participant": who,
                "venue": venue,
                "sent_ms": sent_ms[n] if sent_ms is not None else 0,
                "client_order_id": cid,
                "instrument": sym,
                "orig_client_order_id": orig,
            }
        else:
            sym = syms[rng.randrange(instruments)]
            side = "buy" if rng.random() < 0.5 else "sell"
            sign = 1 if side == "buy" else -1
            cmd = {
                "type": "new_order",
                "participant": who,
                "venue": venue,
                "sent_ms": sent_ms[n] if sent_ms is not None else 0,
                "client_order_id": cid,
                "instrument": sym,
                "side": side,
                "quantity": rng.randint(1, 10),
            }
            if kind == "market":
                cmd |= {"order_type": "market", "time_in_force": "IOC"}
            elif kind == "marketable":
                # Crosses the spread by up to 5 ticks; GTC so a remainder rests and feeds later takers.
                cmd |= {"order_type": "limit", "price": _price(REFERENCE_FEN + sign * rng.randint(1, 5))}
            else:
                cmd |= {"order_type": "limit", "price": _price(REFERENCE_FEN - sign * rng.randint(1, 10))}
                resting[c].append((sym, cid))
                if len(resting[c]) > 200:
                    resting[c].pop(0)
        orig_cid = cmd.get("orig_client_order_id")
        target = orig_cid if isinstance(orig_cid, str) else None
        out.append(FlowOrder(c, cid, encode(signed(cmd, keys[c])), target))
    return out
