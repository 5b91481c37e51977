"""Consume batches, apply each event once (inbox), emit through the outbox, then commit offsets."""

from __future__ import annotations

import asyncio
import contextlib
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
from .errors import PermanentError, UnavailableError
from .health import Health
from .kafka import PartitionProgress, progress
from .logs import log_context
from .metrics import (
    BATCH_FAILURES,
    BATCH_SECONDS,
    CONSUMER_LAG,
    DEAD_LETTERS,
    EVENTS_CONSUMED,
    LAST_COMMIT,
    DeadLetterReason,
)

__all__ = [
    "BatchHandler",
    "BatchProcessor",
    "Context",
    "EventConsumer",
    "PermanentError",
    "RawSubscription",
    "UnavailableError",
]

log = logging.getLogger(__name__)
D = TypeVar("D")

# While the database does not answer, a consumer asks it this often whether it is back (one
# `SELECT 1`, at most 3 s each), so that it works again within about a second of its return.
DATABASE_PROBE_SECONDS = 1.0


@dataclass
class Context(Generic[D]):
    """What a handler gets: the open transaction, a way to emit events in it, and the
    service's dependencies (built once at start-up by its ``create_app``)."""

    conn: asyncpg.Connection
    service: str
    deps: D
    emitted: list[Envelope[Event]] = field(default_factory=list)
    # Set by the consumer: emitted events are written together before the batch commits.
    buffer: outbox.OutboxBuffer | None = None

    async def emit(
        self, body: Event, *, subject: str | None = None, cause: Envelope[Any] | None = None
    ) -> None:
        """Write an outgoing event to the outbox, in the same transaction as the state change.

        ``cause``: the consumed event it answers, when a batch handler emits for several
        events at once — the outgoing event then continues that event's trace.
        """
        env = envelope(body, source=f"/{self.service}", subject=subject)
        if cause is not None:
            with _span(cause):
                await self._keep(env)
        else:
            await self._keep(env)
        self.emitted.append(env)

    async def _keep(self, env: Envelope[Event]) -> None:
        if self.buffer is not None:
            self.buffer.add(env)
        else:
            await outbox.add(self.conn, env)


