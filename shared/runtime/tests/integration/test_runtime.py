"""The runtime against the real Kafka broker and PostgreSQL server: inbox, outbox, DLQ, jobs."""

import asyncio
import base64
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer
from nordflow_runtime import db, dlq, jobs
from nordflow_runtime.consumer import Context, EventConsumer, PermanentError
from nordflow_runtime.kafka import create_consumer, create_producer
from nordflow_runtime.outbox import OutboxRelay
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.envelope import Envelope, encode, envelope
from nordflow_schemas.events import EntryKind, LedgerEntryPosted, PaymentReceived
from nordflow_schemas.topics import LEDGER_ENTRY_POSTED, PAYMENT_RECEIVED
from prometheus_client import REGISTRY

pytestmark = pytest.mark.integration


def payment(tenant: str, n: int = 1) -> PaymentReceived:
    return PaymentReceived(
        tenant_id=tenant,
        invoice_id=f"inv_{tenant}_{n}",
        source=SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id="c",
            document_id=str(n),
            document_number=str(n),
        ),
        payment_id=f"pay-{n}",
        amount=Decimal("100.50"),
        currency="SEK",
        paid_on=dt.date(2026, 11, 23),
        payer="Kund AB",
    )


@pytest.fixture
async def service(fresh_database_url):
    """A throwaway service schema with the runtime's tables."""
    name = f"svc-{uuid.uuid4().hex[:8]}"
    schema = db.schema_name(name)
    pool = await db.create_pool(fresh_database_url, schema)
    await db.migrate(pool, schema, db.load_migrations("nordflow_runtime", "runtime"))
    await pool.execute("CREATE TABLE applied (event_id text, tenant_id text, invoice_id text)")
    yield name, pool
    await pool.close()


def dead_letters(reason: str) -> float:
    return REGISTRY.get_sample_value("nordflow_dead_letters_total", {"reason": reason}) or 0.0


