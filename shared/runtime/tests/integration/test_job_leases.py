"""Jobs run under a lease, on the real PostgreSQL: no transaction and no row lock while the
handler works; the lease renewed while it runs, claimed again once it runs out, given back
on a graceful stop; a run whose lease passed to another writes nothing."""

import asyncio
import datetime as dt
import uuid

import asyncpg
import pytest
from nordflow_runtime import db, jobs
from nordflow_runtime.consumer import PermanentError
from nordflow_runtime.metrics import JOBS
from nordflow_schemas.events import JobFailed
from nordflow_schemas.topics import JOB_FAILED

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(fresh_database_url):
    """A throwaway service schema with the runtime's tables and one table of its own."""
    name = f"svc-{uuid.uuid4().hex[:8]}"
    schema = db.schema_name(name)
    pool = await db.create_pool(fresh_database_url, schema)
    await db.migrate(pool, schema, db.load_migrations("nordflow_runtime", "runtime"))
    await pool.execute("CREATE TABLE written (job_key text, what text)")
    yield name, pool
    await pool.close()


async def due(pool: asyncpg.Pool, kind: str, key: str = "k", tenant: str = "t") -> None:
    async with pool.acquire() as conn:
        await jobs.schedule(
            conn,
            kind=kind,
            key=key,
            tenant_id=tenant,
            payload={"invoice_id": f"inv_{key}"},
            due_at=dt.datetime.now(dt.UTC),
        )


async def job_row(pool: asyncpg.Pool, kind: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT state, lease, attempts, due_at > now() AS leased_ahead, result, last_error "
        "FROM jobs WHERE kind = $1",
        kind,
    )
    assert row is not None
    return row


def worker(name: str, pool: asyncpg.Pool, kind: str, handler, **options) -> jobs.JobWorker:
    return jobs.JobWorker(pool, name, kind, handler, lease_seconds=30.0, **options)


class ProcessDied(BaseException):
    """Stands in for a handler that kills its process: nothing after it runs."""


async def test_no_lock_is_held_while_the_handler_works_and_its_writes_commit(service):
    name, pool = service
    await due(pool, "send")
    working, go_on = asyncio.Event(), asyncio.Event()

    async def send(run: jobs.JobRun, job: jobs.Job) -> dict:
        working.set()
        await go_on.wait()  # the partner call
        async with run.transaction() as ctx:
            await ctx.conn.execute("INSERT INTO written VALUES ($1, 'sent')", job.key)
        return {"status": "sent"}

    task = asyncio.create_task(worker(name, pool, "send", send).run_one())
    await working.wait()
    row = await job_row(pool, "send")
    assert (row["state"], row["leased_ahead"]) == ("running", True)
    assert row["lease"] is not None
    # Nothing of the run is open in the database: no transaction, so no lock to wait for.
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%'"
        )
        == 0
    )
    async with pool.acquire() as conn, conn.transaction():
        assert await conn.fetchval("SELECT id FROM jobs WHERE kind = 'send' FOR UPDATE NOWAIT")
    # Another process does not take a job whose lease is running.
    assert not await worker(name, pool, "send", send).run_one()
    go_on.set()
    assert await task
    row = await job_row(pool, "send")
    assert (row["state"], row["lease"], row["attempts"]) == ("done", None, 1)
    assert await pool.fetchval("SELECT count(*) FROM written WHERE what = 'sent'") == 1
    assert await pool.fetchval("SELECT count(*) FROM job_starts") == 0


async def test_the_lease_is_renewed_while_the_handler_works(service):
    name, pool = service
    await due(pool, "long")
    runs = 0
    started = asyncio.Event()

    async def long(run: jobs.JobRun, job: jobs.Job) -> dict:
        nonlocal runs
        runs += 1
        started.set()
        await asyncio.sleep(1.5)  # five times the lease
        return {}

    first = jobs.JobWorker(pool, name, "long", long, lease_seconds=0.3)
    task = asyncio.create_task(first.run_one())
    await started.wait()
    other = jobs.JobWorker(pool, name, "long", long, lease_seconds=0.3)
    while not task.done():
        assert not await other.run_one()
        await asyncio.sleep(0.05)
    assert await task
    assert runs == 1
    assert (await job_row(pool, "long"))["state"] == "done"


async def test_a_run_that_died_is_claimed_again_once_its_lease_ran_out(service):
    name, pool = service
    await due(pool, "deadly")
    runs = 0

    async def deadly(run: jobs.JobRun, job: jobs.Job) -> dict:
        nonlocal runs
        runs += 1
        raise ProcessDied

    leased = jobs.JobWorker(pool, name, "deadly", deadly, lease_seconds=0.2, max_crashes=2)
    with pytest.raises(ProcessDied):
        await leased.run_one()
    assert (await job_row(pool, "deadly"))["state"] == "running"
    assert not await leased.run_one()  # its lease still runs
    await asyncio.sleep(0.3)
    with pytest.raises(ProcessDied):
        await leased.run_one()  # claimed again: the lease ran out
    await asyncio.sleep(0.3)
    assert await leased.run_one()  # the third claim sees two deaths and stops it
    assert runs == 2
    row = await job_row(pool, "deadly")
    assert (row["state"], row["lease"]) == ("failed", None)
    assert "stopped 2 times" in row["last_error"]


