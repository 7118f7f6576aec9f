"""Kafka client configuration shared by every producer, consumer and admin client, and the
platform's topics."""

from __future__ import annotations

import logging

from core.settings import Settings

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


def topic_specs(settings: Settings) -> dict[str, int]:
    """Topic -> partition count. pixel.raw is keyed by site, so partitions bound parallelism."""
    return {
        settings.raw_topic: settings.raw_partitions,
        settings.bad_topic: 1,
        settings.agg_topic: settings.raw_partitions,
    }
