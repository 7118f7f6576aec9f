"""Kafka clients behind small factories. Services ask a ``KafkaClients`` for their producers,
consumers and admin client instead of building confluent-kafka's classes themselves, so the same
code runs on a real broker (``ConfluentClients``) and, in fast unit tests, on an in-memory one
(core.kafka.testing.InMemoryKafka).

Building a client does no network work: librdkafka starts its threads and connects when a
confluent client is constructed, so ours are made on first use. A service can be built, wired and
inspected without a broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import Consumer, Producer, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from core.kafka.config import base_config, client_config, topic_specs
from core.settings import Settings

log = logging.getLogger(__name__)


class KafkaClients(Protocol):
    """Makes clients with confluent-kafka's interface; ``config`` (librdkafka's option names, and
    confluent-kafka's callbacks such as on_delivery and error_cb) is added to the platform's."""

    def producer(self, config: dict[str, Any] | None = None) -> Any: ...
    def consumer(self, config: dict[str, Any] | None = None) -> Any: ...
    def admin(self) -> Any: ...


class Lazy:
    """A confluent client made on first use of any attribute (and by len(), for producers)."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make()
        return self._client

    @property
    def started(self) -> bool:
        return self._client is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def __len__(self) -> int:
        return len(self.client) if self._client is not None else 0


class ConfluentClients:
    """Clients of the Kafka cluster at ``settings.kafka_bootstrap``."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def producer(self, config: dict[str, Any] | None = None) -> Producer:
        return Lazy(lambda: Producer({**client_config(self.settings), **(config or {})}))

    def consumer(self, config: dict[str, Any] | None = None) -> Consumer:
        return Lazy(lambda: Consumer({**client_config(self.settings), **(config or {})}))

    def admin(self) -> AdminClient:
        return Lazy(lambda: AdminClient(base_config(self.settings)))


def clients_for(settings: Settings, clients: KafkaClients | None = None) -> KafkaClients:
    return clients if clients is not None else ConfluentClients(settings)


def ensure_topics(settings: Settings, timeout: float = 15.0, clients: KafkaClients | None = None) -> None:
    """Create the platform's topics if missing (idempotent). Raises if the broker never answers."""
    admin = clients_for(settings, clients).admin()
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = set(admin.list_topics(timeout=2).topics)
            break
        except Exception as exc:  # KafkaException: broker not up yet
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Kafka at {settings.kafka_bootstrap} did not answer within {timeout:.0f}s; "
                    "is the broker running (`pixel broker`)?"
                ) from exc
            time.sleep(0.2)
    missing = [
        NewTopic(name, num_partitions=n, replication_factor=1)
        for name, n in topic_specs(settings).items()
        if name not in existing
    ]
    if not missing:
        return
    for name, fut in admin.create_topics(missing).items():
        try:
            fut.result()
            log.info("created topic %s", name)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def topic_ids(admin: Any, topics: list[str], timeout: float = 3.0) -> dict[str, str]:
    """Topic -> topic id. The id changes when a topic is re-created, e.g. when an in-memory
    broker restarts with an empty log; offsets from the old id then mean nothing."""
    futures = admin.describe_topics(TopicCollection(topics), request_timeout=timeout)
    return {name: str(fut.result().topic_id) for name, fut in futures.items()}
