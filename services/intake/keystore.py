"""Participants' signing keys as intake holds them: opened from the log's sealed keys, each valid from
its registration until a rotation's overlap ends. Pure: the caller passes the time."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

from shared.crypto import Sealer
from shared.domain.ledger import KeyRotated, ParticipantRegistered
from shared.protocol import sign

__all__ = ["SigningKeys"]

_FOREVER = 2**63 - 1
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class _Key:
    key_id: str
    secret: str
    valid_until_ns: int = _FOREVER


class SigningKeys:
    """Every participant's keys (the operator's from configuration, never from the log)."""

    def __init__(self, sealer: Sealer | None, operator: str, operator_secret: str) -> None:
        self._sealer = sealer
        self._keys: dict[str, list[_Key]] = {operator: [_Key("config", operator_secret)]}
        self._issued: dict[str, int] = {}  # keys a participant has had: ids never repeat, though old keys go

    def __contains__(self, participant: object) -> bool:
        return participant in self._keys

    def register(self, event: ParticipantRegistered) -> None:
        self._keys[event.participant] = [_Key(event.key.key_id, self._open(event.participant, event))]
        self._issued[event.participant] = 1

    def rotate(self, event: KeyRotated) -> None:
        keys = self._keys.setdefault(event.participant, [])
        for key in keys:
            key.valid_until_ns = min(key.valid_until_ns, event.previous_valid_until_ns)
        keys.append(_Key(event.key.key_id, self._open(event.participant, event)))
        self._issued[event.participant] = self._issued.get(event.participant, 0) + 1
        # Keys past any overlap can never verify again: drop all but the newest few.
        del keys[:-3]

    def _open(self, participant: str, event: ParticipantRegistered | KeyRotated) -> str:
        if self._sealer is None:
            raise PermissionError("intake was built without the key-encryption key")
        return self._sealer.open(event.key, participant).decode()

    def next_key_id(self, participant: str) -> str:
        return f"k{self._issued.get(participant, 0) + 1}"

    def verifies(self, participant: str, command: dict[str, Any], now_ns: int) -> bool:
        """Whether `sig` is the HMAC of the command under a key of the participant valid at `now_ns`."""
        sig = command.get("sig")
        # compare_digest raises TypeError on a non-ASCII str: only 64 lowercase hex digits get that far.
        if not isinstance(sig, str) or not _HEX_SHA256.fullmatch(sig):
            return False
        given = sig.encode()
        return any(
            key.valid_until_ns >= now_ns and hmac.compare_digest(given, sign(command, key.secret).encode())
            for key in self._keys.get(participant, ())
        )