async def produce(bootstrap: str, *records: tuple[str, bytes | None, bytes | None, list]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def until(check, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def run_consumer(name, pool, bootstrap, handler, topic=PAYMENT_RECEIVED.name):
    consumer = create_consumer(bootstrap, name, [topic])
    await consumer.start()
    ec = EventConsumer(
        service=name,
        pool=pool,
        consumer=consumer,
        handlers={topic: handler},
        retry_initial=0.05,
        retry_max=0.2,
    )
    return consumer, asyncio.create_task(ec.run())


async def stop(consumer, task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await consumer.stop()


def recorder(tenant: str):
    async def handler(ctx: Context, env: Envelope[PaymentReceived]) -> None:
        if env.tenant_id != tenant:
            return
        await ctx.conn.execute(
            "INSERT INTO applied VALUES ($1, $2, $3)", env.id, env.tenant_id, env.key
        )
        await ctx.emit(
            LedgerEntryPosted(
                tenant_id=env.tenant_id,
                invoice_id=env.key,
                source=env.body.source,
                entry_kind=EntryKind.INVOICE_PAYMENT,
                erp_reference="p1",
                amount=env.body.amount,
                currency=env.body.currency,
                account="1930",
                posted_at=dt.datetime.now(dt.UTC),
            )
        )

    return handler


async def test_a_record_delivered_twice_is_applied_and_emitted_once(service, kafka_bootstrap):
    name, pool = service
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    key, value, headers = encode(envelope(payment(tenant), source="/test"))
    await produce(kafka_bootstrap, *[(PAYMENT_RECEIVED.name, key, value, headers)] * 2)
    consumer, task = await run_consumer(name, pool, kafka_bootstrap, recorder(tenant))
    try:

        async def both_seen():
            return await pool.fetchval(
                "SELECT count(*) FROM inbox WHERE tenant_id = $1", tenant
            ) == 1 and (
                await pool.fetchval("SELECT count(*) FROM applied WHERE tenant_id = $1", tenant)
                == 1
            )

        await until(both_seen)
        await asyncio.sleep(1.0)  # give the second copy every chance to be applied
        assert await pool.fetchval("SELECT count(*) FROM applied WHERE tenant_id=$1", tenant) == 1
        rows = await pool.fetch("SELECT topic FROM outbox WHERE tenant_id = $1", tenant)
        assert [r["topic"] for r in rows] == [LEDGER_ENTRY_POSTED.name]
    finally:
        await stop(consumer, task)
    producer = create_producer(kafka_bootstrap, "relay-test")
    await producer.start()
    try:
        relay = OutboxRelay(pool, producer, db.schema_name(name))
        assert await relay.publish_batch() >= 1
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        assert await relay.publish_batch() == 0
    finally:
        await producer.stop()


async def test_poison_goes_to_the_dead_letter_topic_and_replays_after_a_fix(
    service, kafka_bootstrap
):
    name, pool = service
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    good = envelope(payment(tenant, 1), source="/test")
    refused = envelope(payment(tenant, 2), source="/test")
    _, bad_value, bad_headers = encode(envelope(payment(tenant, 3), source="/test"))
    broken = bad_value.replace(b'"100.50"', b'"lots"')
    fixed = asyncio.Event()

    async def handler(ctx: Context, env: Envelope[PaymentReceived]) -> None:
        if env.tenant_id != tenant:
            return
        if env.body.payment_id == "pay-2" and not fixed.is_set():
            raise PermanentError("payment 2 cannot be booked")
        await ctx.conn.execute("INSERT INTO applied VALUES ($1, $2, $3)", env.id, tenant, env.key)

    records = [
        (PAYMENT_RECEIVED.name, *encode(good)),
        (PAYMENT_RECEIVED.name, *encode(refused)),
        (PAYMENT_RECEIVED.name, b"k", broken, bad_headers),
        (PAYMENT_RECEIVED.name, b"k", b"\xff not json", [("ce_tenantid", tenant.encode())]),
    ]
    letters_before = {reason: dead_letters(reason) for reason in ("decode", "refused")}
    await produce(kafka_bootstrap, *records)
    consumer, task = await run_consumer(name, pool, kafka_bootstrap, handler)
    producer = create_producer(kafka_bootstrap, "relay-test")
    await producer.start()
    try:

        async def dead_lettered():
            return (
                await pool.fetchval(
                    "SELECT count(*) FROM outbox WHERE topic = 'event.dead_lettered' "
                    "AND tenant_id = $1",
                    tenant,
                )
                == 3
            )

        await until(dead_lettered)
        applied = await pool.fetch("SELECT event_id FROM applied WHERE tenant_id=$1", tenant)
        assert [r["event_id"] for r in applied] == [good.id]
        # Counted by reason class (a fresh group also re-reads earlier tests' poison records).
        assert dead_letters("decode") >= letters_before["decode"] + 2
        assert dead_letters("refused") >= letters_before["refused"] + 1
        await OutboxRelay(pool, producer, db.schema_name(name)).publish_batch()
        letters = [
            lt for lt in await dlq.read(kafka_bootstrap, consumer=name) if lt.tenant_id == tenant
        ]
        reasons = sorted(lt.reason for lt in letters)
        assert len(letters) == 3
        assert any("payment 2 cannot be booked" in r for r in reasons)
        assert any("amount" in r for r in reasons)  # the field is named
        assert any("missing CloudEvents headers" in r for r in reasons)
        assert {lt.origin_topic for lt in letters} == {PAYMENT_RECEIVED.name}
        # The original bytes survive, headers included.
        assert any(lt.value == b"\xff not json" for lt in letters)

        fixed.set()
        await dlq.replay(kafka_bootstrap, [lt for lt in letters if lt.event_id == refused.id])

        async def replayed():
            return (
                await pool.fetchval("SELECT count(*) FROM applied WHERE event_id = $1", refused.id)
                == 1
            )

        await until(replayed)
    finally:
        await producer.stop()
        await stop(consumer, task)


async def test_a_transient_failure_rolls_back_the_batch_and_retries(service, kafka_bootstrap):
    name, pool = service
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    env = envelope(payment(tenant), source="/test")
    failures = []

    async def flaky(ctx: Context, e: Envelope[PaymentReceived]) -> None:
        if e.tenant_id != tenant:
            return
        await ctx.conn.execute("INSERT INTO applied VALUES ($1, $2, $3)", e.id, tenant, e.key)
        if len(failures) < 2:
            failures.append(1)
            raise ConnectionError("database hiccup")

    await produce(kafka_bootstrap, (PAYMENT_RECEIVED.name, *encode(env)))
    consumer, task = await run_consumer(name, pool, kafka_bootstrap, flaky)
    try:

        async def applied_once():
            return (
                await pool.fetchval("SELECT count(*) FROM applied WHERE tenant_id = $1", tenant)
                == 1
            )

        await until(applied_once)
        assert len(failures) == 2
        await asyncio.sleep(0.5)
        assert await pool.fetchval("SELECT count(*) FROM applied WHERE tenant_id=$1", tenant) == 1
    finally:
        await stop(consumer, task)


async def test_jobs_run_once_each_across_workers_retry_and_fail_visibly(service):
    name, pool = service
    now = dt.datetime.now(dt.UTC)
    async with pool.acquire() as conn:
        for i in range(20):
            assert await jobs.schedule(
                conn, kind="work", key=f"k{i}", tenant_id="t", payload={"i": i}, due_at=now
            )
        assert not await jobs.schedule(
            conn, kind="work", key="k0", tenant_id="t", payload={"i": 0}, due_at=now
        )
        await jobs.schedule(conn, kind="flaky", key="f", tenant_id="t", payload={}, due_at=now)
        await jobs.schedule(conn, kind="doomed", key="d", tenant_id="t", payload={}, due_at=now)
    runs: list[int] = []

    async def work(ctx: Context, job: jobs.Job) -> dict:
        runs.append(job.payload["i"])
        await asyncio.sleep(0.01)
        return {"ok": job.payload["i"]}

    attempts: list[int] = []

    async def flaky(ctx: Context, job: jobs.Job) -> dict:
        attempts.append(job.attempts)
        if job.attempts < 3:
            raise TimeoutError("partner slow")
        return {}

    async def doomed(ctx: Context, job: jobs.Job) -> dict:
        raise PermanentError("refused for good")

    workers = [jobs.JobWorker(pool, name, "work", work, idle_seconds=0.05) for _ in range(2)]
    workers.append(
        jobs.JobWorker(
            pool, name, "flaky", flaky, idle_seconds=0.05, retry_initial=0.05, retry_max=0.1
        )
    )
    workers.append(jobs.JobWorker(pool, name, "doomed", doomed, idle_seconds=0.05))
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:

        async def all_finished():
            return (
                await pool.fetchval("SELECT count(*) FROM jobs WHERE state IN ('done', 'failed')")
                == 22
            )

        await until(all_finished)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(runs) == list(range(20))
    assert attempts == [1, 2, 3]
    failed = await pool.fetchrow("SELECT state, last_error FROM jobs WHERE kind = 'doomed'")
    assert failed["state"] == "failed"
    assert "refused for good" in failed["last_error"]
    # An operator retries it: pending again, due now, with a fresh count of attempts.
    async with pool.acquire() as conn:
        assert await jobs.retry_failed(conn, kind="work") == []  # none of those failed
        (retried,) = await jobs.retry_failed(conn, kind="doomed")
        listed = await jobs.list_jobs(conn, state="pending", kind="doomed", limit=10)
    assert [(r["id"], r["attempts"]) for r in listed] == [(retried, 0)]


class ProcessDied(BaseException):
    """Stands in for a handler that kills its process: nothing after it runs."""


async def test_a_job_that_keeps_killing_its_process_is_stopped(service):
    name, pool = service
    async with pool.acquire() as conn:
        await jobs.schedule(
            conn,
            kind="deadly",
            key="x",
            tenant_id="t",
            payload={},
            due_at=dt.datetime.now(dt.UTC),
        )
    runs = 0

    async def deadly(ctx: Context, job: jobs.Job) -> dict:
        nonlocal runs
        runs += 1
        raise ProcessDied

    worker = jobs.JobWorker(pool, name, "deadly", deadly, max_crashes=3)
    for _ in range(3):
        with pytest.raises(ProcessDied):
            await worker.run_one()
    row = await pool.fetchrow("SELECT state, attempts FROM jobs WHERE kind = 'deadly'")
    assert (row["state"], row["attempts"]) == ("pending", 0)  # each death rolled back
    assert await worker.run_one()  # the fourth claim sees three deaths and stops it
    assert runs == 3
    row = await pool.fetchrow("SELECT state, last_error FROM jobs WHERE kind = 'deadly'")
    assert row["state"] == "failed"
    assert "stopped 3 times" in row["last_error"]
    assert await pool.fetchval("SELECT count(*) FROM job_starts") == 0


async def test_an_edited_migration_is_refused(fresh_database_url):
    pool = await db.create_pool(fresh_database_url, "mig_test")
    try:
        m = db.Migration("x", 1, "create", "CREATE TABLE t (id int)")
        assert await db.migrate(pool, "mig_test", [m]) == ["x/001_create"]
        assert await db.migrate(pool, "mig_test", [m]) == []
        edited = db.Migration("x", 1, "create", "CREATE TABLE t (id bigint)")
        with pytest.raises(RuntimeError, match="changed after it was applied"):
            await db.migrate(pool, "mig_test", [edited])
    finally:
        await pool.close()


def test_secrets_are_sealed_and_never_print():
    from cryptography.fernet import Fernet
    from nordflow_runtime.crypto import SecretBox
    from pydantic import SecretStr

    box = SecretBox(SecretStr(Fernet.generate_key().decode()))
    sealed = box.seal("tok-very-secret")
    assert b"tok-very-secret" not in sealed
    opened = box.open(sealed)
    assert opened.get_secret_value() == "tok-very-secret"
    assert "tok-very-secret" not in repr(opened)
    assert "tok-very-secret" not in str(opened)
    with pytest.raises(ValueError, match="ENCRYPTION_KEY"):
        SecretBox(SecretStr("not-a-key"))


async def test_unsent_rows_of_the_old_header_format_are_converted(fresh_database_url):
    pool = await db.create_pool(fresh_database_url, "upgrade_test")
    try:
        runtime = db.load_migrations("nordflow_runtime", "runtime")
        await db.migrate(pool, "upgrade_test", [m for m in runtime if m.version < 3])
        await pool.execute(
            "INSERT INTO outbox (event_id, topic, tenant_id, key, value, headers) "
            "VALUES ('e1', 't', 'x', 'k', 'v', '[[\"ce_id\", \"e1\"], [\"ce_source\", \"/å\"]]')"
        )
        await db.migrate(pool, "upgrade_test", runtime)
        headers = json.loads(await pool.fetchval("SELECT headers FROM outbox"))
        assert [(k, base64.b64decode(v)) for k, v in headers] == [
            ("ce_id", b"e1"),
            ("ce_source", "/å".encode()),
        ]
    finally:
        await pool.close()


async def test_a_graceful_stop_in_the_middle_of_a_job_is_not_counted_as_a_crash(service):
    name, pool = service
    async with pool.acquire() as conn:
        await jobs.schedule(
            conn, kind="slow", key="s", tenant_id="t", payload={}, due_at=dt.datetime.now(dt.UTC)
        )
    started = asyncio.Event()

    async def slow(ctx: Context, job: jobs.Job) -> dict:
        started.set()
        await asyncio.sleep(30)
        return {}

    worker = jobs.JobWorker(pool, name, "slow", slow, max_crashes=1)
    for _ in range(2):  # two rolling deploys while the job runs
        started.clear()
        task = asyncio.create_task(worker.run_one())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await pool.fetchval("SELECT starts FROM job_starts") == 0
    row = await pool.fetchrow("SELECT state, attempts FROM jobs WHERE kind = 'slow'")
    assert (row["state"], row["attempts"]) == ("pending", 0)
