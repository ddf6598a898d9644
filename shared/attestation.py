"""Verifiers' signed reports: the canonical message, signing (for verifiers' clients) and checking
(for the registry and anyone holding the verifier's public key from the log)."""

from __future__ import annotations

import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.crypto import verify_checkpoint

__all__ = [
    "PUBLIC_KEY_HEX",
    "new_verifier_key",
    "public_key_of",
    "report_message",
    "sign_report",
    "verify_report",
    "weak_key",
]

_DOMAIN = "greenex-verification-v1"
PUBLIC_KEY_HEX = re.compile(r"[0-9a-f]{64}")
_SIGNATURE_HEX = re.compile(r"[0-9a-f]{128}")
# The Ed25519 points of small order, sign bit cleared (libsodium's blocklist): under such a public key one
# signature verifies for every message, so anyone could "sign" a report as that verifier.
_SMALL_ORDER = frozenset(bytes.fromhex(h) for h in (
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
))  # fmt: skip


def weak_key(public_key: bytes) -> bool:
    """An encoding of a small-order point (either sign), which proves nothing about who signed."""
    return len(public_key) != 32 or public_key[:31] + bytes([public_key[31] & 0x7F]) in _SMALL_ORDER


def report_message(
    project: str, period_start: str, period_end: str, vintage: int, tonnes: int, report_hash: str
) -> bytes:
    """What a verifier signs: `greenex-verification-v1|<project>|<start>|<end>|<vintage>|<tonnes>|<hash>`.

    Every part is an id of [A-Za-z0-9_.], an ISO date, an integer or lower-case hex, so `|` cannot occur
    inside one and the message is unambiguous; the prefix keeps the signature from meaning anything else.
    """
    parts = (_DOMAIN, project, period_start, period_end, str(vintage), str(tonnes), report_hash)
    return "|".join(parts).encode()


def new_verifier_key() -> tuple[str, str]:
    """A fresh Ed25519 key pair as hex: (private key, public key for `accredit_verifier`)."""
    private = Ed25519PrivateKey.generate().private_bytes_raw().hex()
    return private, public_key_of(private)


def public_key_of(private_key: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def sign_report(
    private_key: str,
    project: str,
    period_start: str,
    period_end: str,
    vintage: int,
    tonnes: int,
    report_hash: str,
) -> str:
    """The hex Ed25519 signature to send as `signature` with `submit_verification`."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key))
    return key.sign(report_message(project, period_start, period_end, vintage, tonnes, report_hash)).hex()


def verify_report(
    public_key: str,
    signature: str,
    project: str,
    period_start: str,
    period_end: str,
    vintage: int,
    tonnes: int,
    report_hash: str,
) -> bool:
    """Whether `signature` is the verifier's over this report; False for any malformed input, a key of
    small order, or hex that is not the one lower-case spelling (a logged signature has one form)."""
    if not PUBLIC_KEY_HEX.fullmatch(public_key) or not _SIGNATURE_HEX.fullmatch(signature):
        return False
    key, sig = bytes.fromhex(public_key), bytes.fromhex(signature)
    message = report_message(project, period_start, period_end, vintage, tonnes, report_hash)
    return not weak_key(key) and verify_checkpoint(key, message, sig)
