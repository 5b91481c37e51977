"""ServiceApp: the composition every service's ``create_app()`` fills in and runs."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import OperatorAction
from nordflow_schemas.topics import OPERATOR_ACTION_REQUESTED, TENANT_UPDATED, consumer_group

from . import db, dlq, jobs
from .consumer import (
    BatchHandler,
    Context,
    EventConsumer,
    Handler,
    RawHandler,
    RawSubscription,
)
from .health import Health
from .http import ReadinessCheck, build_http_app, http_server
from .jobs import Job, JobHandler, JobRun, JobWorker, LeasedJobHandler
from .kafka import create_consumer, create_producer
from .logs import configure_logging
from .operator import OperatorActions, OperatorHandler
from .outbox import OutboxRelay
from .settings import ServiceSettings
from .telemetry import configure_tracing
from .tenant_profiles import on_tenant_updated

log = logging.getLogger(__name__)
Hook = Callable[[], Awaitable[None]]
PRUNE_SECONDS = 600.0
"""How often housekeeping prunes the inbox and the outbox."""
COUNT_SECONDS = 15.0
"""How often housekeeping counts the job backlog for its gauges (about a scrape interval)."""
D = TypeVar("D")


@dataclass(frozen=True)
class Resources:
    """What a service's dependencies are built from at start-up."""

    service: str
    settings: ServiceSettings
    pool: asyncpg.Pool
    committed: Callable[[], None]


DepsFactory = Callable[[Resources], Awaitable[D]]


async def _no_deps(_: Resources) -> None:
    return None


