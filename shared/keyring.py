"""Where the exchange's secrets live: a directory of one file per secret, mode 0600, never in Redis.

| file | what | who needs it |
|---|---|---|
| `log-master.key` | derives each producer's tag key (eventlog/auth.py) | every service; `log verify` |
| `kek.key` | seals participants' HMAC keys in the log | intake; the operator's provisioning |
| `exchange-box.key` | X25519: opens keys participants send when they rotate | intake |
| `checkpoint.key` | Ed25519: signs log checkpoints | the checkpoint process |
| `operator.secret` | the operator's HMAC key for signed operator commands | intake; the operator's CLI |
| `redis-<user>.pass` | a Redis user's password | that user (a service process, the operator, admin) |
| `exchange-box.pub`, `checkpoint.pub` | the public halves, safe to publish | anyone |

In a deployment each process is given only its own files (`files_of`; deploy/docker-compose.yml mounts
just those); on one machine one directory holds them all (`GREENEX_KEYS_DIR`, default `var/keys`),
created by `greenex keys init`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.crypto import KEY_BYTES, CheckpointKey, ExchangeBox, Sealer, derive_key, new_key
from shared.eventlog.auth import ProducerKeys

__all__ = ["KEY_FILES", "WELL_KNOWN_SECRETS", "KeyMissing", "KeyRing", "files_of", "new_password"]

# Values that must never protect a running exchange: defaults that once stood in the source.
WELL_KNOWN_SECRETS = frozenset({"greenex-dev-operator", "", "secret", "changeme", "operator"})
KEY_FILES = ("log-master.key", "kek.key", "exchange-box.key", "checkpoint.key", "operator.secret")


# What each process reads from the ring besides its Redis password (a deployment mounts only these).
NEEDS: dict[str, tuple[str, ...]] = {
    "intake": ("log-master.key", "kek.key", "exchange-box.key", "operator.secret"),
    "checkpoint": ("log-master.key", "checkpoint.key"),
}
FOLLOWER_NEEDS = ("log-master.key",)


def files_of(process: str, user: str | None = None) -> tuple[str, ...]:
    """The ring's files a service process reads: its secrets and its own Redis password (as `user`, its
    partition's user: shared/partitions.partition_user)."""
    return (*NEEDS.get(process, FOLLOWER_NEEDS), f"redis-{user or process}.pass")


class KeyMissing(Exception):  # noqa: N818  -- named as the fact
    """A secret the process needs is not in its key directory (or is a well-known value)."""


def _refuse_if_exposed(file: Path, stat: os.stat_result, *, public: bool) -> None:
    """A secret anyone else on the machine can read, or that someone else owns, is not used."""
    if public:
        return
    if stat.st_uid != os.getuid():
        raise KeyMissing(f"{file} belongs to uid {stat.st_uid}, not to this user ({os.getuid()})")
    if stat.st_mode & 0o077:
        mode = oct(stat.st_mode & 0o777)
        raise KeyMissing(f"{file} is readable by others (mode {mode}); `chmod 600 {file}` if it is yours")


def new_password() -> str:
    return secrets.token_urlsafe(24)


