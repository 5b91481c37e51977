"""Transactional outbox: events written with the state change, published by a relay."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from nordflow_schemas.envelope import Envelope, encode
from nordflow_schemas.events import Event

from . import telemetry
from .metrics import EVENTS_PUBLISHED, OUTBOX_PENDING

log = logging.getLogger(__name__)


async def add(conn: asyncpg.Connection, env: Envelope[Event]) -> None:
    """Store an outgoing event in the caller's transaction, with the current trace context."""
    if env.traceparent is None:
        traceparent, tracestate = telemetry.current()
        env = Envelope(
            body=env.body,
            source=env.source,
            type=env.type,
            id=env.id,
            time=env.time,
            subject=env.subject,
            traceparent=traceparent,
            tracestate=tracestate,
        )
    key, value, headers = encode(env)
    await add_raw(conn, env.id, env.topic, env.tenant_id, key, value, headers)


async def add_raw(
    conn: asyncpg.Connection,
    event_id: str,
    topic: str,
    tenant_id: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> None:
    """Store any record (used for dead letters, which keep the original bytes)."""
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, tenant_id, key, value, headers) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        event_id,
        topic,
        tenant_id,
        key,
        value,
        json.dumps([[k, base64.b64encode(v).decode()] for k, v in headers]),
    )


class OutboxRelay:
    """Publishes unsent outbox rows in order; one active relay per service (advisory lock).

    A crash after sending and before marking rows sent re-sends them with the same ``ce_id``;
    consumers' inboxes drop the copies, so delivery is effectively once.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        *,
        batch_size: int = 500,
        poll_seconds: float = 0.2,
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.wakeup = asyncio.Event()
        self._lock_id = int.from_bytes(
            hashlib.sha256(f"outbox:{schema}".encode()).digest()[:8], "big", signed=True
        )

    def notify(self) -> None:
        """Tell the relay new rows were committed, so it need not wait for its poll."""
        self.wakeup.set()

    async def run(self) -> None:
        """Publish until cancelled; errors are logged and retried, never fatal."""
        failures = 0
        while True:
            try:
                sent = await self.publish_batch()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** (failures - 1))
                log.exception("outbox relay failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                continue
            if sent < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), self.poll_seconds)
                self.wakeup.clear()

    async def publish_batch(self) -> int:
        """Send one batch and mark it sent; returns how many rows were sent."""
        async with self.pool.acquire() as conn, conn.transaction():
            # One relay per service at a time keeps each key's order; the lock lives only as
            # long as this transaction, so a dropped connection can never leave two holders.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_id):
                return 0
            rows = await conn.fetch(
                "SELECT seq, topic, key, value, headers FROM outbox WHERE sent_at IS NULL "
                "ORDER BY seq LIMIT $1 FOR UPDATE",
                self.batch_size,
            )
            if not rows:
                OUTBOX_PENDING.set(0)
                return 0
            futures = []
            for row in rows:
                headers = [(k, base64.b64decode(v)) for k, v in json.loads(row["headers"])]
                futures.append(
                    await self.producer.send(
                        row["topic"], value=row["value"], key=row["key"], headers=headers
                    )
                )
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE seq = ANY($1::bigint[])",
                [r["seq"] for r in rows],
            )
            for row in rows:
                EVENTS_PUBLISHED.labels(row["topic"]).inc()
            OUTBOX_PENDING.set(
                await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            )
            return len(rows)
