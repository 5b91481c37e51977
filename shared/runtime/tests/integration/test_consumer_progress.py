"""The consumer's own view of its progress on the real broker (lag per partition, the last
commit, readiness red while it gets nothing although records wait, every assigned partition's
start committed), the relay's failures and backlog, the job backlog (real Kafka broker and
PostgreSQL)."""

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError
from nordflow_local.kafka import ensure_topics_async
from nordflow_runtime import db, jobs, outbox
from nordflow_runtime.consumer import Context, EventConsumer, RawSubscription
from nordflow_runtime.kafka import create_consumer
from nordflow_runtime.outbox import OutboxRelay
from nordflow_schemas.envelope import envelope
from nordflow_schemas.testing import new_tenant, tenant_profile, tenant_updated
from prometheus_client import REGISTRY

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(database_url):
    name = f"svc-{uuid.uuid4().hex[:8]}"
    schema = db.schema_name(name)
    pool = await db.create_pool(database_url, schema)
    await db.migrate(pool, schema, db.load_migrations("nordflow_runtime", "runtime"))
    await pool.execute("CREATE TABLE applied (topic text, part int, off bigint)")
    yield name, pool
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


async def new_topic(bootstrap: str, partitions: int) -> str:
    topic = f"test.watched-{uuid.uuid4().hex[:8]}"
    await ensure_topics_async(bootstrap, [(topic, partitions)])
    return topic


