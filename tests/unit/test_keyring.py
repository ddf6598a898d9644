"""The key ring made by several makers at once (a Procfile's redis line beside `greenex up`, say)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from services.cli.provision import ACL_FILE, init_keys, role_users
from services.system import SYSTEM
from shared.config import Settings
from shared.keyring import KeyRing

MAKERS, ROUNDS = 8, 10


def _race(settings: Settings) -> list[Exception]:
    """MAKERS threads make the ring at once (released together by a barrier); what each raised."""
    start, failures = threading.Barrier(MAKERS), []

    def make() -> None:
        start.wait()
        try:
            init_keys(settings, SYSTEM)
        except Exception as exc:  # noqa: BLE001 - any failure of any maker is the finding
            failures.append(exc)

    makers = [threading.Thread(target=make) for _ in range(MAKERS)]
    for maker in makers:
        maker.start()
    for maker in makers:
        maker.join(timeout=30)
    return failures


def test_makers_racing_agree_on_one_whole_ring(tmp_path: Path) -> None:
    """Eight threads make the same missing ring at the same instant, ten times over: none fails, no file
    is empty or left half-made, and the ring is one ring (the ACL file hashes the passwords on disk,
    each public key is its private key's)."""
    for round_ in range(ROUNDS):
        keys_dir = tmp_path / f"keys-{round_}"
        assert _race(Settings(keys_dir=str(keys_dir))) == []
        files = [f for f in keys_dir.rglob("*") if f.is_file()]
        assert [f.name for f in files if f.name.startswith(".")] == []  # no temporary file left
        assert all(f.read_text().strip() for f in files)
        ring = KeyRing(keys_dir)
        acl = (keys_dir / ACL_FILE).read_text()
        for user in role_users(SYSTEM):
            assert hashlib.sha256(ring.redis_password(user).encode()).hexdigest() in acl, user
        assert ring.box().public_key == ring.box_public()
        assert ring.checkpoint().public_key == ring.checkpoint_public()
