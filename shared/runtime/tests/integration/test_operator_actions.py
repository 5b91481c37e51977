"""Failed jobs announced, operator actions carried out by the runtime, and raw subscriptions
(the dead-letter topic consumed once), on the real PostgreSQL server and Kafka broker."""

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from nordflow_runtime import db, dlq
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.jobs import Job, schedule
from nordflow_runtime.kafka import create_producer
from nordflow_runtime.operator import Outcome, parse_position
from nordflow_runtime.outbox import OutboxRelay
from nordflow_runtime.settings import ServiceSettings
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.envelope import Envelope, encode, envelope
from nordflow_schemas.events import (
    ActionOutcome,
    JobFailed,
    JobRetried,
    OperatorAction,
    OperatorActionCompleted,
    OperatorActionRequested,
    PaymentReceived,
)
from nordflow_schemas.topics import (
    EVENT_DEAD_LETTERED,
    OPERATOR_ACTION_REQUESTED,
    PAYMENT_RECEIVED,
)

pytestmark = pytest.mark.integration


def payment(tenant: str, n: int = 1, amount: str = "10.00") -> PaymentReceived:
    return PaymentReceived(
        tenant_id=tenant,
        invoice_id=f"inv_{tenant}_{n}",
        source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c", document_id=str(n)),
        payment_id=f"pay-{n}",
        amount=Decimal(amount),
        currency="SEK",
        paid_on=dt.date(2026, 11, 23),
        payer="Kund AB",
    )


class Toy:
    """The toy service's dependencies: whether its ERP refuses, and what it received raw."""

    def __init__(self) -> None:
        self.refuse = True
        self.letters: list[ConsumerRecord[Any, Any]] = []


async def on_payment(ctx: Context[Toy], env: Envelope[PaymentReceived]) -> None:
    if env.body.amount < 0:
        raise PermanentError("a payment is never negative")
    await schedule(
        ctx.conn,
        kind="book",
        key=env.body.payment_id,
        tenant_id=env.tenant_id,
        payload={"invoice_id": env.body.invoice_id},
        due_at=dt.datetime.now(dt.UTC),
    )


async def book(ctx: Context[Toy], job: Job) -> dict[str, Any]:
    if ctx.deps.refuse:
        raise PermanentError("the ERP refused: period locked")
    return {"booked": True}


async def on_letter(ctx: Context[Toy], record: ConsumerRecord[Any, Any]) -> None:
    ctx.deps.letters.append(record)


def toy_app(bootstrap: str = "unused:9092", name: str | None = None) -> ServiceApp[Toy]:
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, database_url="postgresql://x")
    app: ServiceApp[Toy] = ServiceApp(name or f"toy-{uuid.uuid4().hex[:6]}", settings, None)
    app.subscribe(PAYMENT_RECEIVED.name, on_payment)
    app.job("book", book)
    return app


@pytest.fixture
async def toy(database_url):
    h = await ServiceHarness.start(toy_app(), database_url, deps=Toy())
    yield h
    await h.close()


def command(
    tenant: str, service: str, action: OperatorAction, target: str
) -> OperatorActionRequested:
    return OperatorActionRequested(
        tenant_id=tenant,
        action_id=uuid.uuid4().hex,
        service=service,
        action=action,
        target_id=target,
        requested_by="ops@example",
        requested_at=dt.datetime.now(dt.UTC),
    )


async def test_every_service_consumes_operator_commands() -> None:
    app = toy_app()
    assert OPERATOR_ACTION_REQUESTED.name in app.handlers
    assert OPERATOR_ACTION_REQUESTED.name in app.topics