async def produce(bootstrap: str, topic: str, partition: int, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for i in range(n):
            key = str(i).encode()
            await producer.send_and_wait(topic, value=b"x", key=key, partition=partition)
    finally:
        await producer.stop()


async def until(check, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def raw(topic: str) -> dict[str, RawSubscription]:
    """Records of a test topic taken as they are (they are not CloudEvents)."""

    async def apply(ctx: Context[Any], record: ConsumerRecord[Any, Any]) -> None:
        await ctx.conn.execute(
            "INSERT INTO applied VALUES ($1, $2, $3)", record.topic, record.partition, record.offset
        )

    return {
        topic: RawSubscription(
            apply, lambda r: f"{r.topic}:{r.partition}:{r.offset}", lambda r: "t-test"
        )
    }


class Swallowing:
    """The real consumer, except that while ``swallow`` is set each poll returns nothing and
    puts the position back before the records it fetched: the consumer knows records wait
    (its high watermark is past its position) and gets none — as in finding 1, without
    needing a cluster that loses a leader."""

    def __init__(self, real: AIOKafkaConsumer) -> None:
        self.real = real
        self.swallow = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def getmany(self, *args: Any, **kwargs: Any) -> dict[TopicPartition, list[Any]]:
        batch = await self.real.getmany(*args, **kwargs)
        if not self.swallow:
            return batch
        for tp, records in batch.items():
            self.real.seek(tp, records[0].offset)
        return {}


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_lag_per_partition_and_the_time_of_the_last_commit(service, kafka_bootstrap):
    name, pool = service
    started = dt.datetime.now(dt.UTC).timestamp()
    topic = await new_topic(kafka_bootstrap, 2)
    await produce(kafka_bootstrap, topic, 0, 3)
    consumer = create_consumer(kafka_bootstrap, name, [topic])
    await consumer.start()
    ec = EventConsumer(
        service=name, pool=pool, consumer=consumer, handlers={}, raw_handlers=raw(topic)
    )
    task = asyncio.create_task(ec.run())
    try:

        async def caught_up() -> bool:
            applied = await pool.fetchval("SELECT count(*) FROM applied")
            return applied == 3 and sample("nordflow_consumer_lag", topic=topic, partition="0") == 0

        await until(caught_up)

        async def committed() -> bool:
            return (sample("nordflow_consumer_last_commit_timestamp_seconds") or 0) >= started

        await until(committed)
        assert await consumer.committed(TopicPartition(topic, 0)) == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


async def test_readiness_turns_red_while_nothing_comes_although_records_wait_then_green(
    service, kafka_bootstrap
):
    name, pool = service
    topic = await new_topic(kafka_bootstrap, 1)
    await produce(kafka_bootstrap, topic, 0, 3)
    real = create_consumer(kafka_bootstrap, name, [topic])
    await real.start()
    consumer = Swallowing(real)
    ec = EventConsumer(
        service=name,
        pool=pool,
        consumer=consumer,  # type: ignore[arg-type]
        handlers={},
        raw_handlers=raw(topic),
        poll_ms=100,
        stall_seconds=1.5,
    )
    task = asyncio.create_task(ec.run())
    try:

        async def stalled() -> bool:
            return ec.health.stuck

        await until(stalled)
        with pytest.raises(RuntimeError, match="consumer stalled"):
            ec.health.check()
        assert sample("nordflow_stuck", loop="consumer") == 1
        assert sample("nordflow_consumer_lag", topic=topic, partition="0") == 3
        assert await pool.fetchval("SELECT count(*) FROM applied") == 0

        consumer.swallow = False

        async def applied() -> bool:
            return await pool.fetchval("SELECT count(*) FROM applied") == 3

        await until(applied)

        async def caught_up() -> bool:
            return sample("nordflow_consumer_lag", topic=topic, partition="0") == 0

        await until(caught_up)
        ec.health.check()
        assert sample("nordflow_stuck", loop="consumer") == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await real.stop()
    # Unassigned, the partition has no series any more.
    assert sample("nordflow_consumer_lag", topic=topic, partition="0") in (0, None)


async def test_every_assigned_partition_gets_a_committed_start_even_without_records(
    service, kafka_bootstrap
):
    """Finding 1: a partition the group never committed needs a ListOffsets after each
    rebalance, and one sent to a broker that lost the leadership held the consumer up for
    minutes. Now the start of every partition is committed once it is assigned."""
    name, pool = service
    topic = await new_topic(kafka_bootstrap, 3)
    await produce(kafka_bootstrap, topic, 0, 2)
    consumer = create_consumer(kafka_bootstrap, name, [topic])
    await consumer.start()
    ec = EventConsumer(
        service=name, pool=pool, consumer=consumer, handlers={}, raw_handlers=raw(topic)
    )
    task = asyncio.create_task(ec.run())
    tps = [TopicPartition(topic, p) for p in range(3)]
    try:

        async def all_committed() -> bool:
            return [await consumer.committed(tp) for tp in tps] == [2, 0, 0]

        await until(all_committed)
        assert await pool.fetchval("SELECT count(*) FROM applied") == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
    # A later member of the group starts every partition from its committed offset.
    again = create_consumer(kafka_bootstrap, name, [topic])
    await again.start()
    try:
        await produce(kafka_bootstrap, topic, 2, 1)
        batch = await again.getmany(timeout_ms=15_000)
        assert [(tp.partition, [r.offset for r in rs]) for tp, rs in batch.items()] == [(2, [0])]
    finally:
        await again.stop()


class Unreachable:
    """A producer whose broker never answers."""

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        raise KafkaConnectionError("broker away")


async def test_the_relay_counts_its_failures_and_its_growing_backlog(service):
    name, pool = service
    tenant = new_tenant()
    failures = sample("nordflow_outbox_publish_failures_total") or 0.0

    async def add(n: int) -> None:
        async with pool.acquire() as conn:
            for _ in range(n):
                body = tenant_updated(tenant, tenant_profile())
                await outbox.add(conn, envelope(body, source="/test"))

    await add(2)
    relay = OutboxRelay(pool, Unreachable(), db.schema_name(name))  # type: ignore[arg-type]
    task = asyncio.create_task(relay.run())
    try:

        async def failed() -> bool:
            return (sample("nordflow_outbox_publish_failures_total") or 0) > failures

        await until(failed)
        await add(3)

        async def counted() -> bool:
            return sample("nordflow_outbox_pending") == 5

        await until(counted, timeout=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_job_backlog_counts_due_jobs_per_kind(service):
    _, pool = service
    kind, later = f"toy-{uuid.uuid4().hex[:6]}", f"toy-later-{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(dt.UTC)
    async with pool.acquire() as conn:
        for i, due in enumerate([now - dt.timedelta(minutes=5), now - dt.timedelta(seconds=1)]):
            await jobs.schedule(conn, kind=kind, key=str(i), tenant_id="t", payload={}, due_at=due)
        await jobs.schedule(
            conn, kind=later, key="1", tenant_id="t", payload={}, due_at=now + dt.timedelta(hours=1)
        )
    counted = await jobs.backlog(pool)
    assert set(counted) == {kind}
    assert counted[kind].due == 2
    assert 299 < counted[kind].oldest_due_seconds < 400
    jobs.set_backlog_gauges([kind, later], counted)
    assert sample("nordflow_jobs_pending", kind=kind) == 2
    assert sample("nordflow_jobs_pending", kind=later) == 0
