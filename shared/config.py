"""Runtime settings read once from the environment, and the Redis connection each role makes."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

import msgspec
from redis.asyncio import Redis

from shared.eventlog.auth import ProducerKeys
from shared.keyring import KeyRing
from shared.keys import Keys
from shared.partitions import check_partitions, partition_prefix, partition_user, partition_venue

__all__ = [
    "ADMIN",
    "OPERATOR_USER",
    "PUBLIC_USER",
    "Settings",
    "cli_user",
    "connect",
    "greenex_home",
    "load_settings",
    "private_redis_url",
    "url_with_login",
]

# The Redis users every deployment has beside one per process and participant (services/runtime/acl.py).
ADMIN, OPERATOR_USER, PUBLIC_USER = "admin", "operator", "public"


def greenex_home() -> Path:
    """Where an exchange run from here keeps everything (`greenex up`): GREENEX_HOME, or `var/` of the
    working directory. One layout for every home (the demo's and the load test's too): Redis's data and
    socket in `redis/`, the key ring in `keys/`, archived log segments in `archive/`."""
    return Path(os.environ.get("GREENEX_HOME") or Path.cwd() / "var").resolve()


def private_redis_url() -> str:
    """The exchange's own Redis by default: the Unix socket under its home (what `greenex up` starts),
    never a server someone else runs."""
    return f"unix://{greenex_home() / 'redis' / 'redis.sock'}"


def cli_user() -> str:
    """The Redis user the CLI's views and replays log in as: the operator, unless GREENEX_CLI_USER says
    otherwise (admin, say, to replay a copy of the log kept under another prefix)."""
    return os.environ.get("GREENEX_CLI_USER", OPERATOR_USER)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str = msgspec.field(default_factory=private_redis_url)
    prefix: str = "greenex"  # every Redis key the exchange owns starts with this
    batch_size: int = 500  # entries per XREAD(GROUP) COUNT
    block_ms: int = 100
    snapshot_every: int = 100_000  # log entries between a follower's snapshots; 0: only at shutdown
    # the exchange's secrets (shared/keyring.py); never in Redis
    keys_dir: str = msgspec.field(default_factory=lambda: str(greenex_home() / "keys"))
    # segments of the log moved out of Redis (`greenex log archive`)
    archive_dir: str = msgspec.field(default_factory=lambda: str(greenex_home() / "archive"))
    venue: str = "greenex-dev"  # signed commands name it: one signed for another venue is refused
    command_window_ms: int = 30_000  # how far a command's sent_ms may be from intake's clock
    checkpoint_every: int = 10_000  # log entries between signed checkpoints (and at every close of day)
    appendfsync: str = "everysec"  # a private Redis's durability profile: everysec or always
    lease: str = ""  # the value of the lease this process holds (set at start, shared/eventlog/lease.py)
    web_host: str = "127.0.0.1"  # where `greenex web` serves the public pages (GREENEX_WEB_HOST)
    web_port: int = 8080  # GREENEX_WEB_PORT; 0: any free port (the tests' exchanges)
    cluster_nodes: str = ""  # GREENEX_CLUSTER_NODES: more cluster nodes than REDIS_URL's, "host:port,..."
    # GREENEX_WAIT_REPLICAS: reports go out only once this many replicas have the entries they report
    wait_replicas: int = 0
    # GREENEX_PARTITIONS: how many partitions the exchange runs (shared/partitions.py); GREENEX_PARTITION:
    # the one this process (or CLI command) works in, 1 unless told
    partitions: int = 1
    partition: int = 1

    @property
    def reports_in_append(self) -> bool:
        """Whether matching writes its events' reports in the append that logs them (issue 17, item 4).
        Not under the strict profile: a report must not be readable before a replica holds its entry,
        so there the report publisher, which waits for the replicas, writes them all."""
        return self.wait_replicas == 0

    def __post_init__(self) -> None:
        if self.appendfsync not in ("everysec", "always"):
            raise ValueError(f"GREENEX_APPENDFSYNC is everysec or always, not {self.appendfsync!r}")
        check_partitions(self.partition, self.partitions)
        # Checkpoints sign `<venue>/p<n>` for partition n and separate their fields with ':'.
        if not self.venue.isprintable() or not self.venue.strip() or any(c in self.venue for c in "/: "):
            why = "GREENEX_VENUE is printable text without '/', ':' or spaces"
            raise ValueError(f"{why}, not {self.venue!r}")

    @property
    def keys(self) -> Keys:
        """The names of every key of this exchange's partition (shared/keys.py, shared/partitions.py)."""
        return Keys(partition_prefix(self.prefix, self.partition))

    @property
    def partition_keys(self) -> tuple[Keys, ...]:
        """The keys of every partition, partition 1 first (the users' ACL rules cover them all)."""
        return tuple(Keys(partition_prefix(self.prefix, p)) for p in range(1, self.partitions + 1))

    def in_partition(self, partition: int) -> Settings:
        """These settings, working in another partition."""
        return msgspec.structs.replace(self, partition=partition)

    @property
    def keyring(self) -> KeyRing:
        return KeyRing(self.keys_dir)

    @property
    def signed_venue(self) -> str:
        """What this partition's checkpoints sign as their venue (shared/partitions.partition_venue)."""
        return partition_venue(self.venue, self.partition)

    def user(self, process: str) -> str:
        """The Redis user a service process of this partition logs in as (shared/partitions.py)."""
        return partition_user(process, self.partition)

    def producer_keys(self) -> ProducerKeys:
        """The producer keys of this partition's log (KeyRing.producer_keys): KeyMissing without the ring."""
        return self.keyring.producer_keys(self.partition)

    @property
    def partition_archive_dir(self) -> str:
        """Where this partition's archived log segments go: `archive_dir`, or its `p<i>/` for partition
        i >= 2 (segments are named by seq, which every partition's log counts from 1)."""
        return self.archive_dir if self.partition == 1 else str(Path(self.archive_dir) / f"p{self.partition}")

    @property
    def partition_web_port(self) -> int:
        """Where this partition's public pages listen: GREENEX_WEB_PORT for partition 1, the ports after
        it for the others (0 stays 0: any free port)."""
        return self.web_port + self.partition - 1 if self.web_port else 0

    def writer_lease(self, process: str) -> tuple[str, str] | None:
        """(key, value) of the lease a process's appends carry; None outside a service process."""
        return (self.keys.lease(process), self.lease) if self.lease else None


