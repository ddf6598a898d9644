"""`greenex keys verifier`: a verifier's report-signing key pair, the private half only in a new 0600 file."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from typer.testing import CliRunner

from services.cli.security_cli import keys_app
from shared.attestation import public_key_of, sign_report, verify_report


def test_the_private_key_goes_to_a_new_owner_only_file_and_the_public_key_is_printed(tmp_path: Path) -> None:
    """The file is mode 0600 and holds the private key; stdout has the public key that checks its
    signatures but never the private key unless asked; an existing file is never overwritten."""
    out = tmp_path / "cqc.key"
    made = CliRunner().invoke(keys_app, ["verifier", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    private = out.read_text().strip()
    public = public_key_of(private)
    assert f"public key (Ed25519)  {public}" in made.output
    assert private not in made.output
    report = hashlib.sha256(b"report").hexdigest()
    signature = sign_report(private, "SF1", "2024-01-01", "2024-12-31", 2024, 10, report)
    assert verify_report(public, signature, "SF1", "2024-01-01", "2024-12-31", 2024, 10, report)

    again = CliRunner().invoke(keys_app, ["verifier", "--out", str(out)])
    assert again.exit_code == 1
    assert out.read_text().strip() == private  # kept

    shown = CliRunner().invoke(keys_app, ["verifier", "--out", str(tmp_path / "b.key"), "--show-private"])
    assert shown.exit_code == 0
    assert (tmp_path / "b.key").read_text().strip() in shown.output