Handler = Callable[[Context[Any], Envelope[Any]], Awaitable[None]]
BatchHandler = Callable[[Context[Any], list[Envelope[Any]]], Awaitable[None]]
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
    """Applies one batch of records in one database transaction (inbox, handlers, outbox).

    The batch's event ids go into the inbox in one statement (copies already applied are
    skipped), its handlers run in record order (a batch handler gets each run of its topic's
    records at once), and the events they emit are written to the outbox together before
    the commit. A record that is not a Nordflow event (undecodable, schema-invalid, on the
    wrong topic) is dead-lettered in the same transaction. Any error from a handler —
    ``PermanentError`` included — rolls the whole batch back and is raised: the consumer then
    applies the batch record by record (`process_isolated`), where a ``PermanentError``
    dead-letters only its own record.
    """

    def __init__(
        self,
        *,
        service: str,
        pool: asyncpg.Pool,
        handlers: Mapping[str, Handler],
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        raw_handlers: Mapping[str, RawSubscription] | None = None,
        deps: Any = None,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.service = service
        self.pool = pool
        self.handlers = dict(handlers)
        self.batch_handlers = dict(batch_handlers or {})
        self.raw_handlers = dict(raw_handlers or {})
        self.deps = deps
        self.on_commit = on_commit

    async def process(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Apply one batch in one transaction; raises (nothing kept) if a handler fails."""
        started = time.perf_counter()
        records = [record for records in batch.values() for record in records]
        dead: list[DeadLetterReason] = []
        async with self.pool.acquire() as conn, conn.transaction():
            outcomes = await self._apply(conn, records, dead)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        for reason in dead:  # counted once committed: a batch rolled back is redone
            DEAD_LETTERS.labels(reason).inc()
        self._count(records, outcomes)

    async def process_isolated(self, tp: TopicPartition, record: ConsumerRecord[Any, Any]) -> None:
        """Apply one record in a transaction of its own; a handler's ``PermanentError``
        dead-letters it (a raw record is skipped) in a transaction of its own."""
        try:
            await self.process({tp: [record]})
        except PermanentError as exc:
            log.warning("record %s:%d refused: %s", record.topic, record.offset, exc)
            await self.set_aside(record, str(exc), kind="refused")

    def _count(self, records: list[ConsumerRecord[Any, Any]], outcomes: list[str]) -> None:
        for record, outcome in zip(records, outcomes, strict=True):
            EVENTS_CONSUMED.labels(record.topic, outcome).inc()
        if any(outcome != "duplicate" for outcome in outcomes):
            self.on_commit()

    async def _apply(
        self,
        conn: asyncpg.Connection,
        records: list[ConsumerRecord[Any, Any]],
        dead: list[DeadLetterReason],
    ) -> list[str]:
        """Apply the records; the reason of each record dead-lettered is added to ``dead``."""
        outcomes: list[str] = ["processed"] * len(records)
        work: list[tuple[int, str, Envelope[Any] | None]] = []  # index, inbox id, event
        for i, record in enumerate(records):
            raw = self.raw_handlers.get(record.topic)
            if raw is not None:
                work.append((i, raw.inbox_id(record), None))
                continue
            env, problem, kind = self._decoded(record)
            if env is None:
                await self._dead_letter(conn, record, problem)
                outcomes[i] = "dead_lettered"
                dead.append(kind)
                continue
            work.append((i, env.id, env))
        fresh = await self._inbox(conn, records, work)
        buffer = outbox.OutboxBuffer()
        ctx: Context[Any] = Context(conn, self.service, self.deps, buffer=buffer)
        run: list[Envelope[Any]] = []
        for i, event_id, env in work:
            if event_id not in fresh:
                outcomes[i] = "duplicate"
                continue
            fresh.discard(event_id)  # a second copy in this same batch is a duplicate too
            record = records[i]
            if env is not None and record.topic in self.batch_handlers:
                if run and run[-1].topic != record.topic:
                    await self._run_batch(ctx, run)
                run.append(env)
                continue
            if run:  # the records before this one come first
                await self._run_batch(ctx, run)
            if env is None:
                await self.raw_handlers[record.topic].handler(ctx, record)
            else:
                with _span(env):
                    await self.handlers[record.topic](ctx, env)
        if run:
            await self._run_batch(ctx, run)
        await buffer.flush(conn)
        return outcomes

    async def _run_batch(self, ctx: Context[Any], run: list[Envelope[Any]]) -> None:
        events = list(run)
        run.clear()
        await self.batch_handlers[events[0].topic](ctx, events)

    def _decoded(
        self, record: ConsumerRecord[Any, Any]
    ) -> tuple[Envelope[Any] | None, str, DeadLetterReason]:
        """The record's event (then the problem is empty and the class unused), or None
        with the problem and its reason class."""
        try:
            env = decode(record.value, record.headers)
        except DecodeError as exc:
            return None, str(exc), "decode"
        if BY_CE_TYPE[env.type].name != record.topic:
            return None, f"{env.type} does not belong on topic {record.topic}", "wrong_topic"
        if record.topic not in self.handlers and record.topic not in self.batch_handlers:
            return None, f"{self.service} has no handler for this topic", "no_handler"
        return env, "", "decode"

    async def _inbox(
        self,
        conn: asyncpg.Connection,
        records: list[ConsumerRecord[Any, Any]],
        work: list[tuple[int, str, Envelope[Any] | None]],
    ) -> set[str]:
        """Insert the batch's ids into the inbox at once; the ids that were new."""
        if not work:
            return set()
        ids, topics, tenants = [], [], []
        for i, event_id, env in work:
            record = records[i]
            ids.append(event_id)
            topics.append(record.topic)
            if env is not None:
                tenants.append(env.tenant_id)
            else:
                tenants.append(self.raw_handlers[record.topic].tenant_id(record))
        rows = await conn.fetch(
            "INSERT INTO inbox (event_id, topic, tenant_id) "
            "SELECT DISTINCT ON (e) e, t, n FROM unnest($1::text[], $2::text[], $3::text[]) "
            "AS x(e, t, n) ON CONFLICT DO NOTHING RETURNING event_id",
            ids,
            topics,
            tenants,
        )
        return {row["event_id"] for row in rows}

    async def set_aside(
        self,
        record: ConsumerRecord[Any, Any],
        reason: str,
        *,
        kind: DeadLetterReason = "gave_up",
    ) -> None:
        """Take a record that keeps failing out of the way, in a transaction of its own: a
        CloudEvent is dead-lettered (replayable; ``kind`` is its reason class in
        ``nordflow_dead_letters_total``); a raw record (which must not be dead-lettered:
        that would loop) is marked consumed and logged."""
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
        if outcome == "dead_lettered":
            DEAD_LETTERS.labels(kind).inc()
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


def event_scope(env: Envelope[Any]) -> contextlib.AbstractContextManager[None]:
    """The consumed event's span (its trace continued) and log context: what a per-record
    handler runs in. A batch handler enters it around each event's own work, so what that
    work records (a job it schedules, an event it writes) carries the event's trace."""
    return _Span(env)


_span = event_scope


class _Span:
    """``<topic> process`` span of a consumed event, with its tenant and key in the logs."""

    def __init__(self, env: Envelope[Any]) -> None:
        self.env = env
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> None:
        env = self.env
        self._stack.enter_context(log_context(env.tenant_id, env.key))
        self._stack.enter_context(
            telemetry.tracer().start_as_current_span(
                f"{env.topic} process",
                context=telemetry.extract(env.traceparent, env.tracestate),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": env.topic,
                    "messaging.message.id": env.id,
                    "nordflow.tenant_id": env.tenant_id,
                    "nordflow.invoice_id": env.key,
                },
            )
        )

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


class EventConsumer:
    """One consumer group: at-least-once delivery made effectively-once by the inbox.

    Each ``getmany`` batch goes to the ``BatchProcessor`` (one transaction); offsets are
    committed only after the transaction is durable. A batch that fails is retried as a
    whole ``batch_attempts`` times with backoff and jitter; then its records are applied one
    by one, each in its own transaction, so one bad record never holds up the others. A
    record that keeps failing while the database answers is dead-lettered after
    ``record_attempts`` (with the error as its reason, replayable); while the database does
    not answer, or the handler raises ``UnavailableError`` (what it needs is not there yet),
    nothing is dead-lettered: the consumer waits for it (readiness red).

    After every poll it exports each assigned partition's lag and tells its ``health``
    whether records wait that the poll did not return: polls that return nothing for
    ``stall_seconds`` while records wait turn readiness red too. And it commits the start
    position of each newly assigned partition once, so that no partition — an empty one
    included — needs a ListOffsets request again after a rebalance (docs/resilience.md,
    finding 1).
    """

    def __init__(
        self,
        *,
        service: str,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        handlers: Mapping[str, Handler],
        batch_handlers: Mapping[str, BatchHandler] | None = None,
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
        stall_seconds: float | None = 120.0,
        clock: Callable[[], float] = time.monotonic,
        loop: str = "consumer",
    ) -> None:
        self.processor = BatchProcessor(
            service=service,
            pool=pool,
            handlers=handlers,
            batch_handlers=batch_handlers,
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
        # ``loop`` names it in readiness and ``nordflow_stuck``: "consumer" for the service's
        # group, "consumer:<group>" for a group of its own (`consumer_group`).
        self.health = Health(loop, stuck_after, stall_seconds=stall_seconds, clock=clock)
        self._lag_series: set[tuple[str, str]] = set()
        # Partitions whose position is committed since they were assigned to this process.
        self._anchored: set[TopicPartition] = set()

    async def run(self) -> None:
        """Consume until cancelled."""
        while True:
            batch = await self.consumer.getmany(
                timeout_ms=self.poll_ms, max_records=self.batch_size
            )
            self.observe(batch, progress(self.consumer))
            if batch:
                await self.handle(batch)
            # Here every position is durable: what the poll returned is applied and committed.
            await self.anchor()

    def observe(
        self,
        batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]],
        where: Mapping[TopicPartition, PartitionProgress],
    ) -> None:
        """After a poll: set the lag of each assigned partition (a partition no longer
        assigned, or whose lag is not known, has no series), and tell the health whether
        records wait that the poll did not return — lag above zero, or a partition whose
        position is still unknown (the partition finding 1 held up)."""
        lags = {(tp.topic, str(tp.partition)): p.lag for tp, p in where.items()}
        known = {labels: lag for labels, lag in lags.items() if lag is not None}
        for labels in self._lag_series - known.keys():
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(*labels)
        for labels, lag in known.items():
            CONSUMER_LAG.labels(*labels).set(lag)
        self._lag_series = set(known)
        behind = any(p.position is None or (p.lag or 0) > 0 for p in where.values())
        self.health.polled(records=sum(len(r) for r in batch.values()), behind=behind)

    async def anchor(self) -> None:
        """Commit the position of each partition assigned since the last look, once it is
        known. Called only where every position is durable (after a poll's batch was
        applied and committed, or after a poll that returned nothing), so it never commits
        past a record not applied; for a partition that has a committed offset it commits
        that same offset again."""
        assigned = self.consumer.assignment()
        self._anchored &= assigned
        if not assigned - self._anchored:
            return
        fresh = {
            tp: p.position
            for tp, p in progress(self.consumer).items()
            if tp in assigned and tp not in self._anchored and p.position is not None
        }
        if fresh and await self._commit_offsets(fresh):
            self._anchored |= fresh.keys()

    async def handle(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Apply a batch (whole, or record by record after it failed) and commit its offsets."""
        for attempt in range(1, self.batch_attempts + 1):
            try:
                await self.processor.process(batch)
            except asyncio.CancelledError:
                raise
            except PermanentError:
                # One of its records can never be applied: find it, record by record.
                break
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
                await self.processor.process_isolated(tp, record)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.failed(exc)
                if isinstance(exc, UnavailableError):
                    # What the handler needs is not there yet: wait, uncounted.
                    log.warning(
                        "record %s:%d:%d waits: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        exc,
                    )
                    await asyncio.sleep(self._delay(self.health.failures))
                    continue
                if not await self._database_answers():
                    # Nothing is the record's fault while the database is away: wait until
                    # it answers, then try again at once.
                    await self._until_database_answers()
                    continue
                attempts += 1
                if attempts < self.record_attempts:
                    await asyncio.sleep(self._delay(attempts))
                    continue
                reason = f"gave up after {attempts} attempts: {type(exc).__name__}: {exc}"
                try:
                    await self.processor.set_aside(record, reason, kind="gave_up")
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("could not set record %s aside; trying again", record.offset)
                    await asyncio.sleep(self._delay(self.health.failures))
                    continue
            self.health.recovered()
            return

    async def _until_database_answers(self) -> None:
        """Probe the database every ``DATABASE_PROBE_SECONDS`` until it answers; each probe
        that fails counts as a failure, so the consumer turns not ready while it waits."""
        while True:
            await asyncio.sleep(DATABASE_PROBE_SECONDS)
            if await self._database_answers():
                return
            self.health.failed(ConnectionError("the database does not answer"))

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(3.0):  # not wait_for: see JobWorker._loop
                await self.pool.fetchval("SELECT 1")
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        return True

    def _delay(self, n: int) -> float:
        delay: float = min(self.retry_max, self.retry_initial * 2 ** (max(n, 1) - 1))
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto

    async def _commit(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        if await self._commit_offsets(offsets):
            self._anchored |= offsets.keys()

    async def _commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """Commit; False when a rebalance took the partitions first."""
        try:
            await self.consumer.commit(dict(offsets))
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions; whoever owns them now gets these records
            # again and its inbox drops what this transaction already applied.
            log.warning("offset commit skipped after a rebalance: %s", exc)
            return False
        LAST_COMMIT.set_to_current_time()
        return True

    async def process(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Apply one batch in one transaction (see ``BatchProcessor``)."""
        await self.processor.process(batch)
