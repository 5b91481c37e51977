"""One bad record never stops the others; a row Kafka refuses never stops the relay; a loop
that keeps failing turns readiness red (real Kafka broker and PostgreSQL server)."""

import asyncio
import base64
import contextlib
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer
from nordflow_runtime import db, outbox
from nordflow_runtime.consumer import Context, EventConsumer, UnavailableError
from nordflow_runtime.health import Health
from nordflow_runtime.kafka import create_consumer, create_producer
from nordflow_runtime.outbox import MAX_EVENT_BYTES, EventTooLargeError, OutboxRelay
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.envelope import Envelope, encode, envelope
from nordflow_schemas.events import PaymentReceived
from nordflow_schemas.topics import EVENT_DEAD_LETTERED, PAYMENT_RECEIVED
from prometheus_client import REGISTRY

pytestmark = pytest.mark.integration


def payment(tenant: str, n: int, payer: str = "Kund AB") -> PaymentReceived:
    return PaymentReceived(
        tenant_id=tenant,
        invoice_id=f"inv_{tenant}_{n}",
        source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c", document_id=str(n)),
        payment_id=f"pay-{n}",
        amount=Decimal("10.00"),
        currency="SEK",
        paid_on=dt.date(2026, 11, 23),
        payer=payer,
    )


@pytest.fixture
async def service(database_url):
    name = f"svc-{uuid.uuid4().hex[:8]}"
    schema = db.schema_name(name)
    pool = await db.create_pool(database_url, schema)
    await db.migrate(pool, schema, db.load_migrations("nordflow_runtime", "runtime"))
    await pool.execute("CREATE TABLE applied (event_id text, tenant_id text, payer jsonb)")
    yield name, pool
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


async def produce(bootstrap: str, *envs: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for env in envs:
            key, value, headers = encode(env)
            await producer.send_and_wait(
                PAYMENT_RECEIVED.name, value=value, key=key, headers=headers
            )
    finally:
        await producer.stop()


async def until(check, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def test_a_record_waiting_for_an_unavailable_dependency_is_never_dead_lettered(
    service, kafka_bootstrap
):
    """UnavailableError (what the handler needs is not there yet: a claim check's chunks) is
    not the record's fault: tried again without counting, past every batch and record
    attempt, and applied once it is there."""
    name, pool = service
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    env = envelope(payment(tenant, 1), source="/test")
    tries = 0

    async def handler(ctx: Context, got: Envelope[PaymentReceived]) -> None:
        nonlocal tries
        if got.tenant_id != tenant:
            return
        tries += 1
        if tries <= 10:  # more than CONSUMER_BATCH_ATTEMPTS + CONSUMER_RECORD_ATTEMPTS
            raise UnavailableError("chunks not there yet")
        await ctx.conn.execute("INSERT INTO applied VALUES ($1, $2, '{}')", got.id, tenant)

    await produce(kafka_bootstrap, env)
    consumer = create_consumer(kafka_bootstrap, name, [PAYMENT_RECEIVED.name])
    await consumer.start()
    ec = EventConsumer(
        service=name,
        pool=pool,
        consumer=consumer,
        handlers={PAYMENT_RECEIVED.name: handler},
        retry_initial=0.01,
        retry_max=0.02,
    )
    task = asyncio.create_task(ec.run())
    try:

        async def applied() -> bool:
            count = await pool.fetchval("SELECT count(*) FROM applied WHERE tenant_id = $1", tenant)
            return bool(count)

        await until(applied)
        assert tries == 11
        letters = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1 AND tenant_id = $2",
            EVENT_DEAD_LETTERED.name,
            tenant,
        )
        assert letters == 0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


async def test_a_record_that_keeps_failing_is_dead_lettered_and_the_rest_flows(
    service, kafka_bootstrap
):
    """A NUL in a payment's reference (PostgreSQL refuses it in jsonb) is an error that is not a
    PermanentError; it used to halt the consumer for every tenant. Now the batch is retried,
    then split, the record set aside with its reason, and every other record applied once."""
    name, pool = service
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    good = [envelope(payment(tenant, n), source="/test") for n in (1, 2, 4)]
    # A payer's name is cleaned by its type (a label); a reference is taken as it is.
    poison = envelope(
        payment(tenant, 3).model_copy(update={"reference": "Kund\u0000AB"}), source="/test"
    )

    async def handler(ctx: Context, env: Envelope[PaymentReceived]) -> None:
        if env.tenant_id != tenant:
            return
        await ctx.conn.execute(
            "INSERT INTO applied VALUES ($1, $2, $3::jsonb)",
            env.id,
            tenant,
            json.dumps({"payer": env.body.payer, "reference": env.body.reference}),
        )

    gave_up = {"reason": "gave_up"}
    letters_before = REGISTRY.get_sample_value("nordflow_dead_letters_total", gave_up) or 0.0
    await produce(kafka_bootstrap, good[0], good[1], poison, good[2])
    consumer = create_consumer(kafka_bootstrap, name, [PAYMENT_RECEIVED.name])
    await consumer.start()
    ec = EventConsumer(
        service=name,
        pool=pool,
        consumer=consumer,
        handlers={PAYMENT_RECEIVED.name: handler},
        retry_initial=0.05,
        retry_max=0.1,
    )
    task = asyncio.create_task(ec.run())
    try:

        async def settled() -> bool:
            # The records may sit in several partitions, fetched in more than one batch: wait
            # for the dead letter and for every good record (a double would show below).
            letters = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = $1 AND tenant_id = $2",
                EVENT_DEAD_LETTERED.name,
                tenant,
            )
            done = await pool.fetchval("SELECT count(*) FROM applied WHERE tenant_id = $1", tenant)
            return letters == 1 and done >= len(good)

        await until(settled)
        applied = await pool.fetch("SELECT event_id FROM applied WHERE tenant_id = $1", tenant)
        assert sorted(r["event_id"] for r in applied) == sorted(e.id for e in good)
        [headers] = await pool.fetch(
            "SELECT headers FROM outbox WHERE topic = $1 AND tenant_id = $2",
            EVENT_DEAD_LETTERED.name,
            tenant,
        )
        named = {k: base64.b64decode(v).decode() for k, v in json.loads(headers["headers"])}
        assert named["ce_id"] == poison.id
        assert named["x-nordflow-dlq-reason"].startswith("gave up after 3 attempts:")
        assert "UntranslatableCharacter" in named["x-nordflow-dlq-reason"]
        letters = REGISTRY.get_sample_value("nordflow_dead_letters_total", gave_up)
        assert letters is not None
        assert letters >= letters_before + 1
        # The poison left no inbox row: a replay after a fix is processed, not skipped.
        assert await pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", poison.id) == 0
        assert not ec.health.stuck
        # The offsets are committed past every record: a restart reads nothing again.
        ends = await consumer.end_offsets(list(consumer.assignment()))

        async def all_committed() -> bool:
            for tp, end in ends.items():
                if end and await consumer.committed(tp) != end:
                    return False
            return True

        await until(all_committed)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