async def test_a_run_whose_lease_passed_to_another_writes_nothing(service):
    name, pool = service
    await due(pool, "send")
    working, go_on = asyncio.Event(), asyncio.Event()

    async def send(run: jobs.JobRun, job: jobs.Job) -> dict:
        working.set()
        await go_on.wait()
        async with run.transaction() as ctx:
            await ctx.conn.execute("INSERT INTO written VALUES ($1, 'sent')", job.key)
        return {}

    lost_before = JOBS.labels("send", "lease_lost")._value.get()
    task = asyncio.create_task(worker(name, pool, "send", send).run_one())
    await working.wait()
    # The run stalled past its lease, and another run claimed the job.
    thief = uuid.uuid4()
    await pool.execute("UPDATE jobs SET lease = $1 WHERE kind = 'send'", thief)
    go_on.set()
    assert await task
    assert await pool.fetchval("SELECT count(*) FROM written") == 0
    row = await job_row(pool, "send")
    assert (row["state"], row["lease"], row["attempts"]) == ("running", thief, 0)
    assert JOBS.labels("send", "lease_lost")._value.get() == lost_before + 1


async def test_an_outcome_is_not_recorded_once_the_lease_passed_to_another(service):
    name, pool = service
    await due(pool, "quick")
    thief = uuid.uuid4()

    async def quick(run: jobs.JobRun, job: jobs.Job) -> dict:
        await pool.execute("UPDATE jobs SET lease = $1 WHERE id = $2", thief, job.id)
        return {"status": "sent"}

    assert await worker(name, pool, "quick", quick).run_one()
    row = await job_row(pool, "quick")
    assert (row["state"], row["lease"], row["result"]) == ("running", thief, None)


async def test_a_graceful_stop_gives_the_lease_back(service):
    name, pool = service
    await due(pool, "slow")
    started = asyncio.Event()

    async def slow(run: jobs.JobRun, job: jobs.Job) -> dict:
        started.set()
        await asyncio.sleep(30)
        return {}

    task = asyncio.create_task(worker(name, pool, "slow", slow, max_crashes=1).run_one())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await job_row(pool, "slow")
    assert (row["state"], row["lease"], row["attempts"], row["leased_ahead"]) == (
        "pending",
        None,
        0,
        False,
    )
    assert await pool.fetchval("SELECT starts FROM job_starts") == 0


async def test_leased_jobs_are_retried_and_fail_visibly(service):
    name, pool = service
    await due(pool, "flaky", key="f")
    await due(pool, "doomed", key="d")
    attempts: list[int] = []

    async def flaky(run: jobs.JobRun, job: jobs.Job) -> dict:
        attempts.append(job.attempts)
        if job.attempts < 3:
            raise TimeoutError("partner slow")
        return {"ok": True}

    async def doomed(run: jobs.JobRun, job: jobs.Job) -> dict:
        raise PermanentError("refused for good")

    retrying = worker(name, pool, "flaky", flaky, retry_initial=0.01, retry_max=0.02)
    assert await retrying.run_one()
    row = await job_row(pool, "flaky")
    assert (row["state"], row["lease"], row["attempts"]) == ("pending", None, 1)
    assert "partner slow" in row["last_error"]
    for _ in range(2):
        await asyncio.sleep(0.05)
        assert await retrying.run_one()
    assert attempts == [1, 2, 3]
    assert (await job_row(pool, "flaky"))["state"] == "done"

    assert await worker(name, pool, "doomed", doomed).run_one()
    row = await job_row(pool, "doomed")
    assert (row["state"], row["lease"]) == ("failed", None)
    topic, body = await pool.fetchrow("SELECT topic, value FROM outbox")
    assert topic == JOB_FAILED.name
    failed = JobFailed.model_validate_json(body)
    assert (failed.job_key, failed.invoice_id) == ("d", "inv_d")
    async with pool.acquire() as conn:
        retried = await jobs.retry_failed(conn, kind="doomed")
    assert retried == [await pool.fetchval("SELECT id FROM jobs WHERE kind = 'doomed'")]
    row = await job_row(pool, "doomed")
    assert (row["state"], row["attempts"]) == ("pending", 0)


async def test_a_running_job_whose_lease_ran_out_is_counted_as_due(service):
    _, pool = service
    await due(pool, "send")
    await pool.execute(
        "UPDATE jobs SET state = 'running', lease = $1, due_at = now() - interval '5 s'",
        uuid.uuid4(),
    )
    counted = await jobs.backlog(pool)
    assert counted["send"].due == 1
    assert counted["send"].oldest_due_seconds >= 5


async def test_a_tenant_never_runs_more_than_per_tenant_jobs_at_once(service):
    """Six loops start together on one tenant's jobs: two run, the others wait for them (each
    loop's claim reads the running tenants only after the claims before it took their
    slots)."""
    name, pool = service
    for i in range(8):
        await due(pool, "send", key=f"k{i}", tenant="t-busy")
    await due(pool, "send", key="other", tenant="t-other")
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    done: list[str] = []

    async def send(run: jobs.JobRun, job: jobs.Job) -> dict:
        running[job.tenant_id] = running.get(job.tenant_id, 0) + 1
        most[job.tenant_id] = max(most.get(job.tenant_id, 0), running[job.tenant_id])
        try:
            await asyncio.sleep(0.05)  # the partner call
        finally:
            running[job.tenant_id] -= 1
        done.append(job.key)
        return {"status": "sent"}

    task = asyncio.create_task(worker(name, pool, "send", send, concurrency=6, per_tenant=2).run())
    try:
        for _ in range(200):
            if len(done) == 9:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sorted(done) == sorted([f"k{i}" for i in range(8)] + ["other"])
    assert most == {"t-busy": 2, "t-other": 1}