class ServiceApp(Generic[D]):
    """A service: subscriptions, durable job kinds, background loops and HTTP routes.

    Nothing connects when the app is built; ``run()`` opens the pool, migrates, starts the
    producer and the outbox relay, builds the service's one dependencies object (``deps``:
    repositories' factories, partner clients, caches), then starts the consumer group (and
    one per topic the topic map has read in a group of its own), the job workers, the loops
    and the HTTP server — each handed those dependencies — and stops them in reverse order
    on SIGTERM. Every service keeps its copy of the tenants' profiles
    from ``tenant.updated`` unless ``tenant_profiles=False`` (their owner), and carries out
    the ``operator.action_requested`` commands addressed to it (``retry_job`` and
    ``replay_dead_letter`` here; its own actions through ``operator_action``).
    """

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        migrations_package: str | None,
        *,
        deps: DepsFactory[D] = _no_deps,  # type: ignore[assignment]
        tenant_profiles: bool = True,
    ) -> None:
        self.name = name
        self.settings = settings
        self.schema = db.schema_name(name)
        self.migrations_package = migrations_package
        self.deps_factory = deps
        self.handlers: dict[str, Handler] = {}
        self.raw_handlers: dict[str, RawSubscription] = {}
        self.batch_handlers: dict[str, BatchHandler] = {}
        if tenant_profiles:
            self.handlers[TENANT_UPDATED.name] = on_tenant_updated
        self.operator_actions = OperatorActions(name, self._read_letter)
        self.handlers[OPERATOR_ACTION_REQUESTED.name] = self.operator_actions.handle
        self.job_handlers: dict[str, tuple[JobHandler | LeasedJobHandler, dict[str, Any]]] = {}
        self.loops: list[Callable[[D], Coroutine[Any, Any, None]]] = []
        self.routers: list[APIRouter] = []
        self.body_limits: dict[str, int] = {}
        self.on_startup: list[Hook] = []
        self.on_shutdown: list[Hook] = []
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._deps: D | None = None
        self.relay: OutboxRelay | None = None
        self.job_workers: dict[str, JobWorker] = {}
        self._backlog_kinds: set[str] = set()
        self._stop = asyncio.Event()

    # -- building ---------------------------------------------------------------------------
    def subscribe(
        self, topic: str, handler: Callable[[Context[D], Envelope[Any]], Awaitable[None]]
    ) -> None:
        """Handle every event of a topic (once, transactionally)."""
        self.handlers[topic] = handler

    def subscribe_batch(
        self, topic: str, handler: Callable[[Context[D], list[Envelope[Any]]], Awaitable[None]]
    ) -> None:
        """Handle the events of a topic a batch at a time (once each, transactionally): the
        handler gets every new event of a run of the topic's records in a consumed batch, so
        it can read and write them with a few statements instead of a few per event."""
        self.batch_handlers[topic] = handler

    def subscribe_raw(
        self,
        topic: str,
        handler: Callable[[Context[D], Any], Awaitable[None]],
        *,
        inbox_id: Callable[[Any], str] = dlq.inbox_id,
        tenant_id: Callable[[Any], str] = dlq.tenant_of,
    ) -> None:
        """Handle every record of a topic that carries no CloudEvents (``event.dead_lettered``)
        once: the handler gets the Kafka record; ``inbox_id(record)`` is its deterministic
        identity for the inbox (by default a dead letter's: consumer and origin position)."""
        raw: RawHandler = handler
        self.raw_handlers[topic] = RawSubscription(raw, inbox_id, tenant_id)

    @property
    def topics(self) -> list[str]:
        """Every topic the service consumes."""
        return sorted({*self.handlers, *self.batch_handlers, *self.raw_handlers})

    @property
    def consumer_groups(self) -> dict[str, list[str]]:
        """The consumer groups the service runs and the topics each reads: its own name for
        most, a group of its own for a topic marked ``separate_group`` in the topic map."""
        groups: dict[str, list[str]] = {}
        for topic in self.topics:
            groups.setdefault(consumer_group(self.name, topic), []).append(topic)
        return groups

    def operator_action(
        self,
        action: OperatorAction,
        handler: OperatorHandler,
    ) -> None:
        """Carry out an operator action addressed to this service (``sync_connection`` …);
        the handler returns the outcome, announced on ``operator.action_completed``."""
        self.operator_actions.register(action, handler)

    async def _read_letter(self, partition: int, offset: int) -> dlq.DeadLetter | None:
        return await dlq.read_one(self.settings.kafka_bootstrap_servers, partition, offset)

    def job(
        self,
        kind: str,
        handler: Callable[[Context[D], Job], Awaitable[dict[str, Any]]]
        | Callable[[JobRun[D], Job], Awaitable[dict[str, Any]]],
        **options: Any,
    ) -> None:
        """Run durable jobs of a kind (see ``jobs.schedule``): ``handler`` takes a `Context`
        (in the claiming transaction), or a `JobRun` when ``lease_seconds`` is among the
        options (see `jobs.JobWorker`)."""
        self.job_handlers[kind] = (handler, options)

    def loop(self, factory: Callable[[D], Coroutine[Any, Any, None]]) -> None:
        """A background loop started with the service (e.g. a poller's scheduler)."""
        self.loops.append(factory)

    def include_router(self, router: APIRouter) -> None:
        """Serve an HTTP router (its dependencies reach the pool and ``deps`` through
        ``nordflow_runtime.http``)."""
        self.routers.append(router)

    def body_limit(self, path_prefix: str, max_bytes: int) -> None:
        """Let request bodies under a path prefix be larger (or smaller) than the service's
        ``HTTP_MAX_BODY_BYTES`` (erp-poller's pushes carry whole batches)."""
        self.body_limits[path_prefix] = max_bytes

    def http_app(self, checks: dict[str, ReadinessCheck] | None = None) -> FastAPI:
        """The service's HTTP app: probes, metrics and routers behind the shared edge."""
        return build_http_app(
            self.name,
            checks or {},
            self.routers,
            max_body_bytes=self.settings.http_max_body_bytes,
            body_limits=self.body_limits,
        )

    async def build_deps(self, resources: Resources) -> D:
        """The service's dependencies (what ``run`` and the test harness hand to handlers)."""
        return await self.deps_factory(resources)

    # -- running ----------------------------------------------------------------------------
    @property
    def pool(self) -> asyncpg.Pool:
        """The database pool (bound to the service's schema); available once started."""
        if self._pool is None:
            raise RuntimeError("service not started")
        return self._pool

    @property
    def deps(self) -> D:
        """The dependencies built at start-up."""
        if self._deps is None:
            raise RuntimeError("service not started")
        return self._deps

    def committed(self) -> None:
        """Wake the relay and the job workers after a transaction that may have queued work."""
        if self.relay is not None:
            self.relay.notify()
        for worker in self.job_workers.values():
            worker.notify()

    def migrations(self) -> list[db.Migration]:
        """The runtime's migrations, then the service's (if it has tables of its own), then
        the shared columns of its ``api_tokens`` (scope ``api-tokens``; nothing without one)."""
        own = self.migrations_package
        runtime = db.load_migrations("nordflow_runtime", "runtime")
        service = db.load_migrations(own, self.name) if own else []
        # The shared columns of a tenant API's `api_tokens`, once the service created it.
        tokens = db.load_migrations("nordflow_runtime.token_schema", "api-tokens")
        return runtime + service + tokens

    async def migrate(self) -> list[str]:
        """Apply migrations and exit (the ``migrate`` command)."""
        pool = await db.create_pool(
            self.settings.database_url.get_secret_value(), self.schema, min_size=1, max_size=2
        )
        try:
            return await db.migrate(pool, self.schema, self.migrations())
        finally:
            await pool.close()

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT, then shut down cleanly."""
        configure_logging(self.name, self.settings.log_level)
        configure_tracing(self.name)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        s = self.settings
        self._pool = await db.create_pool(
            s.database_url.get_secret_value(), self.schema, max_size=s.database_pool_size
        )
        await db.migrate(self._pool, self.schema, self.migrations())
        producer = create_producer(s.kafka_bootstrap_servers, self.name)
        self._producer = producer
        await producer.start()
        self.relay = OutboxRelay(
            self._pool,
            producer,
            self.schema,
            batch_size=s.outbox_batch_size,
            poll_seconds=s.outbox_poll_seconds,
            stuck_after=s.stuck_after_failures,
        )
        checks: dict[str, ReadinessCheck] = {
            "database": self._check_db,
            "kafka": self._check_kafka,
            "relay": _health_check(self.relay.health),
        }
        deps = await self.build_deps(Resources(self.name, s, self._pool, self.committed))
        self._deps = deps
        for hook in self.on_startup:
            await hook()
        tasks = [asyncio.create_task(self.relay.run(), name="outbox-relay")]
        consumers = []
        for group, topics in self.consumer_groups.items():
            consumer = create_consumer(
                s.kafka_bootstrap_servers,
                group,
                topics,
                max_poll_records=s.consumer_batch_size,
                metadata_max_age_ms=s.kafka_metadata_max_age_ms,
            )
            await consumer.start()
            consumers.append(consumer)
            loop_name = "consumer" if group == self.name else f"consumer:{group}"
            event_consumer = EventConsumer(
                service=self.name,
                pool=self._pool,
                consumer=consumer,
                handlers={t: h for t, h in self.handlers.items() if t in topics},
                batch_handlers={t: h for t, h in self.batch_handlers.items() if t in topics},
                raw_handlers={t: h for t, h in self.raw_handlers.items() if t in topics},
                deps=deps,
                on_commit=self.committed,
                batch_size=s.consumer_batch_size,
                poll_ms=s.consumer_poll_ms,
                retry_initial=s.retry_initial_seconds,
                retry_max=s.retry_max_seconds,
                batch_attempts=s.consumer_batch_attempts,
                record_attempts=s.consumer_record_attempts,
                stuck_after=s.stuck_after_failures,
                stall_seconds=s.consumer_stall_seconds,
                loop=loop_name,
            )
            checks[loop_name] = _health_check(event_consumer.health)
            tasks.append(asyncio.create_task(event_consumer.run(), name=loop_name))
        for kind, (handler, options) in self.job_handlers.items():
            worker = JobWorker(
                self._pool,
                self.name,
                kind,
                handler,
                deps=deps,
                on_commit=self.committed,
                **options,
            )
            self.job_workers[kind] = worker
            tasks.append(asyncio.create_task(worker.run(), name=f"jobs:{kind}"))
        tasks += [asyncio.create_task(factory(deps), name="loop") for factory in self.loops]
        tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        http_app = self.http_app(checks)
        http_app.state.pool = self._pool
        http_app.state.deps = deps
        server = http_server(http_app, s.http_host, s.http_port)
        tasks.append(asyncio.create_task(server.serve(), name="http"))
        log.info("started", extra={"fields": {"http_port": s.http_port}})
        stop = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stop and t.exception() is not None]
        for task in failed:
            log.error("task %s crashed", task.get_name(), exc_info=task.exception())
        log.info("stopping")
        server.should_exit = True
        for task in tasks:
            if task.get_name() != "http":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
        for hook in self.on_shutdown:
            await hook()
        await close_deps(deps)
        await producer.stop()
        await self._pool.close()
        if failed:
            raise SystemExit(1)

    async def _housekeeping(self) -> None:
        """Prune old inbox ids and published outbox rows every ``PRUNE_SECONDS``; count the
        job backlog every ``COUNT_SECONDS``."""
        s = self.settings
        loop = asyncio.get_running_loop()
        pruned_at: float | None = None
        while True:
            if pruned_at is None or loop.time() - pruned_at >= PRUNE_SECONDS:
                pruned_at = loop.time()
                try:
                    await db.prune(self.pool, s.inbox_retention_days, s.outbox_retention_hours)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("housekeeping failed; trying again later")
            try:
                await self.count_backlog()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job backlog not counted: %s", exc)
            await asyncio.sleep(COUNT_SECONDS)

    async def count_backlog(self) -> None:
        """Set the job backlog gauges: every kind this service runs (0 when none is due),
        every kind found, and every kind reported before (so none keeps a stale value)."""
        async with asyncio.timeout(10.0):  # not wait_for: see JobWorker._loop
            counted = await jobs.backlog(self.pool)
        kinds = set(self.job_handlers) | self._backlog_kinds
        self._backlog_kinds = jobs.set_backlog_gauges(kinds, counted)

    async def _check_db(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def _check_kafka(self) -> None:
        if self._producer is None:
            raise RuntimeError("producer not started")
        await self._producer.client.fetch_all_metadata()


def _health_check(health: Health) -> ReadinessCheck:
    """A readiness check that fails while the loop keeps failing."""

    async def check() -> None:
        health.check()

    return check


async def close_deps(deps: object) -> None:
    """Close what the dependencies hold open (clients, sessions), if they say how."""
    aclose = getattr(deps, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        log.exception("closing the service's dependencies failed")