async def test_a_failed_job_is_announced_and_retried_by_an_operator_action(toy) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await toy.publish(payment(tenant))
    out = await toy.run_jobs()
    [failed] = out.of(JobFailed)
    assert (failed.service, failed.kind, failed.job_key) == (toy.app.name, "book", "pay-1")
    assert failed.invoice_id == f"inv_{tenant}_1"
    assert "period locked" in failed.error
    assert out.events[0].key == f"{toy.app.name}:{failed.job_id}"

    # Another tenant cannot retry it; a command for another service is ignored.
    other = await toy.publish(
        command("t-other", toy.app.name, OperatorAction.RETRY_JOB, str(failed.job_id))
    )
    [refused] = other.of(OperatorActionCompleted)
    assert refused.outcome is ActionOutcome.NOT_FOUND
    ignored = await toy.publish(
        command(tenant, "someone-else", OperatorAction.RETRY_JOB, str(failed.job_id))
    )
    assert ignored.events == []

    toy.deps.refuse = False
    retry = command(tenant, toy.app.name, OperatorAction.RETRY_JOB, str(failed.job_id))
    done = await toy.publish(retry)
    [retried] = done.of(JobRetried)
    assert (retried.job_id, retried.action_id, retried.requested_by) == (
        failed.job_id,
        retry.action_id,
        "ops@example",
    )
    [completed] = done.of(OperatorActionCompleted)
    assert (completed.outcome, completed.action_id) == (ActionOutcome.DONE, retry.action_id)
    assert (await toy.run_jobs()).of(JobFailed) == []
    [job] = await toy.jobs("book")
    assert job["state"] == "done"

    again = await toy.publish(
        command(tenant, toy.app.name, OperatorAction.RETRY_JOB, str(failed.job_id))
    )
    assert again.of(OperatorActionCompleted)[0].outcome is ActionOutcome.REFUSED
    assert again.of(JobRetried) == []


async def test_unknown_actions_and_bad_targets_are_answered(toy) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    name = toy.app.name
    sync = await toy.publish(command(tenant, name, OperatorAction.SYNC_CONNECTION, "c1"))
    assert sync.of(OperatorActionCompleted)[0].outcome is ActionOutcome.UNSUPPORTED
    bad = await toy.publish(command(tenant, name, OperatorAction.RETRY_JOB, "seven"))
    assert bad.of(OperatorActionCompleted)[0].outcome is ActionOutcome.REFUSED
    bad = await toy.publish(command(tenant, name, OperatorAction.REPLAY_DEAD_LETTER, "x"))
    assert bad.of(OperatorActionCompleted)[0].outcome is ActionOutcome.REFUSED
    assert parse_position("3:1200") == (3, 1200)
    assert parse_position("3:") is None


async def test_a_service_adds_its_own_operator_action(database_url) -> None:
    app = toy_app()

    async def sync(ctx: Context[Any], cmd: OperatorActionRequested) -> Outcome:
        return Outcome(ActionOutcome.DONE, f"syncing {cmd.target_id}")

    app.operator_action(OperatorAction.SYNC_CONNECTION, sync)
    h = await ServiceHarness.start(app, database_url, deps=Toy())
    try:
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        out = await h.publish(command(tenant, app.name, OperatorAction.SYNC_CONNECTION, "c9"))
        [completed] = out.of(OperatorActionCompleted)
        assert (completed.outcome, completed.message) == (ActionOutcome.DONE, "syncing c9")
    finally:
        await h.close()


def dead_letter_record(
    consumer: str, origin_offset: int, tenant: str
) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    key, value, headers = encode(envelope(payment(tenant), source="/test"))
    return (
        EVENT_DEAD_LETTERED.name,
        key,
        value,
        [
            *headers,
            ("x-nordflow-dlq-reason", b"refused"),
            ("x-nordflow-dlq-consumer", consumer.encode()),
            ("x-nordflow-dlq-topic", PAYMENT_RECEIVED.name.encode()),
            ("x-nordflow-dlq-partition", b"2"),
            ("x-nordflow-dlq-offset", str(origin_offset).encode()),
        ],
    )


async def test_a_raw_topic_is_consumed_once_per_dead_letter(database_url) -> None:
    app = toy_app()
    app.subscribe_raw(EVENT_DEAD_LETTERED.name, on_letter)
    assert EVENT_DEAD_LETTERED.name in app.topics
    toy = Toy()
    h = await ServiceHarness.start(app, database_url, deps=toy)
    try:
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        letter = dead_letter_record("mapper", 41, tenant)
        # The relay published the same letter twice (a crash between send and mark).
        out = await h.deliver_records([letter, letter])
        assert len(toy.letters) == 1
        assert out.dead_letters == []
        # The same refusal again later is still a duplicate; a new refusal is not.
        await h.deliver_records([letter, dead_letter_record("mapper", 42, tenant)])
        assert len(toy.letters) == 2
        inbox = await h.pool.fetch("SELECT event_id, tenant_id FROM inbox ORDER BY event_id")
        assert [(r["event_id"], r["tenant_id"]) for r in inbox] == [
            (f"dlq:mapper:{PAYMENT_RECEIVED.name}:2:41", tenant),
            (f"dlq:mapper:{PAYMENT_RECEIVED.name}:2:42", tenant),
        ]
        # A record without dlq headers is identified by where it sits.
        assert dlq.inbox_id(
            ConsumerRecord(EVENT_DEAD_LETTERED.name, 1, 7, 0, 0, b"k", b"v", None, 1, 1, ())
        ) == (f"raw:{EVENT_DEAD_LETTERED.name}:1:7")
    finally:
        await h.close()


