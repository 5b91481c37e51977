"""Durable jobs and timers in PostgreSQL: claimed with SKIP LOCKED, retried with backoff.

A kind's jobs run in one of two ways:

- **in the claiming transaction** (the default): the handler runs inside it, the job's row
  locked, so a crash releases the job for another attempt;
- **under a lease** (``lease_seconds``): the claim commits at once (the job `running`, the
  lease's token and end on its row); the handler opens a short transaction of its own for
  each change (`JobRun.transaction`), each of which holds only while the lease is still its
  run's. No transaction and no row lock is held across a partner call. The run renews the
  lease while it works; a process that dies leaves it to run out, after which any replica
  claims the job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import asyncpg
from nordflow_schemas.envelope import envelope
from nordflow_schemas.events import Event, JobFailed, JobRetried
from pydantic import ValidationError

from . import outbox, telemetry
from .consumer import Context, PermanentError
from .logs import log_context
from .metrics import JOBS, JOBS_OLDEST_DUE, JOBS_PENDING

log = logging.getLogger(__name__)
D = TypeVar("D")


@dataclass(frozen=True)
class Job:
    """A claimed job: its row locked while the handler runs, or its lease held."""

    id: int
    kind: str
    key: str
    tenant_id: str
    payload: dict[str, Any]
    attempts: int


async def schedule(
    conn: asyncpg.Connection,
    *,
    kind: str,
    key: str,
    tenant_id: str,
    payload: dict[str, Any],
    due_at: dt.datetime,
) -> bool:
    """Record a job in the caller's transaction; a second one with the same key is ignored."""
    traceparent, tracestate = telemetry.current()
    inserted = await conn.fetchval(
        "INSERT INTO jobs (kind, job_key, tenant_id, payload, due_at, traceparent, tracestate) "
        "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7) "
        "ON CONFLICT (kind, job_key) DO NOTHING RETURNING true",
        kind,
        key,
        tenant_id,
        json.dumps(payload),
        due_at,
        traceparent,
        tracestate,
    )
    return bool(inserted)


JobHandler = Callable[[Context[Any], Job], Awaitable[dict[str, Any]]]


class LeaseLostError(Exception):
    """The job's lease is no longer this run's (it ran out and another run claimed the job):
    this run's transaction is rolled back and it stops without recording anything."""


@dataclass(frozen=True)
class JobRun(Generic[D]):
    """What a leased job's handler gets: no open transaction, but one per change on demand."""

    pool: asyncpg.Pool
    service: str
    deps: D
    job_id: int
    lease: uuid.UUID

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Context[D]]:
        """A short transaction on a connection of its own, committed at the end of the block
        only while the lease is this run's (the job's row is locked from its first statement,
        so the lease cannot pass to another run before it commits); `LeaseLostError` else."""
        async with leased_transaction(self.pool, self.job_id, self.lease) as conn:
            yield Context(conn, self.service, self.deps)


