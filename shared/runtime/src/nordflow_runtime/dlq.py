"""Operator tools for the dead-letter topic: list what a service dead-lettered, replay it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from nordflow_schemas.envelope import header_map
from nordflow_schemas.topics import EVENT_DEAD_LETTERED

from .kafka import create_producer, topic_partitions


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record, where it sits and why it is there."""

    partition: int
    offset: int
    consumer: str
    origin_topic: str
    origin_partition: str
    origin_offset: str
    reason: str
    event_id: str | None
    tenant_id: str | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


async def read(bootstrap: str, consumer: str | None = None) -> list[DeadLetter]:
    """Every dead letter currently in the topic (optionally only one service's)."""
    client = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"dlq-reader-{uuid.uuid4().hex[:8]}",
    )
    await client.start()
    out: list[DeadLetter] = []
    try:
        tps = await topic_partitions(client, [EVENT_DEAD_LETTERED.name])
        if not tps:
            return []
        client.assign(tps)
        await client.seek_to_beginning(*tps)
        ends = await client.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await client.getmany(*remaining, timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    attrs = header_map(r.headers)
                    if consumer is None or attrs.get("x-nordflow-dlq-consumer") == consumer:
                        out.append(
                            DeadLetter(
                                partition=r.partition,
                                offset=r.offset,
                                consumer=attrs.get("x-nordflow-dlq-consumer", "?"),
                                origin_topic=attrs.get("x-nordflow-dlq-topic", "?"),
                                origin_partition=attrs.get("x-nordflow-dlq-partition", "?"),
                                origin_offset=attrs.get("x-nordflow-dlq-offset", "?"),
                                reason=attrs.get("x-nordflow-dlq-reason", ""),
                                event_id=attrs.get("ce_id"),
                                tenant_id=attrs.get("ce_tenantid"),
                                key=r.key,
                                value=r.value,
                                headers=tuple(r.headers or ()),
                            )
                        )
            for tp in list(remaining):
                if await client.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await client.stop()
    return out


async def replay(bootstrap: str, letters: list[DeadLetter]) -> int:
    """Publish each letter again to its original topic, with its original headers.

    The event id is unchanged, so services that already applied it skip it (inbox); only the
    consumer that dead-lettered it processes it now, hopefully fixed.
    """
    producer = create_producer(bootstrap, "dlq-replay")
    await producer.start()
    try:
        for letter in letters:
            headers = [(k, v) for k, v in letter.headers if not k.startswith("x-nordflow-dlq-")]
            await producer.send_and_wait(
                letter.origin_topic, value=letter.value, key=letter.key, headers=headers
            )
    finally:
        await producer.stop()
    return len(letters)
