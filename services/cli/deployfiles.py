"""deploy/Procfile and deploy/docker-compose.yml, generated from the system map (`greenex system`)."""

from __future__ import annotations

from pathlib import Path

from services.runtime.system import System
from shared.keyring import files_of

__all__ = ["COMPOSE", "PROCFILE", "compose_text", "procfile_text", "write_deploy_files"]

_DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROCFILE = _DEPLOY / "Procfile"
COMPOSE = _DEPLOY / "docker-compose.yml"
# How long a Procfile's service waits for the ring and Redis (services/runtime/startwait.py): Redis
# replaying a large AOF answers only once it has loaded it (roughly seconds per GB).
_WAIT_S = 120
_HEADER = "# Generated from services/system.py by `greenex system --write`; edit the map, not this file.\n"


def procfile_text(system: System) -> str:
    lines = [
        _HEADER.rstrip(),
        "# One process per entry, as `greenex up` runs them, from the checkout's root with nothing made",
        "# first: `honcho start -f deploy/Procfile` (foreman, overmind: add `-d .`). A runner starts every",
        "# line at once (each in /bin/sh) and stops them all when one exits, so:",
        "# - the redis line makes what a fresh checkout lacks: the key ring in var/keys if it is missing",
        "#   (Redis's users are in it; safe beside a `greenex keys init` or `greenex up` making it too)",
        "#   and var/redis. Redis runs with deploy/redis.conf (appendonly yes: the event log lives in it),",
        "#   only on a socket (the services' default REDIS_URL), with the ring's ACL file (its default",
        "#   user locked), and stops last (services/cli/procfile_redis.py), after the services' snapshots;",
        f"# - each service waits up to {_WAIT_S} s for its key files and for Redis to answer, and says so.",
        "redis: python -m services.cli.main keys init && mkdir -p var/redis"
        " && exec python -m services.cli.procfile_redis redis-server deploy/redis.conf"
        " --port 0 --unixsocket $PWD/var/redis/redis.sock --unixsocketperm 700"
        " --aclfile $PWD/var/keys/redis/users.acl --dir var/redis",
        # exec: the runner's signal goes to the service itself, which stops cleanly, not to a shell
        *(f"{p.name}: exec python -m {p.module} --wait {_WAIT_S}" for p in system.processes),
    ]
    return "\n".join(lines) + "\n"


def compose_text(system: System) -> str:
    head = f"""{_HEADER}# Redis (AOF on, ACLs on, default user locked) plus every process of the map,
# as `greenex up` starts them.
# The key ring stays on the host and never enters an image; make it first, then start as its owner
# (the key files are 0600, so every container runs as that user):
#   greenex keys init && mkdir -p var/redis-data
#   GREENEX_UID=$(id -u) GREENEX_GID=$(id -g) docker compose -f deploy/docker-compose.yml up --build
# Each service sees only the ring's files it reads (shared/keyring.files_of), read-only; Redis sees
# only the folder of its ACL file.
x-service: &service
  build: {{context: .., dockerfile: deploy/Dockerfile}}
  user: "${{GREENEX_UID:-1000}}:${{GREENEX_GID:-1000}}"
  environment:
    REDIS_URL: redis://redis:6379/0
    GREENEX_KEYS_DIR: /keys
    GREENEX_VENUE: ${{GREENEX_VENUE:-greenex}}
  depends_on: {{redis: {{condition: service_healthy}}}}
  restart: always  # services fail fast on a broken invariant and rebuild from the log on restart

services:
  redis:
    image: redis:7
    user: "${{GREENEX_UID:-1000}}:${{GREENEX_GID:-1000}}"
    # Users from the ring's ACL file (ACL SAVE writes participants added later back to it, hence rw);
    # the default user is locked there, so listening beyond loopback needs no protected mode.
    command: ["redis-server", "/usr/local/etc/redis/redis.conf", "--bind", "0.0.0.0",
              "--aclfile", "/acl/users.acl", "--dir", "/data"]
    volumes:
      - ./redis.conf:/usr/local/etc/redis/redis.conf:ro
      - ../var/keys/redis:/acl
      - ../var/redis-data:/data
    # Without a login PING answers NOAUTH: the server is up, which is all this checks.
    healthcheck: {{test: ["CMD-SHELL", "redis-cli ping | grep -qE 'PONG|NOAUTH'"], interval: 2s, retries: 15}}
    ports: ["127.0.0.1:6379:6379"]
"""
    services = "".join(
        f'  {p.name}:\n    <<: *service\n    command: ["python", "-m", "services", "{p.name}"]\n'
        f"    volumes:\n{_mounts(p.name)}"
        for p in system.processes
    )
    return head + services


def _mounts(process: str) -> str:
    return "".join(f"      - ../var/keys/{name}:/keys/{name}:ro\n" for name in files_of(process))


def write_deploy_files(system: System) -> list[Path]:
    PROCFILE.write_text(procfile_text(system))
    COMPOSE.write_text(compose_text(system))
    return [PROCFILE, COMPOSE]
