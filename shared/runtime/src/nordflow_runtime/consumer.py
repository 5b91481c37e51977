"""Consume batches, apply each event once (inbox), emit through the outbox, then commit offsets."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from nordflow_schemas.envelope import DecodeError, Envelope, decode, envelope, header_map
from nordflow_schemas.events import Event
from nordflow_schemas.topics import BY_CE_TYPE, EVENT_DEAD_LETTERED
from opentelemetry.trace import SpanKind

from . import outbox, telemetry
from .errors import PermanentError
from .health import Health
from .logs import log_context
from .metrics import BATCH_FAILURES, BATCH_SECONDS, EVENTS_CONSUMED

__all__ = ["BatchProcessor", "Context", "EventConsumer", "PermanentError", "RawSubscription"]

log = logging.getLogger(__name__)
D = TypeVar("D")


@dataclass
class Context(Generic[D]):
    """What a handler gets: the open transaction, a way to emit events in it, and the
    service's dependencies (built once at start-up by its ``create_app``)."""

    conn: asyncpg.Connection
    service: str
    deps: D
    emitted: list[Envelope[Event]] = field(default_factory=list)

    async def emit(self, body: Event, *, subject: str | None = None) -> None:
        """Write an outgoing event to the outbox, in the same transaction as the state change."""
        env = envelope(body, source=f"/{self.service}", subject=subject)
        await outbox.add(self.conn, env)
        self.emitted.append(env)


Handler = Callable[[Context[Any], Envelope[Any]], Awaitable[None]]
RawHandler = Callable[[Context[Any], ConsumerRecord[Any, Any]], Awaitable[None]]


@dataclass(frozen=True)
class RawSubscription:
    """A topic whose records are not CloudEvents (``event.dead_lettered``): the handler gets
    the record itself, once per ``inbox_id(record)`` (a deterministic id, so the copies a
    relay may publish twice are dropped like any duplicate event)."""

    handler: RawHandler
    inbox_id: Callable[[ConsumerRecord[Any, Any]], str]
    tenant_id: Callable[[ConsumerRecord[Any, Any]], str]


