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
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedVersionError,
)
from nordflow_schemas.envelope import Envelope, encode
from nordflow_schemas.events import Event

from . import telemetry
from .errors import PermanentError
from .health import Health
from .metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_PENDING,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_SET_ASIDE,
)

log = logging.getLogger(__name__)

# What one event may weigh (key, value and headers): under the producer's and the broker's
# 1 MiB default, with room for the record's own overhead. A body over it is refused where it
# is made, naming the topic and the size, instead of halting the relay later.
MAX_EVENT_BYTES = 900 * 1024


class EventTooLargeError(PermanentError):
    """An event over ``MAX_EVENT_BYTES``; the message names the topic and both sizes."""


Row = tuple[str, str, str, bytes | None, bytes | None, str]
_INSERT = (
    "INSERT INTO outbox (event_id, topic, tenant_id, key, value, headers) "
    "VALUES ($1, $2, $3, $4, $5, $6::jsonb)"
)


def row_of(env: Envelope[Event]) -> Row:
    """The outbox row of an event, with the current trace context if it has none.

    Raises `EventTooLargeError` over the size budget.
    """
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
    return raw_row(env.id, env.topic, env.tenant_id, key, value, headers)


def raw_row(
    event_id: str,
    topic: str,
    tenant_id: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> Row:
    """The outbox row of any record; raises `EventTooLargeError` over the size budget."""
    size = len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)
    if size > MAX_EVENT_BYTES:
        raise EventTooLargeError(
            f"{topic} event of {size} bytes is over the {MAX_EVENT_BYTES}-byte budget"
        )
    encoded = json.dumps([[k, base64.b64encode(v).decode()] for k, v in headers])
    return (event_id, topic, tenant_id, key, value, encoded)


class OutboxBuffer:
    """Events emitted during one batch or job, written to the outbox together (one round
    trip) in the same transaction, before it commits."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, env: Envelope[Event]) -> None:
        """Keep the event's row (encoded now, with the trace context of now)."""
        self.rows.append(row_of(env))

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write what was kept, in order; then nothing is kept."""
        if self.rows:
            await conn.executemany(_INSERT, self.rows)
            self.rows = []


async def add(conn: asyncpg.Connection, env: Envelope[Event]) -> None:
    """Store an outgoing event in the caller's transaction, with the current trace context."""
    await conn.execute(_INSERT, *row_of(env))