def _raw(private: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


class KeyRing:
    """The secrets of one exchange, read from its key directory when first asked for."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: Path | str, redis_users: tuple[str, ...] = ()) -> KeyRing:
        """Make the directory and every secret it lacks (existing files are kept): 0700 and 0600. Safe
        while another process makes the same ring: each name goes to the first maker (`_create`)."""
        ring = cls(path)
        ring.path.mkdir(parents=True, exist_ok=True)
        ring.path.chmod(0o700)
        ring._create("log-master.key", new_key().hex())
        ring._create("kek.key", new_key().hex())
        ring._create("operator.secret", secrets.token_hex(KEY_BYTES))
        if not ring.has("exchange-box.key"):
            ring._create("exchange-box.key", _raw(X25519PrivateKey.generate()).hex())
        if not ring.has("checkpoint.key"):
            ring._create("checkpoint.key", _raw(Ed25519PrivateKey.generate()).hex())
        ring._create("exchange-box.pub", ring.box().public_key.hex(), private=False, replace=True)
        ring._create("checkpoint.pub", ring.checkpoint().public_key.hex(), private=False, replace=True)
        for user in redis_users:
            ring._create(f"redis-{user}.pass", new_password())
        return ring

    def _create(self, name: str, value: str, *, private: bool = True, replace: bool = False) -> bool:
        """Write a new file, never through a symlink and never readable by others even for a moment
        (O_EXCL|O_NOFOLLOW with its final mode); `replace` renames it over an existing one.

        The value is written under a temporary name first and then published whole, so a reader never
        sees a half-written key, and two processes making the same ring at once agree: link(2) gives
        the name to the first of them only (the other keeps the winner's file, whose value it reads
        back like everything else), where `exists()` then `O_EXCL` would crash the second."""
        file = self.path / name
        if os.path.lexists(file) and not replace:
            return False
        file.parent.mkdir(mode=0o700, exist_ok=True)  # a name may sit in a folder of the ring
        fresh = file.with_name(f".{file.name}.{secrets.token_hex(4)}.new")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(fresh, flags, 0o600 if private else 0o644)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(value + "\n")
            if replace:
                os.replace(fresh, file)  # a rename replaces a symlink itself, never what it points to
                return True
            try:
                os.link(fresh, file)  # never follows, never overwrites: a symlink there stays as it is
            except FileExistsError:
                return False  # made by someone else meanwhile: theirs is the ring's
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):  # renamed away under `replace`
                os.unlink(fresh)

    def write_private(self, name: str, value: str) -> None:
        """A private file of the ring that is not a secret read back by name (e.g. users.acl)."""
        self._create(name, value.removesuffix("\n"))

    def read(self, name: str) -> str:
        file = self.path / name
        try:
            fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise KeyMissing(f"no {name} in {self.path} (run `greenex keys init`)") from None
        except OSError as exc:  # ELOOP: a symlink where a key should be
            raise KeyMissing(f"{file} is not a plain file ({exc.strerror}): put the key there") from None
        with os.fdopen(fd) as handle:
            _refuse_if_exposed(file, os.fstat(handle.fileno()), public=name.endswith(".pub"))
            value = handle.read().strip()
        if value in WELL_KNOWN_SECRETS:
            raise KeyMissing(f"{file} holds a well-known value; generate a real one (`greenex keys init`)")
        return value

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def producer_keys(self, partition: int = 1) -> ProducerKeys:
        """The producer keys of one partition's log (shared/partitions.py): partition 1's come from the
        log master key itself, each other partition's from a key derived from it for that partition. So a
        tagged entry copied into another partition's log, by someone holding a service's Redis password,
        does not verify there (a deposit copied across would otherwise be cash from nothing)."""
        master = bytes.fromhex(self.read("log-master.key"))
        if partition != 1:
            master = derive_key(master, f"greenex partition {partition}")
        return ProducerKeys(master)

    def sealer(self) -> Sealer:
        return Sealer(bytes.fromhex(self.read("kek.key")))

    def box(self) -> ExchangeBox:
        return ExchangeBox(bytes.fromhex(self.read("exchange-box.key")))

    def box_public(self) -> bytes:
        """The exchange's X25519 public key (participants seal rotated keys to it)."""
        return bytes.fromhex(self.read("exchange-box.pub"))

    def checkpoint_public(self) -> bytes:
        return bytes.fromhex(self.read("checkpoint.pub"))

    def checkpoint(self) -> CheckpointKey:
        return CheckpointKey(bytes.fromhex(self.read("checkpoint.key")))

    def operator_secret(self) -> str:
        return self.read("operator.secret")

    def redis_password(self, user: str) -> str:
        return self.read(f"redis-{user}.pass")

    def set_redis_password(self, user: str, password: str) -> None:
        self._create(f"redis-{user}.pass", password, replace=True)