async def test_nothing_is_dead_lettered_while_the_database_does_not_answer(
    service, kafka_bootstrap, monkeypatch
):
    """A failing record is not blamed while the database is away: the consumer waits (and is
    not ready), and applies the record once the database is back."""
    name, pool = service
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    env = envelope(payment(tenant, 1), source="/test")
    back = asyncio.Event()  # the database is "away" until the test brings it back

    async def handler(ctx: Context, e: Envelope[PaymentReceived]) -> None:
        if e.tenant_id != tenant:
            return
        if not back.is_set():
            raise ConnectionError("connection to the database was lost")
        await ctx.conn.execute("INSERT INTO applied VALUES ($1, $2, '{}'::jsonb)", e.id, tenant)

    async def database_answers(self: EventConsumer) -> bool:
        return back.is_set()

    monkeypatch.setattr(EventConsumer, "_database_answers", database_answers)
    await produce(kafka_bootstrap, env)
    consumer = create_consumer(kafka_bootstrap, name, [PAYMENT_RECEIVED.name])
    await consumer.start()
    ec = EventConsumer(
        service=name,
        pool=pool,
        consumer=consumer,
        handlers={PAYMENT_RECEIVED.name: handler},
        retry_initial=0.02,
        retry_max=0.05,
        stuck_after=3,
    )
    task = asyncio.create_task(ec.run())
    try:

        async def stuck() -> bool:
            return ec.health.stuck

        await until(stuck)
        with pytest.raises(RuntimeError, match="consumer stuck"):
            ec.health.check()
        await asyncio.sleep(0.5)  # many tries meanwhile, none of them counted against it
        letters = (
            "SELECT count(*) FROM outbox WHERE topic = 'event.dead_lettered' AND tenant_id = $1"
        )
        assert await pool.fetchval(letters, tenant) == 0
        back.set()

        async def applied() -> bool:
            return (
                await pool.fetchval("SELECT count(*) FROM applied WHERE tenant_id=$1", tenant) == 1
            )

        await until(applied)
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE tenant_id=$1", tenant) == 0
        assert not ec.health.stuck
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