async def test_a_raw_handlers_refusal_is_skipped_not_dead_lettered(database_url) -> None:
    app = toy_app()

    async def refuse(ctx: Context[Toy], record: ConsumerRecord[Any, Any]) -> None:
        raise PermanentError("cannot read it")

    app.subscribe_raw(EVENT_DEAD_LETTERED.name, refuse)
    h = await ServiceHarness.start(app, database_url, deps=Toy())
    try:
        out = await h.deliver_records([dead_letter_record("mapper", 1, "t-x")])
        assert out.dead_letters == []  # never a dead letter of a dead letter: it would loop
        assert out.events == []
    finally:
        await h.close()


async def _produce(bootstrap: str, records: list[tuple[str, Any, Any, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def test_a_dead_letter_is_replayed_by_its_own_service_only(
    fresh_database_url, kafka_bootstrap
) -> None:
    name = f"toy-{uuid.uuid4().hex[:6]}"
    app = toy_app(kafka_bootstrap, name)
    h = await ServiceHarness.start(app, fresh_database_url, deps=Toy())
    producer = create_producer(kafka_bootstrap, "replay-test")
    await producer.start()
    try:
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        poison = payment(tenant, 5, amount="-1")
        out = await h.publish(poison)
        assert len(out.dead_letters) == 1
        relay = OutboxRelay(h.pool, producer, h.schema)
        assert await relay.publish_batch() >= 1
        letters = [
            lt for lt in await dlq.read(kafka_bootstrap, consumer=name) if lt.tenant_id == tenant
        ]
        [letter] = letters
        found = await dlq.read_one(kafka_bootstrap, letter.partition, letter.offset)
        assert found is not None
        assert found.value == letter.value
        assert await dlq.read_one(kafka_bootstrap, letter.partition, 10**9) is None

        # Another tenant's command for it: not found; another service's letter: refused.
        wrong = await h.publish(
            command("t-other", name, OperatorAction.REPLAY_DEAD_LETTER, letter.position)
        )
        assert wrong.of(OperatorActionCompleted)[0].outcome is ActionOutcome.NOT_FOUND
        replay = command(tenant, name, OperatorAction.REPLAY_DEAD_LETTER, letter.position)
        done = await h.publish(replay)
        [completed] = done.of(OperatorActionCompleted)
        assert completed.outcome is ActionOutcome.DONE, completed.message
        [again] = [e for e in done.events if isinstance(e.body, PaymentReceived)]
        assert again.id == letter.event_id  # the same event id: other groups skip it
        row = await h.pool.fetchrow(
            "SELECT topic, key, value FROM outbox WHERE event_id = $1",
            f"replay:{replay.action_id}",
        )
        assert (row["topic"], row["key"], row["value"]) == (
            PAYMENT_RECEIVED.name,
            letter.key,
            letter.value,
        )

        other_app = toy_app(kafka_bootstrap)
        other = await ServiceHarness.start(other_app, fresh_database_url, deps=Toy())
        try:
            refused = await other.publish(
                command(tenant, other_app.name, OperatorAction.REPLAY_DEAD_LETTER, letter.position)
            )
            assert refused.of(OperatorActionCompleted)[0].outcome is ActionOutcome.REFUSED
        finally:
            await other.close()
    finally:
        await producer.stop()
        await h.close()


async def test_jobs_retry_from_the_command_line_is_announced(toy) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await toy.publish(payment(tenant, 3))
    [failed] = (await toy.run_jobs()).of(JobFailed)
    from nordflow_runtime import jobs

    async with toy.pool.acquire() as conn, conn.transaction():
        assert await jobs.retry_failed(conn, ids=[failed.job_id], service=toy.app.name) == [
            failed.job_id
        ]
    emitted = await toy.emitted()
    [retried] = emitted.of(JobRetried)
    assert (retried.requested_by, retried.action_id) == ("cli", None)
    await asyncio.sleep(0)
    assert db.schema_name(toy.app.name) in toy.schema
