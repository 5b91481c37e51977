"""Kafka clients with the project's reliability settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class PartitionProgress:
    """Where a consumer stands on one assigned partition, as far as it knows now."""

    position: int | None  # the next offset a poll returns; None until the start is known
    highwater: int | None  # the partition's end at the last fetch; None before the first

    @property
    def lag(self) -> int | None:
        """Records after the position; None while the position or the end is unknown."""
        if self.position is None or self.highwater is None:
            return None
        return max(self.highwater - self.position, 0)


def progress(consumer: AIOKafkaConsumer) -> dict[TopicPartition, PartitionProgress]:
    """Each assigned partition's position and high watermark, read without waiting.

    aiokafka's ``position()`` waits until a position is known and ``highwater()`` asserts
    the partition is assigned; neither suits a look after every poll, so read the
    subscription state they read (no public API for it). Each rebalance makes a new
    assignment with fresh states: the position of a partition just assigned is unknown
    until the committed offset (or, without one, a ListOffsets) gives it.
    """
    subscription = consumer._subscription.subscription
    assignment = None if subscription is None else subscription.assignment
    if assignment is None or not assignment.active:
        return {}
    out: dict[TopicPartition, PartitionProgress] = {}
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        position = state.position if state.has_valid_position else None
        out[tp] = PartitionProgress(position, state.highwater)
    return out


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
