"""What an operator or a regulator checks a log with: the producer tags (with the log master key, if
this machine holds it), causations against the system map, checkpoints against the public key."""

from __future__ import annotations

from pathlib import Path

from services.system import SYSTEM
from shared.config import Settings
from shared.eventlog.entry import GENESIS_HASH
from shared.eventlog.verify import ChainVerifier
from shared.keyring import KeyMissing

__all__ = ["log_verifier", "public_key_of"]


def public_key_of(text: str) -> bytes:
    """An Ed25519 public key given as hex, or as a file holding the hex (e.g. checkpoint.pub)."""
    path = Path(text)
    raw = path.read_text().strip() if path.exists() else text.strip()
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise ValueError(f"{text!r} is neither a file nor a hex public key") from None
    if len(key) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, {text!r} holds {len(key)}")
    return key


def log_verifier(
    settings: Settings, public_key: str | None = None, *, start_seq: int = 1, prev_hash: bytes = GENESIS_HASH
) -> ChainVerifier:
    """A verifier holding whatever this machine has: the log master key (producer tags), the map's
    answers (causations), the checkpoint public key (given, or the key ring's checkpoint.pub)."""
    ring = settings.keyring
    try:
        producer_keys = settings.producer_keys()
    except KeyMissing:
        producer_keys = None  # a regulator holds no service key: the chain and checkpoints still check
    if public_key is not None:
        checkpoint_key: bytes | None = public_key_of(public_key)
    else:
        checkpoint_key = ring.checkpoint_public() if ring.has("checkpoint.pub") else None
    answers = {core.name: core.answers_to for core in SYSTEM.cores}
    return ChainVerifier(
        start_seq=start_seq, prev_hash=prev_hash, producer_keys=producer_keys, answers=answers,
        checkpoint_key=checkpoint_key, partition=settings.partition,
    )  # fmt: skip