@contextlib.asynccontextmanager
async def leased_transaction(
    pool: asyncpg.Pool, job_id: int, lease: uuid.UUID
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction whose first statement locks the job's row if the lease is still
    ``lease`` (`LeaseLostError` otherwise)."""
    async with pool.acquire() as conn, conn.transaction():
        held = await conn.fetchval(
            "SELECT true FROM jobs WHERE id = $1 AND lease = $2 FOR UPDATE", job_id, lease
        )
        if not held:
            raise LeaseLostError(f"job {job_id}'s lease ran out and another run holds it")
        yield conn


LeasedJobHandler = Callable[[JobRun[Any], Job], Awaitable[dict[str, Any]]]


class JobWorker:
    """Runs due jobs of one kind; several replicas never run the same job at once.

    By default the handler (a `JobHandler`) runs inside the claiming transaction, the job's
    row locked. With ``lease_seconds`` the handler is a `LeasedJobHandler`: the claim commits
    at once and the handler opens its own short transactions (see the module's docstring).
    Either way, handlers doing external side effects must first look up whether an earlier
    attempt already succeeded at the target (see ledger-closer, distribution-router's send).

    ``concurrency`` jobs run at once, at most ``per_tenant`` of one tenant: a tenant with that
    many running is passed over when the next job is claimed, so one tenant's month end
    never takes every slot.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        service: str,
        kind: str,
        handler: JobHandler | LeasedJobHandler,
        *,
        deps: Any = None,
        on_commit: Callable[[], None] = lambda: None,
        max_attempts: int = 12,
        max_crashes: int = 5,
        idle_seconds: float = 0.5,
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
        concurrency: int = 1,
        per_tenant: int | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        if lease_seconds is not None and lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, not {lease_seconds}")
        self.pool = pool
        self.service = service
        self.kind = kind
        self.handler = handler
        self.deps = deps
        self.on_commit = on_commit
        self.max_attempts = max_attempts
        self.max_crashes = max_crashes
        self.idle_seconds = idle_seconds
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.concurrency = max(1, concurrency)
        self.per_tenant = per_tenant
        self.lease_seconds = lease_seconds
        self.running: dict[str, int] = {}  # tenant → jobs running in this process
        self._claiming = asyncio.Lock()  # one claim at a time: see run_one
        self.wakeup = asyncio.Event()

    def notify(self) -> None:
        """A job may have become due now."""
        self.wakeup.set()

    async def run(self) -> None:
        """Work until cancelled, ``concurrency`` jobs at a time."""
        if self.concurrency == 1:
            await self._loop()
            return
        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                worked = await self.run_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job worker %s failed; retrying", self.kind)
                worked = False
                await asyncio.sleep(self.idle_seconds)
            if not worked:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result,
                # swallowing a cancellation that comes as the event is set (the worker then
                # never stops).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle_seconds):
                        await self.wakeup.wait()
                self.wakeup.clear()

    async def run_one(self) -> bool:
        """Claim and run one due job; False when none is due.

        The tenants at ``per_tenant`` are read, the job claimed and its tenant's slot taken
        under ``_claiming``: two loops of this worker never both read a tenant below its
        bound and both claim a job of it.
        """
        if self.lease_seconds is None:
            async with self.pool.acquire() as conn, conn.transaction():
                async with self._claiming:
                    row = await conn.fetchrow(
                        "SELECT id, job_key, tenant_id, payload, attempts, traceparent, "
                        "tracestate FROM jobs WHERE kind = $1 AND state = 'pending' "
                        "AND due_at <= now() AND tenant_id <> ALL($2::text[]) "
                        "ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                        self.kind,
                        self._busy(),
                    )
                    if row is None:
                        return False
                    self._hold(row["tenant_id"])
                try:
                    starts = await self._record_start(row["id"])
                    await self._claimed(row, starts, _Claim(self.pool, row["id"], conn=conn))
                finally:
                    self._release(row["tenant_id"])
        else:
            lease = uuid.uuid4()
            async with self._claiming:
                # A pending job whose time has come, or a running one whose lease ran out;
                # the claim is counted in the same statement (committed with it).
                row = await self.pool.fetchrow(
                    "WITH claimed AS (UPDATE jobs SET state = 'running', lease = $3, "
                    "due_at = now() + make_interval(secs => $4) WHERE id = ("
                    "SELECT id FROM jobs WHERE kind = $1 AND state IN ('pending', 'running') "
                    "AND due_at <= now() AND tenant_id <> ALL($2::text[]) "
                    "ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
                    "RETURNING id, job_key, tenant_id, payload, attempts, traceparent, "
                    "tracestate), "
                    "started AS (INSERT INTO job_starts (job_id, starts) SELECT id, 1 "
                    "FROM claimed ON CONFLICT (job_id) DO UPDATE "
                    "SET starts = job_starts.starts + 1 RETURNING starts) "
                    "SELECT claimed.*, started.starts FROM claimed, started",
                    self.kind,
                    self._busy(),
                    lease,
                    self.lease_seconds,
                )
                if row is None:
                    return False
                self._hold(row["tenant_id"])
            try:
                await self._claimed(row, row["starts"], _Claim(self.pool, row["id"], lease=lease))
            finally:
                self._release(row["tenant_id"])
        self.on_commit()
        return True

    def _busy(self) -> list[str]:
        """The tenants with ``per_tenant`` jobs running in this process."""
        return [t for t, n in self.running.items() if self.per_tenant and n >= self.per_tenant]

    def _hold(self, tenant: str) -> None:
        """Count a job of the tenant as running in this process."""
        self.running[tenant] = self.running.get(tenant, 0) + 1

    def _release(self, tenant: str) -> None:
        """The tenant's job ended (however)."""
        self.running[tenant] -= 1
        if not self.running[tenant]:
            del self.running[tenant]

    async def _claimed(self, row: asyncpg.Record, starts: int, claim: _Claim) -> None:
        """Run a claimed job; ``starts`` counts its claims, this one included."""
        job = Job(
            row["id"],
            self.kind,
            row["job_key"],
            row["tenant_id"],
            json.loads(row["payload"]),
            row["attempts"] + 1,
        )
        crashed = starts - job.attempts
        with (
            log_context(job.tenant_id, job.payload.get("invoice_id")),
            telemetry.tracer().start_as_current_span(
                f"job {self.kind}",
                context=telemetry.extract(row["traceparent"], row["tracestate"]),
                attributes={"nordflow.job_key": job.key, "nordflow.tenant_id": job.tenant_id},
            ),
        ):
            try:
                if crashed >= self.max_crashes:
                    # Earlier claims never recorded an outcome: their process died in the
                    # handler.
                    await self._finish_failed(
                        claim,
                        job,
                        f"the process stopped {crashed} times while running this job; "
                        "see the service's log, fix the cause, then `jobs retry`",
                    )
                    return
                await self._attempt(claim, job)
            except LeaseLostError as exc:
                log.warning("job %s/%s stopped: %s", self.kind, job.key, exc)
                JOBS.labels(self.kind, "lease_lost").inc()
            except asyncio.CancelledError:
                # A graceful stop (SIGTERM, a rolling deploy) is not a crash of the job.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._forget_start(job.id, claim.lease))
                raise

    async def _record_start(self, job_id: int) -> int:
        """Count a claim in its own committed transaction, outliving the claiming one should
        its process die in the handler; how many claims there were."""
        starts: int = await self.pool.fetchval(
            "INSERT INTO job_starts (job_id, starts) VALUES ($1, 1) ON CONFLICT (job_id) "
            "DO UPDATE SET starts = job_starts.starts + 1 RETURNING starts",
            job_id,
        )
        return starts

    async def _forget_start(self, job_id: int, lease: uuid.UUID | None) -> None:
        """Undo the claim's count; a lease is given back, the job due again at once."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE job_starts SET starts = starts - 1 WHERE job_id = $1 AND starts > 0",
                job_id,
            )
            if lease is not None:
                await conn.execute(
                    "UPDATE jobs SET state = 'pending', lease = NULL, due_at = now() "
                    "WHERE id = $1 AND lease = $2",
                    job_id,
                    lease,
                )

    async def _call(self, claim: _Claim, job: Job) -> dict[str, Any]:
        """The handler: in a savepoint of the claiming transaction, or with its lease renewed
        while it works."""
        if claim.conn is not None:
            locked = cast(JobHandler, self.handler)
            async with claim.conn.transaction():
                return await locked(Context(claim.conn, self.service, self.deps), job)
        assert claim.lease is not None
        assert self.lease_seconds is not None
        leased = cast(LeasedJobHandler, self.handler)
        run = JobRun(self.pool, self.service, self.deps, job.id, claim.lease)
        renewing = asyncio.create_task(self._renew(job.id, claim.lease, self.lease_seconds))
        try:
            return await leased(run, job)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew(self, job_id: int, lease: uuid.UUID, seconds: float) -> None:
        """Push the lease's end ``seconds`` ahead every third of it, until it is not ours."""
        while True:
            await asyncio.sleep(seconds / 3)
            try:
                held = await self.pool.fetchval(
                    "UPDATE jobs SET due_at = now() + make_interval(secs => $3) "
                    "WHERE id = $1 AND lease = $2 RETURNING true",
                    job_id,
                    lease,
                    seconds,
                )
            except Exception as exc:  # the database away for a moment: tried at the next beat
                log.warning("job %d: renewing its lease failed: %s", job_id, exc)
                continue
            if not held:
                log.warning("job %d: its lease passed to another run", job_id)
                return

    async def _attempt(self, claim: _Claim, job: Job) -> None:
        try:
            result = await self._call(claim, job)
        except PermanentError as exc:
            await self._finish_failed(claim, job, str(exc))
            return
        except LeaseLostError:
            raise
        except Exception as exc:
            if job.attempts >= self.max_attempts:
                await self._finish_failed(
                    claim, job, f"gave up after {job.attempts} attempts: {exc}"
                )
                return
            delay = min(self.retry_max, self.retry_initial * 2 ** (job.attempts - 1))
            delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
            log.warning("job %s/%s attempt %d failed: %s", self.kind, job.key, job.attempts, exc)
            await claim.one_statement(
                "UPDATE jobs SET state = 'pending', lease = NULL, attempts = $2, "
                "last_error = $3, due_at = now() + make_interval(secs => $4) "
                "WHERE id = $1 AND lease IS NOT DISTINCT FROM $5 RETURNING 1",
                job.attempts,
                str(exc)[:2000],
                delay,
            )
            JOBS.labels(self.kind, "retry").inc()
            return
        await claim.one_statement(
            "WITH done AS (UPDATE jobs SET state = 'done', lease = NULL, attempts = $2, "
            "result = $3::jsonb, finished_at = now(), last_error = NULL "
            "WHERE id = $1 AND lease IS NOT DISTINCT FROM $4 RETURNING id), "
            "forgotten AS (DELETE FROM job_starts WHERE job_id IN (SELECT id FROM done)) "
            "SELECT 1 FROM done",
            job.attempts,
            json.dumps(result),
        )
        JOBS.labels(self.kind, "done").inc()

    async def _finish_failed(self, claim: _Claim, job: Job, error: str) -> None:
        log.error("job %s/%s failed permanently: %s", self.kind, job.key, error)
        async with claim.writing() as conn:
            failed_at = await conn.fetchval(
                "UPDATE jobs SET state = 'failed', lease = NULL, attempts = $2, last_error = $3, "
                "finished_at = now() WHERE id = $1 RETURNING finished_at",
                job.id,
                job.attempts,
                error[:2000],
            )
            await conn.execute("DELETE FROM job_starts WHERE job_id = $1", job.id)
            # Announced in the same transaction, so a failure is on job.failed exactly when
            # it is recorded (the control panel shows it; retry_job makes it pending again).
            await _announce(
                conn,
                self.service,
                functools.partial(
                    JobFailed,
                    tenant_id=job.tenant_id,
                    service=self.service,
                    job_id=job.id,
                    kind=job.kind,
                    job_key=job.key[:500],
                    invoice_id=_invoice_of(job.payload),
                    attempts=job.attempts,
                    error=error[:2000],
                    failed_at=failed_at,
                ),
            )
        JOBS.labels(self.kind, "failed").inc()


@dataclass(frozen=True)
class _Claim:
    """Where a claimed job's outcome is written: in the claiming transaction (``conn``), or
    in a short one of its own that holds only while ``lease`` is still the job's."""

    pool: asyncpg.Pool
    job_id: int
    conn: asyncpg.Connection | None = None
    lease: uuid.UUID | None = None

    async def one_statement(self, sql: str, *args: Any) -> None:
        """Run one statement on the job's row: ``$1`` is its id, the last parameter its lease
        (None for a locked claim), and it returns a row only when it changed the job."""
        on = self.conn if self.conn is not None else self.pool
        changed = await on.fetchval(sql, self.job_id, *args, self.lease)
        if changed is None:
            raise LeaseLostError(f"job {self.job_id}'s lease ran out and another run holds it")

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[asyncpg.Connection]:
        if self.conn is not None:
            yield self.conn
            return
        assert self.lease is not None
        async with leased_transaction(self.pool, self.job_id, self.lease) as conn:
            yield conn


def _invoice_of(payload: dict[str, Any]) -> str | None:
    found = payload.get("invoice_id")
    return found if isinstance(found, str) and found else None


async def _announce(conn: asyncpg.Connection, service: str, build: Callable[[], Event]) -> None:
    """Write a job event to the outbox; a job whose ids do not fit the event is logged only."""
    try:
        body = build()
    except ValidationError as exc:
        log.warning("job event not announced: %s", exc.errors()[:3])
        return
    await outbox.add(conn, envelope(body, source=f"/{service}"))


async def list_jobs(
    conn: asyncpg.Connection, *, state: str | None, kind: str | None, limit: int
) -> list[asyncpg.Record]:
    """Jobs for operators, newest first (never their payload: it may hold customer data)."""
    return list(
        await conn.fetch(
            "SELECT id, kind, job_key, tenant_id, state, attempts, due_at, finished_at, "
            "last_error FROM jobs WHERE ($1::text IS NULL OR state = $1) "
            "AND ($2::text IS NULL OR kind = $2) ORDER BY id DESC LIMIT $3",
            state,
            kind,
            limit,
        )
    )


async def retry_failed(
    conn: asyncpg.Connection,
    *,
    ids: list[int] | None = None,
    kind: str | None = None,
    tenant_id: str | None = None,
    service: str | None = None,
    requested_by: str = "cli",
    action_id: str | None = None,
) -> list[int]:
    """Make failed jobs pending again, due now, with a fresh count of attempts; their ids.

    Handlers look up before they act (an ERP payment, a send), so a retry never repeats a
    side effect that an earlier attempt completed. With ``service`` each retried job is
    announced on ``job.retried`` in the caller's transaction; ``tenant_id`` limits the
    retry to that tenant's jobs.
    """
    rows = await conn.fetch(
        "UPDATE jobs SET state = 'pending', attempts = 0, due_at = now(), finished_at = NULL "
        "WHERE state = 'failed' AND ($1::bigint[] IS NULL OR id = ANY($1)) "
        "AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR tenant_id = $3) "
        "RETURNING id, kind, job_key, tenant_id, payload, now() AS retried_at",
        ids,
        kind,
        tenant_id,
    )
    retried = [int(r["id"]) for r in rows]
    await conn.execute("DELETE FROM job_starts WHERE job_id = ANY($1::bigint[])", retried)
    if service is not None:
        for r in rows:
            await _announce(
                conn,
                service,
                functools.partial(
                    JobRetried,
                    tenant_id=r["tenant_id"],
                    service=service,
                    job_id=r["id"],
                    kind=r["kind"],
                    job_key=r["job_key"][:500],
                    invoice_id=_invoice_of(json.loads(r["payload"])),
                    retried_at=r["retried_at"],
                    requested_by=requested_by[:200],
                    action_id=action_id,
                ),
            )
    return retried


async def job_state(conn: asyncpg.Connection, job_id: int, tenant_id: str) -> str | None:
    """A job's state (pending, running, done, failed) if the tenant has a job of that id."""
    state: str | None = await conn.fetchval(
        "SELECT state FROM jobs WHERE id = $1 AND tenant_id = $2", job_id, tenant_id
    )
    return state


@dataclass(frozen=True)
class Backlog:
    """The due pending jobs of one kind."""

    due: int
    oldest_due_seconds: float  # how long the oldest of them has been due; 0 when none


async def backlog(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, Backlog]:
    """Per kind, the jobs that are due (pending ones whose time has come, running ones whose
    lease ran out) and how long the oldest has waited (the partial index ``jobs_due`` answers
    it; timers not yet due are left out)."""
    rows = await conn.fetch(
        "SELECT kind, count(*) AS due, "
        "extract(epoch FROM now() - min(due_at))::float8 AS oldest FROM jobs "
        "WHERE state IN ('pending', 'running') AND due_at <= now() GROUP BY kind"
    )
    return {r["kind"]: Backlog(int(r["due"]), max(float(r["oldest"]), 0.0)) for r in rows}


def set_backlog_gauges(kinds: Iterable[str], counted: dict[str, Backlog]) -> set[str]:
    """Set ``nordflow_jobs_pending`` and ``nordflow_jobs_oldest_due_seconds`` for every kind
    in ``kinds`` (0 where none is due) and every kind counted; the kinds set."""
    reported = set(kinds) | set(counted)
    for kind in reported:
        found = counted.get(kind, Backlog(0, 0.0))
        JOBS_PENDING.labels(kind).set(found.due)
        JOBS_OLDEST_DUE.labels(kind).set(found.oldest_due_seconds)
    return reported
