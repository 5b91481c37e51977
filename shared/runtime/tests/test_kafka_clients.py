"""The Kafka clients' settings, without a broker."""

from __future__ import annotations

from nordflow_runtime.kafka import create_consumer
from nordflow_runtime.settings import ServiceSettings


async def test_the_consumer_refreshes_its_metadata_every_30_seconds_by_default() -> None:
    """Finding 1 of docs/resilience.md: aiokafka's 5 minutes kept a consumer asking a broker
    that had lost a partition's leadership for up to 5 minutes."""
    settings = ServiceSettings(kafka_bootstrap_servers="127.0.0.1:1", database_url="postgresql://x")
    assert settings.kafka_metadata_max_age_ms == 30_000
    consumer = create_consumer("127.0.0.1:1", "toy", ["toy.topic"])
    assert consumer._client._metadata_max_age_ms == 30_000
    other = create_consumer("127.0.0.1:1", "toy", ["toy.topic"], metadata_max_age_ms=5_000)
    assert other._client._metadata_max_age_ms == 5_000
