"""deploy/Procfile and deploy/docker-compose.yml, generated from the system map (`greenex system`)."""

from __future__ import annotations

from pathlib import Path

from services.runtime.system import System

__all__ = ["COMPOSE", "PROCFILE", "compose_text", "procfile_text", "write_deploy_files"]

_DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROCFILE = _DEPLOY / "Procfile"
COMPOSE = _DEPLOY / "docker-compose.yml"
_HEADER = "# Generated from services/system.py by `greenex system --write`; edit the map, not this file.\n"


def procfile_text(system: System) -> str:
    lines = [
        _HEADER.rstrip(),
        "# One process per entry, as `greenex up` runs them (honcho/foreman/overmind compatible).",
        "# Redis must run with deploy/redis.conf (appendonly yes): the event log lives in it.",
        "redis: redis-server deploy/redis.conf --dir var/redis",
        *(f"{p.name}: python -m {p.module}" for p in system.processes),
    ]
    return "\n".join(lines) + "\n"


def compose_text(system: System) -> str:
    head = f"""{_HEADER}# Redis (AOF on) plus every process of the map: the topology `greenex up` starts.
# `docker compose -f deploy/docker-compose.yml up --build`
x-service: &service
  build: {{context: .., dockerfile: deploy/Dockerfile}}
  environment:
    REDIS_URL: redis://redis:6379/0
    GREENEX_OPERATOR_SECRET: ${{GREENEX_OPERATOR_SECRET:-greenex-dev-operator}}
  depends_on: {{redis: {{condition: service_healthy}}}}
  restart: always  # services fail fast on a broken invariant and rebuild from the log on restart

services:
  redis:
    image: redis:7
    command: ["redis-server", "/usr/local/etc/redis/redis.conf",
              "--bind", "0.0.0.0", "--protected-mode", "no"]
    volumes:
      - ./redis.conf:/usr/local/etc/redis/redis.conf:ro
      - redis-data:/data
    healthcheck: {{test: ["CMD", "redis-cli", "ping"], interval: 2s, retries: 15}}
    ports: ["127.0.0.1:6379:6379"]
"""
    services = "".join(
        f'  {p.name}:\n    <<: *service\n    command: ["python", "-m", "services", "{p.name}"]\n'
        for p in system.processes
    )
    return head + services + "\nvolumes:\n  redis-data:\n"


def write_deploy_files(system: System) -> list[Path]:
    PROCFILE.write_text(procfile_text(system))
    COMPOSE.write_text(compose_text(system))
    return [PROCFILE, COMPOSE]
