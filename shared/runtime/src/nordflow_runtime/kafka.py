"""Kafka clients with the project's reliability settings."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError


def create_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer (acks=all): retries never duplicate or reorder a partition."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


def create_consumer(
    bootstrap: str,
    group_id: str,
    topics: Sequence[str],
    *,
    max_poll_records: int = 500,
    metadata_max_age_ms: int = 30_000,
) -> AIOKafkaConsumer:
    """A consumer with an explicit group that never auto-commits (we commit after the DB).

    ``metadata_max_age_ms`` bounds how long the consumer may keep asking a broker that no
    longer leads a partition: aiokafka 0.14 does not refresh its metadata after a failed
    ListOffsets, so a partition waiting for its start offset waits for the next periodic
    refresh (docs/resilience.md, finding 1); the client's default is 5 minutes.
    """
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
        # A crashed member's partitions move to the others within ~10 s.
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        metadata_max_age_ms=metadata_max_age_ms,
    )


async def topic_partitions(
    consumer: AIOKafkaConsumer, topics: Sequence[str]
) -> list[TopicPartition]:
    """Every partition of the given topics, from fresh cluster metadata (for manual assignment).

    ``partitions_for_topic`` only knows topics the client has fetched metadata for, which a
    consumer without a subscription has not; so ask the cluster.
    """
    cluster = await consumer._client.fetch_all_metadata()  # no public API for fresh metadata
    return [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(cluster.partitions_for_topic(topic) or ())
    ]


class GroupActiveError(RuntimeError):
    """The consumer group has members: stop them before moving its offsets."""


async def rewind_group(bootstrap: str, group_id: str, topics: Sequence[str]) -> int:
    """Move a consumer group back to the beginning of every partition of ``topics``; how many
    partitions. Kafka refuses it while the group has members (``GroupActiveError``)."""
    client = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await client.start()
    try:
        tps = await topic_partitions(client, topics)
        client.assign(tps)
        beginnings = await client.beginning_offsets(tps)
        try:
            await client.commit(dict(beginnings))
        except CommitFailedError as exc:
            raise GroupActiveError(
                f"consumer group {group_id!r} has running members; stop them first"
            ) from exc
        return len(tps)
    finally:
        await client.stop()
