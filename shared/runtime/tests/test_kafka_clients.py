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


async def _noop(ctx: object, env: object) -> None:
    return None


def test_a_topic_of_its_own_group_is_read_by_a_consumer_of_its_own() -> None:
    """A topic the topic map marks separate_group (erp.document.chunked) gets a consumer group
    of its own, so a record waiting for it on another topic never holds it up; the rest stay
    in the service's group."""
    from nordflow_runtime.app import ServiceApp
    from nordflow_schemas.topics import ERP_DOCUMENT_CHUNKED, ERP_DOCUMENT_FETCHED

    settings = ServiceSettings(kafka_bootstrap_servers="127.0.0.1:1", database_url="postgresql://x")
    app: ServiceApp[None] = ServiceApp("mapper", settings, None)
    app.subscribe_batch(ERP_DOCUMENT_FETCHED.name, _noop)
    app.subscribe_batch(ERP_DOCUMENT_CHUNKED.name, _noop)
    assert app.consumer_groups == {
        "mapper": ["erp.document.fetched", "operator.action_requested", "tenant.updated"],
        "mapper.erp.document.chunked": ["erp.document.chunked"],
    }