class BatchProcessor:
    """Applies one batch of records in one database transaction (inbox, handler, outbox).

    Each record runs in a savepoint. A poison record (undecodable, schema-invalid, on the
    wrong topic, or a handler's ``PermanentError``) is written to the dead-letter topic
    through the outbox. Any other error propagates and rolls the whole batch back.
    """

    def __init__(
        self,
        *,
        service: str,
        pool: asyncpg.Pool,
        handlers: Mapping[str, Handler],
        raw_handlers: Mapping[str, RawSubscription] | None = None,
        deps: Any = None,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.service = service
        self.pool = pool
        self.handlers = dict(handlers)
        self.raw_handlers = dict(raw_handlers or {})
        self.deps = deps
        self.on_commit = on_commit

    async def process(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Apply one batch in one transaction."""
        started = time.perf_counter()
        outcomes: list[tuple[str, str]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for records in batch.values():
                for record in records:
                    outcomes.append((record.topic, await self._one(conn, record)))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        for topic, outcome in outcomes:
            EVENTS_CONSUMED.labels(topic, outcome).inc()
        if any(outcome != "duplicate" for _, outcome in outcomes):
            self.on_commit()

    async def _one(self, conn: asyncpg.Connection, record: ConsumerRecord[Any, Any]) -> str:
        raw = self.raw_handlers.get(record.topic)
        if raw is not None:
            return await self._raw(conn, record, raw)
        try:
            env = decode(record.value, record.headers)
        except DecodeError as exc:
            await self._dead_letter(conn, record, str(exc))
            return "dead_lettered"
        if BY_CE_TYPE[env.type].name != record.topic:
            reason = f"{env.type} does not belong on topic {record.topic}"
            await self._dead_letter(conn, record, reason)
            return "dead_lettered"
        handler = self.handlers.get(record.topic)
        if handler is None:
            await self._dead_letter(conn, record, f"{self.service} has no handler for this topic")
            return "dead_lettered"
        new = await conn.fetchval(
            "INSERT INTO inbox (event_id, topic, tenant_id) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true",
            env.id,
            record.topic,
            env.tenant_id,
        )
        if not new:
            return "duplicate"
        parent = telemetry.extract(env.traceparent, env.tracestate)
        with (
            log_context(env.tenant_id, env.key),
            telemetry.tracer().start_as_current_span(
                f"{record.topic} process",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": record.topic,
                    "messaging.message.id": env.id,
                    "nordflow.tenant_id": env.tenant_id,
                    "nordflow.invoice_id": env.key,
                },
            ),
        ):
            try:
                async with conn.transaction():
                    await handler(Context(conn, self.service, self.deps), env)
            except PermanentError as exc:
                log.warning("event %s dead-lettered: %s", env.id, exc)
                # Forget the event, so a replay after the fix is processed, not skipped.
                await conn.execute("DELETE FROM inbox WHERE event_id = $1", env.id)
                await self._dead_letter(conn, record, str(exc))
                return "dead_lettered"
        return "processed"

    async def _raw(
        self, conn: asyncpg.Connection, record: ConsumerRecord[Any, Any], raw: RawSubscription
    ) -> str:
        """A record of a raw topic: inbox by its deterministic id, then the handler.

        A raw record is never dead-lettered (the dead-letter topic is itself raw: that would
        loop); a handler's ``PermanentError`` is logged and the record is skipped for good.
        """
        event_id = raw.inbox_id(record)
        new = await conn.fetchval(
            "INSERT INTO inbox (event_id, topic, tenant_id) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true",
            event_id,
            record.topic,
            raw.tenant_id(record),
        )
        if not new:
            return "duplicate"
        try:
            async with conn.transaction():
                await raw.handler(Context(conn, self.service, self.deps), record)
        except PermanentError as exc:
            fields = {"topic": record.topic, "offset": record.offset, "reason": str(exc)}
            log.error("raw record skipped", extra={"fields": fields})
            return "skipped"
        return "processed"

    async def set_aside(self, record: ConsumerRecord[Any, Any], reason: str) -> None:
        """Take a record that keeps failing out of the way, in a transaction of its own: a
        CloudEvent is dead-lettered (replayable); a raw record (which must not be
        dead-lettered: that would loop) is marked consumed and logged."""
        async with self.pool.acquire() as conn, conn.transaction():
            raw = self.raw_handlers.get(record.topic)
            if raw is None:
                await self._dead_letter(conn, record, reason)
                outcome = "dead_lettered"
            else:
                await conn.execute(
                    "INSERT INTO inbox (event_id, topic, tenant_id) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING",
                    raw.inbox_id(record),
                    record.topic,
                    raw.tenant_id(record),
                )
                fields = {"topic": record.topic, "offset": record.offset, "reason": reason}
                log.error("raw record skipped", extra={"fields": fields})
                outcome = "skipped"
        EVENTS_CONSUMED.labels(record.topic, outcome).inc()
        self.on_commit()

    async def _dead_letter(
        self, conn: asyncpg.Connection, record: ConsumerRecord[Any, Any], reason: str
    ) -> None:
        attrs = header_map(record.headers)
        event_id = attrs.get("ce_id") or f"{record.topic}:{record.partition}:{record.offset}"
        headers = [
            *((k, v) for k, v in record.headers or () if not k.startswith("x-nordflow-dlq-")),
            ("x-nordflow-dlq-reason", reason[:2000].encode()),
            ("x-nordflow-dlq-consumer", self.service.encode()),
            ("x-nordflow-dlq-topic", record.topic.encode()),
            ("x-nordflow-dlq-partition", str(record.partition).encode()),
            ("x-nordflow-dlq-offset", str(record.offset).encode()),
        ]
        log.error(
            "dead-lettered record",
            extra={"fields": {"topic": record.topic, "offset": record.offset, "reason": reason}},
        )
        await outbox.add_raw(
            conn,
            f"dlq:{self.service}:{event_id}",
            EVENT_DEAD_LETTERED.name,
            attrs.get("ce_tenantid", "unknown"),
            record.key,
            record.value,
            headers,
        )


class EventConsumer:
    """One consumer group: at-least-once delivery made effectively-once by the inbox.

    Each ``getmany`` batch goes to the ``BatchProcessor`` (one transaction); offsets are
    committed only after the transaction is durable. A batch that fails is retried as a
    whole ``batch_attempts`` times with backoff and jitter; then its records are applied one
    by one, each in its own transaction, so one bad record never holds up the others. A
    record that keeps failing while the database answers is dead-lettered after
    ``record_attempts`` (with the error as its reason, replayable); while the database does
    not answer nothing is dead-lettered: the consumer waits for it (readiness red).
    """

    def __init__(
        self,
        *,
        service: str,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        handlers: Mapping[str, Handler],
        raw_handlers: Mapping[str, RawSubscription] | None = None,
        deps: Any = None,
        on_commit: Callable[[], None] = lambda: None,
        batch_size: int = 200,
        poll_ms: int = 200,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        batch_attempts: int = 3,
        record_attempts: int = 3,
        stuck_after: int = 3,
    ) -> None:
        self.processor = BatchProcessor(
            service=service,
            pool=pool,
            handlers=handlers,
            raw_handlers=raw_handlers,
            deps=deps,
            on_commit=on_commit,
        )
        self.pool = pool
        self.consumer = consumer
        self.batch_size = batch_size
        self.poll_ms = poll_ms
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.batch_attempts = batch_attempts
        self.record_attempts = record_attempts
        self.health = Health("consumer", stuck_after)

    async def run(self) -> None:
        """Consume until cancelled."""
        while True:
            batch = await self.consumer.getmany(
                timeout_ms=self.poll_ms, max_records=self.batch_size
            )
            if batch:
                await self.handle(batch)

    async def handle(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Apply a batch (whole, or record by record after it failed) and commit its offsets."""
        for attempt in range(1, self.batch_attempts + 1):
            try:
                await self.processor.process(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                BATCH_FAILURES.inc()
                self.health.failed(exc)
                log.warning(
                    "batch of %d failed (attempt %d of %d): %s",
                    sum(len(r) for r in batch.values()),
                    attempt,
                    self.batch_attempts,
                    exc,
                    exc_info=True,
                )
                if attempt < self.batch_attempts:
                    await asyncio.sleep(self._delay(attempt))
                continue
            self.health.recovered()
            await self._commit(batch)
            return
        for tp, records in batch.items():
            for record in records:
                await self._one_by_one(tp, record)
        await self._commit(batch)

    async def _one_by_one(self, tp: TopicPartition, record: ConsumerRecord[Any, Any]) -> None:
        attempts = 0
        while True:
            try:
                await self.processor.process({tp: [record]})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.failed(exc)
                if not await self._database_answers():
                    # Nothing is the record's fault while the database is away: wait.
                    await asyncio.sleep(self._delay(self.health.failures))
                    continue
                attempts += 1
                if attempts < self.record_attempts:
                    await asyncio.sleep(self._delay(attempts))
                    continue
                reason = f"gave up after {attempts} attempts: {type(exc).__name__}: {exc}"
                try:
                    await self.processor.set_aside(record, reason)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("could not set record %s aside; trying again", record.offset)
                    await asyncio.sleep(self._delay(self.health.failures))
                    continue
            self.health.recovered()
            return

    async def _database_answers(self) -> bool:
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout=3.0)
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        return True

    def _delay(self, n: int) -> float:
        delay: float = min(self.retry_max, self.retry_initial * 2 ** (max(n, 1) - 1))
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto

    async def _commit(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        try:
            await self.consumer.commit(
                {tp: records[-1].offset + 1 for tp, records in batch.items()}
            )
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions; whoever owns them now gets these records
            # again and its inbox drops what this transaction already applied.
            log.warning("offset commit skipped after a rebalance: %s", exc)

    async def process(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Apply one batch in one transaction (see ``BatchProcessor``)."""
        await self.processor.process(batch)
