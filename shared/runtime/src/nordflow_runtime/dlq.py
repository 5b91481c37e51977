"""Operator tools for the dead-letter topic: list what a service dead-lettered, replay it,
and the identity of a dead letter for those who consume the topic (the control panel)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from nordflow_schemas.envelope import header_map
from nordflow_schemas.topics import EVENT_DEAD_LETTERED

from .kafka import create_producer, topic_partitions

DLQ_HEADER_PREFIX = "x-nordflow-dlq-"


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

    @property
    def position(self) -> str:
        """Where it sits in the dead-letter topic, ``<partition>:<offset>`` (replay's target)."""
        return f"{self.partition}:{self.offset}"

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had on its own topic (without the ``x-nordflow-dlq-*``)."""
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]


def letter_of(record: ConsumerRecord[Any, Any]) -> DeadLetter:
    """A record of ``event.dead_lettered`` read as a dead letter."""
    attrs = header_map(record.headers)
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        consumer=attrs.get("x-nordflow-dlq-consumer", "?"),
        origin_topic=attrs.get("x-nordflow-dlq-topic", "?"),
        origin_partition=attrs.get("x-nordflow-dlq-partition", "?"),
        origin_offset=attrs.get("x-nordflow-dlq-offset", "?"),
        reason=attrs.get("x-nordflow-dlq-reason", ""),
        event_id=attrs.get("ce_id"),
        tenant_id=attrs.get("ce_tenantid"),
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
    )


def inbox_id(record: ConsumerRecord[Any, Any]) -> str:
    """A dead letter's identity: the consumer that refused it and where the original sat.

    The same refusal published twice (a relay that crashed after sending, or a batch redone
    after the offset commit failed) has the same id, so a consumer's inbox drops the copy;
    a replay refused again sits at a new origin offset, so it is a new letter.
    """
    letter = letter_of(record)
    if letter.consumer == "?" or letter.origin_topic == "?":
        return f"raw:{record.topic}:{record.partition}:{record.offset}"
    return (
        f"dlq:{letter.consumer}:{letter.origin_topic}:{letter.origin_partition}:"
        f"{letter.origin_offset}"
    )


def tenant_of(record: ConsumerRecord[Any, Any]) -> str:
    """The tenant of a dead letter (its ``ce_tenantid``), or ``unknown``."""
    return header_map(record.headers).get("ce_tenantid") or "unknown"


async def read_one(
    bootstrap: str, partition: int, offset: int, *, timeout: float = 10.0
) -> DeadLetter | None:
    """The dead letter at ``partition:offset``, or None when there is none (any more)."""
    client = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"dlq-reader-{uuid.uuid4().hex[:8]}",
    )
    await client.start()
    try:
        tp = TopicPartition(EVENT_DEAD_LETTERED.name, partition)
        if tp not in await topic_partitions(client, [EVENT_DEAD_LETTERED.name]):
            return None
        client.assign([tp])
        first = (await client.beginning_offsets([tp]))[tp]
        end = (await client.end_offsets([tp]))[tp]
        if not first <= offset < end:
            return None
        client.seek(tp, offset)
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batch = await client.getmany(tp, timeout_ms=500, max_records=1)
            for record in batch.get(tp, []):
                # A compacted or transactional gap may skip the offset: then it is gone.
                return letter_of(record) if record.offset == offset else None
        raise TimeoutError(f"reading {EVENT_DEAD_LETTERED.name} {partition}:{offset} timed out")
    finally:
        await client.stop()


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
                    letter = letter_of(r)
                    if consumer is None or letter.consumer == consumer:
                        out.append(letter)
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
            await producer.send_and_wait(
                letter.origin_topic,
                value=letter.value,
                key=letter.key,
                headers=letter.original_headers(),
            )
    finally:
        await producer.stop()
    return len(letters)
