"""A local Redis Cluster on loopback for development and tests: `masters` masters with `replicas` replicas
each, every node its own `redis-server` in cluster mode with AOF, and (given a key ring's ACL file) the
exchange's Redis users on every node. `deploy/cluster.sh` runs one on ports 7000-7005 until Ctrl-C.

Replicas replicate as the admin user (`masteruser`/`masterauth`, written to a 0600 config file, never to
argv), and `redis-cli --cluster create` logs in as admin with the password in REDISCLI_AUTH.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

__all__ = ["LocalCluster", "free_cluster_ports"]

NODE_TIMEOUT_MS = 1000  # how long a master may be silent before its replica takes over


def free_cluster_ports(count: int, low: int = 20_000, high: int = 45_000) -> list[int]:
    """`count` ports free on loopback with their cluster bus ports (port + 10,000) free too: below
    55,536, which the kernel's ephemeral ports often are not."""
    found: list[int] = []
    for port in random.sample(range(low, high), high - low):
        if all(_free(p) for p in (port, port + 10_000)):
            found.append(port)
            if len(found) == count:
                return found
    raise OSError(f"no {count} free port pairs between {low} and {high}")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalCluster:
    home: Path
    ports: list[int]
    replicas: int = 1
    aclfile: Path | None = None
    admin: tuple[str, str] | None = None  # (user, password) when the nodes load `aclfile`
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, timeout_s: float = 30.0) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise SystemExit("redis-server and redis-cli are needed (run bash deploy/setup.sh)")
        for port in self.ports:
            self._start_node(server, port)
        env = {**os.environ, **({"REDISCLI_AUTH": self.admin[1]} if self.admin else {})}
        user = ["--user", self.admin[0]] if self.admin else []
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        create = [cli, *user, "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas),
                  "--cluster-yes"]  # fmt: skip
        subprocess.run(create, env=env, check=True, capture_output=True, timeout=timeout_s)  # noqa: S603
        self.wait_ok(timeout_s)

    def _start_node(self, server: str, port: int) -> None:
        workdir = self.home / str(port)
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "node.conf"
        lines = ["bind 127.0.0.1", f"port {port}", "cluster-enabled yes", "cluster-config-file nodes.conf",
                 f"cluster-node-timeout {NODE_TIMEOUT_MS}", "appendonly yes", 'save ""', f"dir {workdir}",
                 "logfile redis.log",
                 # A replica's first sync starts at once (by default a master waits 5 s for more
                 # replicas): until it is done the replica cannot take over.
                 "repl-diskless-sync-delay 0"]  # fmt: skip
        if self.aclfile is not None:
            lines.append(f"aclfile {self.aclfile}")
        if self.admin is not None:
            lines += [f"masteruser {self.admin[0]}", f"masterauth {self.admin[1]}"]
        conf.touch(mode=0o600)
        conf.write_text("\n".join(lines) + "\n")
        self.processes[port] = subprocess.Popen(  # noqa: S603 - the distribution's redis-server
            [server, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while self._client(port) is None:
            if time.monotonic() > deadline or self.processes[port].poll() is not None:
                log = workdir / "redis.log"
                raise SystemExit(f"redis-server did not start on port {port} (its log: {log})")
            time.sleep(0.05)

    def _client(self, port: int) -> Redis | None:
        user, password = self.admin or (None, None)
        client = Redis(port=port, username=user, password=password, socket_timeout=2)
        try:
            client.ping()
        except (RedisError, OSError):
            client.close()
            return None
        return client

    def info(self, port: int) -> dict[str, str]:
        client = self._client(port)
        if client is None:
            return {}
        try:
            raw: Any = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
        finally:
            client.close()
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every running node says the cluster is ok (every slot served) and every replica has
        finished its sync with its master (before that it could not take over)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            running = [p for p, proc in self.processes.items() if proc.poll() is None]
            if all(self.info(port).get("cluster_state") == "ok" and self._synced(port) for port in running):
                return
            time.sleep(0.1)
        raise TimeoutError("the cluster did not reach cluster_state:ok with every replica in sync")

    def _synced(self, port: int) -> bool:
        client = self._client(port)
        if client is None:
            return False
        try:
            replication: dict[str, Any] = client.info("replication")
        finally:
            client.close()
        return replication.get("role") != "slave" or replication.get("master_link_status") == "up"

    def replicas_of(self, master: int) -> list[int]:
        """The ports of the replicas serving `master`'s slots."""
        client = self._client(master)
        if client is None:
            return []
        try:
            ranges: Any = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
        finally:
            client.close()
        return sorted({int(node[1]) for _first, _last, lead, *rest in ranges if int(lead[1]) == master
                       for node in rest})  # fmt: skip

    def pause(self, port: int) -> None:
        """SIGSTOP one node: alive to the kernel, silent to the cluster (a stalled replica)."""
        self.processes[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGCONT)

    def restart(self, port: int) -> None:
        """Start a stopped node again on its own data: it rejoins, as a replica if its slots moved."""
        server = shutil.which("redis-server")
        assert server is not None
        self._start_node(server, port)

    def kill(self, port: int) -> None:
        """kill -9 one node (a crashed machine, as far as the cluster can tell)."""
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait()

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a paused node cannot act on its SIGTERM
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", default="var/cluster", help="where the nodes keep their data")
    parser.add_argument("--first-port", type=int, default=7000)
    parser.add_argument("--masters", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--aclfile", help="a key ring's ACL file (greenex keys init): the exchange's users")
    parser.add_argument("--admin-password-file", help="the admin user's password (with --aclfile)")
    args = parser.parse_args()
    count = args.masters * (1 + args.replicas)
    admin = None
    if args.aclfile:
        if not args.admin_password_file:
            parser.error("--aclfile needs --admin-password-file (the nodes' default user is locked)")
        admin = ("admin", Path(args.admin_password_file).read_text().strip())
    ports = list(range(args.first_port, args.first_port + count))
    aclfile = Path(args.aclfile).resolve() if args.aclfile else None
    cluster = LocalCluster(Path(args.home).resolve(), ports, args.replicas, aclfile, admin)
    cluster.start()
    first, last = cluster.ports[0], cluster.ports[-1]
    print(f"cluster ok: {args.masters} masters, {args.replicas} replica(s) each, 127.0.0.1:{first}-{last}; "
          "Ctrl-C stops it", flush=True)  # fmt: skip
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
