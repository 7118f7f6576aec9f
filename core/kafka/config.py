"""Kafka client configuration shared by every producer/consumer, and topic administration."""
from __future__ import annotations

import logging
import time

from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from core.settings import Settings

log = logging.getLogger(__name__)

# tansu answers JoinGroup after session.timeout.ms/2; Kafka's 45 s default means ~23 s before a
# consumer gets its first assignment. These values are fine for real Kafka too.
CONSUMER_GROUP_TIMEOUTS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def base_config(settings: Settings) -> dict:
    # librdkafka's own messages go through our logging, in our format, not raw to stderr.
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": "pixel",
        "logger": logging.getLogger("librdkafka"),
    }


def client_config(settings: Settings) -> dict:
    """For producers and consumers. Topics are created only by ensure_topics, with the right
    partition counts: a client that touches a missing topic (e.g. right after a broker restart)
    must not auto-create it with the broker's defaults."""
    return {**base_config(settings), "allow.auto.create.topics": False}


def admin(settings: Settings) -> AdminClient:
    return AdminClient(base_config(settings))


def topic_specs(settings: Settings) -> dict[str, int]:
    """Topic -> partition count. pixel.raw is keyed by site, so partitions bound parallelism."""
    return {
        settings.raw_topic: settings.raw_partitions,
        settings.bad_topic: 1,
        settings.agg_topic: settings.raw_partitions,
    }


def ensure_topics(settings: Settings, timeout: float = 15.0) -> None:
    """Create the platform's topics if missing (idempotent). Raises if the broker never answers."""
    client = admin(settings)
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = set(client.list_topics(timeout=2).topics)
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
    for name, fut in client.create_topics(missing).items():
        try:
            fut.result()
            log.info("created topic %s", name)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def topic_ids(client: AdminClient, topics: list[str], timeout: float = 3.0) -> dict[str, str]:
    """Topic -> topic id. The id changes when a topic is re-created, e.g. when an in-memory
    broker restarts with an empty log; offsets from the old id then mean nothing."""
    futures = client.describe_topics(TopicCollection(topics), request_timeout=timeout)
    return {name: str(fut.result().topic_id) for name, fut in futures.items()}