async def test_an_event_over_the_budget_is_refused_where_it_is_made(service) -> None:
    _, pool = service
    # A payer is cut to 200 characters (a label); a reference is not.
    big = payment("t-big", 1).model_copy(update={"reference": "x" * (MAX_EVENT_BYTES + 1)})
    async with pool.acquire() as conn:
        with pytest.raises(EventTooLargeError, match=r"payment.received event of \d+ bytes"):
            await outbox.add(conn, envelope(big, source="/test"))
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_row_kafka_refuses_is_set_aside_and_the_rest_is_published(service, kafka_bootstrap):
    """A row over the broker's limit (written before the budget existed) no longer halts the
    relay for every tenant: it is set aside with Kafka's reason, listed, and can be retried."""
    name, pool = service
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    before = envelope(payment(tenant, 1), source="/test")
    after = envelope(payment(tenant, 2), source="/test")
    async with pool.acquire() as conn:
        await outbox.add(conn, before)
        key, value, _ = encode(envelope(payment(tenant, 9), source="/test"))
        await conn.execute(
            "INSERT INTO outbox (event_id, topic, tenant_id, key, value, headers) "
            "VALUES ('huge', $1, $2, $3, $4, '[]'::jsonb)",
            PAYMENT_RECEIVED.name,
            tenant,
            key,
            value + b" " * (2 * 1024 * 1024),
        )
        await outbox.add(conn, after)
    producer = create_producer(kafka_bootstrap, "relay-test")
    await producer.start()
    try:
        relay = OutboxRelay(pool, producer, db.schema_name(name))
        assert await relay.publish_batch() == 3
        rows = await pool.fetch(
            "SELECT event_id, sent_at IS NOT NULL AS sent, last_error FROM outbox ORDER BY seq"
        )
        assert [(r["event_id"], r["sent"]) for r in rows] == [
            (before.id, True),
            ("huge", False),
            (after.id, True),
        ]
        assert "MessageSizeTooLarge" in rows[1]["last_error"]
        async with pool.acquire() as conn:
            [listed] = await outbox.set_aside(conn)
            assert listed["event_id"] == "huge"
            assert listed["bytes"] > 2 * 1024 * 1024
            assert await relay.publish_batch() == 0  # set aside: not tried again by itself
            assert await outbox.retry_set_aside(conn, None) == [listed["seq"]]
        assert await relay.publish_batch() == 1  # tried again (and refused again)
        assert not relay.health.stuck
    finally:
        await producer.stop()


async def test_the_relay_counts_its_gauges_without_reading_the_published_rows(service) -> None:
    """After every batch the relay sets nordflow_outbox_pending and …_set_aside. A day of
    published rows stays in the table (outbox_retention_hours); the counts read only the
    unsent ones, through their partial indexes, and are right."""
    _, pool = service
    await pool.execute(
        "INSERT INTO outbox (event_id, topic, tenant_id, key, value, headers, sent_at, "
        "failed_at) SELECT 'e' || n, 'payment.received', 't', 'k', 'v', '[]'::jsonb, "
        "CASE WHEN n > 7 THEN now() END, CASE WHEN n <= 2 THEN now() END "
        "FROM generate_series(1, 20000) AS n"
    )
    await pool.execute("ANALYZE outbox")

    plan = await pool.fetchval(f"EXPLAIN (FORMAT JSON) {outbox.GAUGES_SQL}")
    scans = _scans(json.loads(plan)[0]["Plan"])
    assert {index for _, index in scans} == {"outbox_unsent", "outbox_set_aside"}, scans
    assert await pool.fetchrow(outbox.GAUGES_SQL) == (5, 2)


def _scans(node: dict) -> list[tuple[str, str | None]]:
    """Each scan of the plan: its kind and its index."""
    own = [(node["Node Type"], node.get("Index Name"))] if "Scan" in node["Node Type"] else []
    return own + [scan for child in node.get("Plans", []) for scan in _scans(child)]


def test_readiness_turns_red_only_after_failures_in_a_row() -> None:
    health = Health("relay", stuck_after=2)
    health.failed(ConnectionError("broker away"))
    health.check()
    health.failed(ConnectionError("broker away"))
    with pytest.raises(RuntimeError, match="relay stuck: 2 failures in a row"):
        health.check()
    health.recovered()
    health.check()