async def add_raw(
    conn: asyncpg.Connection,
    event_id: str,
    topic: str,
    tenant_id: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> None:
    """Store any record (used for dead letters, which keep the original bytes).

    Raises `EventTooLargeError` over the size budget (nothing is stored).
    """
    await conn.execute(_INSERT, *raw_row(event_id, topic, tenant_id, key, value, headers))


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
        stuck_after: int = 3,
        retry_max: float = 5.0,
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retry_max = retry_max
        self.wakeup = asyncio.Event()
        self.health = Health("relay", stuck_after)
        self._lock_id = int.from_bytes(
            hashlib.sha256(f"outbox:{schema}".encode()).digest()[:8], "big", signed=True
        )

    def notify(self) -> None:
        """Tell the relay new rows were committed, so it need not wait for its poll."""
        self.wakeup.set()

    async def run(self) -> None:
        """Publish until cancelled; errors are logged and retried, never fatal.

        After a failure (the broker or the database away) the relay waits
        ``min(retry_max, 0.5 s · 2^(n-1))``, and less when woken: a transaction that committed
        meanwhile proves the database answers again, and has rows to publish.
        """
        while True:
            try:
                sent = await self.publish_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                OUTBOX_PUBLISH_FAILURES.inc()
                self.health.failed(exc)
                delay = min(self.retry_max, 0.5 * 2 ** (self.health.failures - 1))
                log.exception("outbox relay failed; retrying in %.1fs or when woken", delay)
                await self.count()
                await self._wait(delay)
                continue
            if sent < self.batch_size:
                await self._wait(self.poll_seconds)

    async def _wait(self, seconds: float) -> None:
        """Until ``seconds`` passed or a commit woke the relay."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for: see JobWorker._loop
                await self.wakeup.wait()
        self.wakeup.clear()

    async def publish_batch(self) -> int:
        """Send one batch; returns how many rows it handled (sent or set aside).

        Rows are sent in ``seq`` order and marked sent up to the first one that failed for a
        passing reason (the broker away); those after it stay unsent and go again in the next
        batch (a copy already delivered is dropped by the consumers' inboxes). A row Kafka
        refuses for good is set aside with its error, so it never holds up the others.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            # One relay per service at a time keeps each key's order; the lock lives only as
            # long as this transaction, so a dropped connection can never leave two holders.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_id):
                return 0
            rows = await conn.fetch(
                "SELECT seq, topic, key, value, headers FROM outbox "
                "WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE",
                self.batch_size,
            )
            if not rows:
                OUTBOX_PENDING.set(0)
                self.health.recovered()
                return 0
            outcomes = await asyncio.gather(
                *(self._send(row) for row in rows), return_exceptions=True
            )
            sent: list[int] = []
            refused: list[tuple[int, str]] = []
            passing: BaseException | None = None
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome is None and passing is None:
                    sent.append(row["seq"])
                    EVENTS_PUBLISHED.labels(row["topic"]).inc()
                elif isinstance(outcome, BaseException) and _refused_for_good(outcome):
                    refused.append((row["seq"], f"{type(outcome).__name__}: {outcome}"[:2000]))
                elif isinstance(outcome, BaseException) and passing is None:
                    passing = outcome
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE seq = ANY($1::bigint[])", sent
            )
            for seq, error in refused:
                log.error("outbox row %d set aside: %s", seq, error)
                await conn.execute(
                    "UPDATE outbox SET failed_at = now(), last_error = $2 WHERE seq = $1",
                    seq,
                    error,
                )
            await _set_gauges(conn)
        if passing is not None:
            raise passing
        self.health.recovered()
        return len(sent) + len(refused)

    async def count(self) -> None:
        """Set ``nordflow_outbox_pending`` and ``…_set_aside`` from a count, so that they grow
        while the relay fails (the broker away); while the database is away too they keep
        their last values."""
        try:
            async with asyncio.timeout(5.0):
                await self._count()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("outbox not counted: %s", exc)

    async def _count(self) -> None:
        async with self.pool.acquire() as conn:
            await _set_gauges(conn)

    async def _send(self, row: asyncpg.Record) -> None:
        headers = [(k, base64.b64decode(v)) for k, v in json.loads(row["headers"])]
        delivery = await self.producer.send(
            row["topic"], value=row["value"], key=row["key"], headers=headers
        )
        await delivery


# Each count matches a partial index's predicate (`outbox_unsent`, `outbox_set_aside`), so
# neither reads the published rows the table keeps for `outbox_retention_hours`.
GAUGES_SQL = (
    "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL), "
    "(SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NOT NULL)"
)


async def _set_gauges(conn: asyncpg.Connection) -> None:
    pending, set_aside = await conn.fetchrow(GAUGES_SQL)
    OUTBOX_PENDING.set(pending)
    OUTBOX_SET_ASIDE.set(set_aside)


def _refused_for_good(error: BaseException) -> bool:
    """Kafka will never take this record as it is (retrying cannot help)."""
    return isinstance(
        error,
        MessageSizeTooLargeError
        | RecordTooLargeError
        | InvalidTopicError
        | TopicAuthorizationFailedError
        | UnsupportedVersionError,
    )


async def set_aside(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """The rows set aside, newest first (for operators: ``<service> outbox list``)."""
    return list(
        await conn.fetch(
            "SELECT seq, event_id, topic, tenant_id, octet_length(value) AS bytes, failed_at, "
            "last_error FROM outbox WHERE sent_at IS NULL AND failed_at IS NOT NULL "
            "ORDER BY seq DESC LIMIT $1",
            limit,
        )
    )


async def retry_set_aside(conn: asyncpg.Connection, seqs: list[int] | None) -> list[int]:
    """Let the relay try rows set aside again (all of them when ``seqs`` is None)."""
    rows = await conn.fetch(
        "UPDATE outbox SET failed_at = NULL, last_error = NULL WHERE sent_at IS NULL "
        "AND failed_at IS NOT NULL AND ($1::bigint[] IS NULL OR seq = ANY($1)) RETURNING seq",
        seqs,
    )
    return sorted(int(r["seq"]) for r in rows)
