"""`greenex keys ...` and `greenex acl ...`: the key ring and the Redis users of every role."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.cli.provision import ACL_FILE, apply_acl, init_keys
from services.runtime.acl import service_users
from services.system import SYSTEM
from shared.attestation import new_verifier_key
from shared.config import load_settings
from shared.keyring import KeyMissing

__all__ = ["acl_app", "keys_app", "write_private_key"]

keys_app = typer.Typer(help="The exchange's key ring (secrets never enter Redis).", no_args_is_help=True)
acl_app = typer.Typer(help="Redis users of every role, generated from the key schema.", no_args_is_help=True)


@keys_app.command("init")
def keys_init() -> None:
    """Create the key ring (GREENEX_KEYS_DIR, default var/keys): every missing secret, each file 0600,
    and the ACL file a private Redis starts with. Existing secrets are kept."""
    settings = load_settings()
    ring = init_keys(settings, SYSTEM)
    typer.echo(f"key ring at {ring.path} (files 0600); a private Redis reads {ring.path / ACL_FILE}")


@keys_app.command("public")
def keys_public() -> None:
    """The exchange's public keys: the checkpoint key anyone verifies logs with, and the box key
    participants seal rotated keys to. Safe to publish."""
    ring = load_settings().keyring
    try:
        typer.echo(f"checkpoint (Ed25519)  {ring.checkpoint_public().hex()}")
        typer.echo(f"box (X25519)          {ring.box_public().hex()}")
    except KeyMissing as missing:
        typer.echo(f"error: {missing}", err=True)
        raise typer.Exit(1) from None


@keys_app.command("verifier")
def keys_verifier(
    out: Annotated[
        Path, typer.Option("--out", help="where to write the private key (made 0600; never overwritten)")
    ],
    show_private: Annotated[
        bool, typer.Option("--show-private", help="also print the private key (a secret: only if asked)")
    ] = False,
) -> None:
    """A verifier's report-signing key pair (Ed25519): the private key to a new file of mode 0600, the
    public key printed for the operator's `greenex op accredit-verifier --public-key`. Made on the
    verifier's machine: the exchange never sees the private key."""
    private, public = new_verifier_key()
    try:
        write_private_key(out, private)
    except OSError as failed:
        typer.echo(f"error: cannot write {out}: {failed.strerror or failed} (an existing key is never "
                   "overwritten)", err=True)  # fmt: skip
        raise typer.Exit(1) from None
    typer.echo(f"public key (Ed25519)  {public}")
    typer.echo(f"private key written to {out} (mode 0600); sign reports with it (shared/attestation.py)")
    typer.echo("give the public key to the operator: greenex op accredit-verifier VERIFIER "
               f"--public-key {public} --expires YYYY-MM-DD --scope ...")  # fmt: skip
    if show_private:
        typer.echo(f"private key (secret)  {private}")


def write_private_key(path: Path, private_hex: str) -> None:
    """A new file readable by its owner only (created with that mode: never a moment world-readable);
    FileExistsError rather than overwrite a key, and no following a planted symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, f"{private_hex}\n".encode())
    finally:
        os.close(fd)


@acl_app.command("show")
def acl_show() -> None:
    """Every role's rules (keys, commands) as `ACL SETUSER` would take them, passwords left out."""
    for user, rules in service_users(SYSTEM, load_settings().partition_keys).items():
        typer.echo(f"{user}: {' '.join(rules)}")


@acl_app.command("apply")
def acl_apply(
    admin_url: Annotated[
        str,
        typer.Option(
            "--admin-url",
            help="Where Redis is (a fresh server's default user has ACL rights). Give no password here: "
            "it would show in the process list; set GREENEX_ADMIN_PASSWORD (and --admin-user) instead.",
        ),
    ],
    admin_user: Annotated[
        str | None, typer.Option("--admin-user", help="A user with ACL rights (default: the URL's).")
    ] = None,
    keep_default: Annotated[
        bool, typer.Option(help="Leave the default user on (not for a deployment).")
    ] = False,
) -> None:
    """Create (or reset) every role's Redis user from the key ring on a running Redis, then lock its
    default user (a password nobody knows). Participants' users come from `greenex op add-participant`."""
    settings = load_settings()

    async def run() -> None:
        # A login in the URL wins (redis-py's from_url); without one, these apply.
        password = os.environ.get("GREENEX_ADMIN_PASSWORD")
        admin = Redis.from_url(admin_url, username=admin_user, password=password)
        try:
            await apply_acl(admin, settings, SYSTEM, lock_default=not keep_default)
        finally:
            await admin.aclose()

    try:
        asyncio.run(run())
    except (KeyMissing, RedisError, OSError) as failed:
        typer.echo(f"error: {failed}", err=True)
        raise typer.Exit(1) from None
    typer.echo("users created: " + ", ".join(service_users(SYSTEM, settings.partition_keys)) + ", admin")
