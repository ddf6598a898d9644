"""The exchange's cryptography, in one place, on pyca/cryptography and the standard library.

- Producer tags: HMAC-SHA256 under a key derived per producer from the log master key (HKDF), so a log
  entry proves it was written by a holder of the service keys (about 2 us per entry).
- Sealed secrets: AES-256-GCM under the key-encryption key (KEK), bound to what they belong to by the
  associated data; how participants' HMAC keys live in the log without being readable there.
- Sealed to the exchange: X25519 + HKDF + AES-GCM (an ECIES construction), how a participant sends a new
  key that only intake can open.
- Checkpoints: Ed25519 (RFC 8032; deterministic signatures), which anyone can verify with the public key.
"""

from __future__ import annotations

import hashlib
import os

import msgspec
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_BYTES",
    "SecretRefused",
    "BoxedSecret",
    "CheckpointKey",
    "ExchangeBox",
    "SealedSecret",
    "Sealer",
    "derive_key",
    "fingerprint",
    "new_key",
    "open_ed25519_public",
    "seal_to_exchange",
    "verify_checkpoint",
]

KEY_BYTES = 32


class SecretRefused(ValueError):  # noqa: N818  -- named as the fact, like the log's exceptions
    """A sealed secret that does not open: wrong key, wrong owner, or damaged."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def derive_key(master: bytes, purpose: str) -> bytes:
    """A key for one purpose (e.g. one producer's tags) from a master key; HKDF-SHA256."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()).derive(master)


def fingerprint(secret: bytes) -> str:
    """A short public name for a secret (hex of a SHA-256 prefix): lets an operator see which key a
    participant holds without revealing it."""
    return hashlib.sha256(b"greenex key fingerprint:" + secret).hexdigest()[:16]


class SealedSecret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A secret encrypted under the KEK: what the log holds instead of the secret (hex fields, so it
    travels in a JSON operator command unchanged)."""

    key_id: str  # which of the owner's keys (k1, k2 ... after rotations)
    fingerprint: str
    nonce: str
    ciphertext: str  # AES-256-GCM, the tag included


class Sealer:
    """Seals and opens secrets under the key-encryption key; the associated data binds each sealed
    secret to its owner and key id, so one cannot be moved to another participant."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEY_BYTES:
            raise ValueError(f"a key-encryption key is {KEY_BYTES} bytes, not {len(kek)}")
        self._aead = AESGCM(kek)

    def seal(self, secret: bytes, owner: str, key_id: str) -> SealedSecret:
        nonce = os.urandom(12)
        ciphertext = self._aead.encrypt(nonce, secret, _aad(owner, key_id))
        return SealedSecret(key_id, fingerprint(secret), nonce.hex(), ciphertext.hex())

    def open(self, sealed: SealedSecret, owner: str) -> bytes:
        try:
            nonce, ciphertext = bytes.fromhex(sealed.nonce), bytes.fromhex(sealed.ciphertext)
            secret = self._aead.decrypt(nonce, ciphertext, _aad(owner, sealed.key_id))
        except (InvalidTag, ValueError) as exc:
            raise SecretRefused(f"the sealed key {sealed.key_id} of {owner} does not open") from exc
        if fingerprint(secret) != sealed.fingerprint:
            raise SecretRefused(f"the sealed key {sealed.key_id} of {owner} has another fingerprint")
        return secret


def _aad(owner: str, key_id: str) -> bytes:
    return f"greenex sealed key:{owner}:{key_id}".encode()


class BoxedSecret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A secret sealed to the exchange's X25519 public key; hex fields, so it travels in JSON."""

    ephemeral: str  # the sender's one-time X25519 public key
    nonce: str
    ciphertext: str


def seal_to_exchange(public_key: bytes, secret: bytes, context: str) -> BoxedSecret:
    """Encrypt `secret` so that only the holder of the exchange's X25519 private key can read it;
    `context` (e.g. `rotate_key:<participant>`) is bound to the ciphertext."""
    ephemeral = X25519PrivateKey.generate()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public_key))
    ephemeral_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = _box_key(shared, ephemeral_public, public_key)
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, secret, context.encode())
    return BoxedSecret(ephemeral_public.hex(), nonce.hex(), ciphertext.hex())


class ExchangeBox:
    """The exchange's X25519 key pair for secrets sent to it (intake holds the private key)."""

    def __init__(self, private_key: bytes) -> None:
        self._private = X25519PrivateKey.from_private_bytes(private_key)
        self.public_key = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def open(self, boxed: BoxedSecret, context: str) -> bytes:
        try:
            ephemeral = bytes.fromhex(boxed.ephemeral)
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            key = _box_key(shared, ephemeral, self.public_key)
            return AESGCM(key).decrypt(
                bytes.fromhex(boxed.nonce), bytes.fromhex(boxed.ciphertext), context.encode()
            )
        except (InvalidTag, ValueError) as exc:
            raise SecretRefused("the boxed secret does not open with the exchange's key") from exc


def _box_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=ephemeral_public + recipient_public,
        info=b"greenex box",
    ).derive(shared)


class CheckpointKey:
    """The exchange's Ed25519 signing key for log checkpoints."""

    def __init__(self, private_key: bytes) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(private_key)
        self.public_key = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def open_ed25519_public(public_key: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_key)


def verify_checkpoint(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        open_ed25519_public(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