def connect(settings: Settings, user: str | None) -> Redis:
    """A redis-py client logged in as Redis user `user`, with its password from the key ring (KeyMissing
    if there is none); `None`: as REDIS_URL says."""
    if user is None:
        return Redis.from_url(settings.redis_url)
    return Redis.from_url(settings.redis_url, username=user, password=settings.keyring.redis_password(user))


def url_with_login(url: str, user: str, password: str) -> str:
    """`url` logged in as `user` (for a process given only a URL, like the load test's relays)."""
    parsed = urlparse(url)
    name, secret = quote(user, safe=""), quote(password, safe="")  # "/", ":" and "@" escaped too
    if parsed.scheme == "unix":
        query = "&".join(q for q in (parsed.query, f"username={name}", f"password={secret}") if q)
        return f"unix://{parsed.path}?{query}"  # urlunparse would drop the `//` of a netloc-less URL
    host = parsed.netloc.rpartition("@")[2]
    return urlunparse(parsed._replace(netloc=f"{name}:{secret}@{host}"))


def load_settings(**overrides: object) -> Settings:
    """Settings from GREENEX_* / REDIS_URL environment variables, then explicit overrides."""
    env: dict[str, object] = {}
    if url := os.environ.get("REDIS_URL"):
        env["redis_url"] = url
    for name, variable in (("prefix", "GREENEX_PREFIX"), ("keys_dir", "GREENEX_KEYS_DIR"),
                           ("venue", "GREENEX_VENUE"), ("appendfsync", "GREENEX_APPENDFSYNC"),
                           ("archive_dir", "GREENEX_ARCHIVE_DIR"),
                           ("web_host", "GREENEX_WEB_HOST"),
                           ("cluster_nodes", "GREENEX_CLUSTER_NODES")):  # fmt: skip
        if value := os.environ.get(variable):
            env[name] = value
    for name, variable in (("snapshot_every", "GREENEX_SNAPSHOT_EVERY"),
                           ("command_window_ms", "GREENEX_COMMAND_WINDOW_MS"),
                           ("checkpoint_every", "GREENEX_CHECKPOINT_EVERY"),
                           ("web_port", "GREENEX_WEB_PORT"),
                           ("wait_replicas", "GREENEX_WAIT_REPLICAS"),
                           ("partitions", "GREENEX_PARTITIONS"),
                           ("partition", "GREENEX_PARTITION")):  # fmt: skip
        if value := os.environ.get(variable):
            env[name] = int(value)
    env.update({k: v for k, v in overrides.items() if v is not None})
    return msgspec.convert(env, Settings)
