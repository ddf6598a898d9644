"""How the CLI, the demo, the tests and the load generator reach a running exchange: each as its own
Redis user (the operator, admin for provisioning, every participant as itself), with its own keys."""

from __future__ import annotations

import itertools
from typing import Any

from redis.asyncio import Redis

from services.cli.provision import Credentials, create_participant_user, delete_participant_user, sealed_key
from shared.client import ExchangeClient
from shared.config import ADMIN, OPERATOR_USER, Settings, connect
from shared.domain.ledger import OPERATOR

__all__ = ["Venue"]


class Venue:
    """Connections to one exchange; `aclose` closes every one it opened."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ring = settings.keyring
        self.credentials: dict[str, Credentials] = {}
        self._opened: list[Redis] = []
        self._operators: dict[int, ExchangeClient] = {}
        self._ids = itertools.count(1)

    def redis(self, user: str | None) -> Redis:
        client = connect(self.settings, user)
        self._opened.append(client)
        return client

    def participant_redis(self, credentials: Credentials) -> Redis:
        client = Redis.from_url(
            self.settings.redis_url, username=credentials.redis_user, password=credentials.redis_password
        )
        self._opened.append(client)
        return client

    @property
    def operator(self) -> ExchangeClient:
        """The operator's client: its own Redis user, commands signed with the operator's key."""
        return self.operator_in(self.settings.partition)

    def operator_in(self, partition: int) -> ExchangeClient:
        """The operator's client for one partition of the exchange (shared/partitions.py)."""
        if partition not in self._operators:
            self._operators[partition] = ExchangeClient(
                self.redis(OPERATOR_USER), OPERATOR, self.ring.operator_secret(),
                self.settings.in_partition(partition).keys, venue=self.settings.venue,
            )  # fmt: skip
        return self._operators[partition]

    def client(self, participant: str, partition: int | None = None) -> ExchangeClient:
        """A participant's client, logged in as its own Redis user (from credentials made here), in this
        venue's partition or the one named."""
        credentials = self.credentials[participant]
        keys = self.settings.in_partition(partition or self.settings.partition).keys
        return ExchangeClient(
            self.participant_redis(credentials), participant, credentials.signing_key, keys,
            venue=self.settings.venue,
        )  # fmt: skip

    async def onboard(
        self,
        participant: str,
        name: str,
        *,
        roles: tuple[str, ...] = ("trader",),
        instruments: tuple[str, ...] = (),
        signing_key: str | None = None,
        client_order_id: str | None = None,
    ) -> Credentials:
        """Create the participant's Redis user and register it with a sealed signing key (generated
        unless given); returns its credentials, which exist nowhere else in the clear."""
        admin = self.redis(ADMIN)
        password = await create_participant_user(admin, self.settings.partition_keys, participant)
        try:
            key, sealed = sealed_key(self.ring, participant, "k1", signing_key)
            args: dict[str, Any] = {
                "participant": participant,
                "name": name,
                "key": sealed,
                "roles": list(roles),
            }
            if instruments:
                args["instruments"] = list(instruments)
            cid = client_order_id or f"op-reg-{participant}-{next(self._ids)}"
            # Registered in every partition: one participant, one key, trading wherever it is let.
            for partition in range(1, self.settings.partitions + 1):
                await self.operator_in(partition).operator("register_participant", cid, **args)
        except BaseException:
            await delete_participant_user(admin, participant)
            raise
        credentials = Credentials(
            participant, participant, password, key, self.settings.venue, self.ring.box_public().hex()
        )
        self.credentials[participant] = credentials
        return credentials

    async def disconnect(self) -> None:
        """Drop every pooled connection (after a Redis restart): the next command connects afresh."""
        for client in self._opened:
            await client.connection_pool.disconnect()

    async def offboard(self) -> None:
        """Delete the Redis users of the participants onboarded here (a load test's, a test's): Redis
        users are global to the server, so a later run could not create them again."""
        admin = self.redis(ADMIN)
        for participant in self.credentials:
            await delete_participant_user(admin, participant)
        self.credentials.clear()

    async def aclose(self) -> None:
        for client in self._opened:
            await client.aclose()
        self._opened.clear()
        self._operators.clear()
