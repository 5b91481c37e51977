"""The read model on the real PostgreSQL (and Kafka): duplicates, reordering, catch-up from
zero, failed jobs, dead letters, actions and connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from control_panel.deps import Deps
from control_panel.domain.journey import Status
from control_panel.testing import (
    BASE_TIME,
    app_for,
    dead_letter_record,
    job_failed,
    job_retried,
    journey,
    rejected,
)
from nordflow_runtime.app import Resources
from nordflow_runtime.consumer import EventConsumer
from nordflow_runtime.kafka import create_consumer
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.envelope import encode, envelope
from nordflow_schemas.events import (
    ActionOutcome,
    ConnectionUpdated,
    OperatorAction,
    OperatorActionCompleted,
    OperatorActionRequested,
)
from nordflow_schemas.testing import new_tenant, tenant_profile

pytestmark = pytest.mark.integration

TABLES = {
    "invoices": "SELECT * FROM invoices WHERE tenant_id = $1 ORDER BY invoice_id",
    "steps": "SELECT event_id, invoice_id, kind, occurred_at, trace_id, facts::text, "
    "errors::text FROM steps WHERE tenant_id = $1 ORDER BY event_id",
    "documents": "SELECT invoice_id, event_id, document::text FROM invoice_documents "
    "WHERE tenant_id = $1 ORDER BY invoice_id",
    "transfers": "SELECT * FROM transfers WHERE tenant_id = $1 ORDER BY transfer_id",
    "deliveries": "SELECT * FROM deliveries WHERE tenant_id = $1 ORDER BY event_id",
    "payments": "SELECT * FROM payments WHERE tenant_id = $1 ORDER BY payment_id",
    "entries": "SELECT * FROM ledger_entries WHERE tenant_id = $1 ORDER BY erp_reference",
    "jobs": "SELECT * FROM failed_jobs WHERE tenant_id = $1 ORDER BY service, job_id",
    # Where a letter sits in the DLQ topic differs between Kafka and the harness.
    "letters": "SELECT letter_id, consumer, origin_topic, origin_offset, event_id, invoice_id, "
    "reason, dead_lettered_at FROM dead_letters WHERE tenant_id = $1 ORDER BY letter_id",
}


async def snapshot(h: ServiceHarness[Deps], tenant: str) -> dict[str, list[dict[str, Any]]]:
    """Every read-model row of a tenant (what must not depend on arrival order)."""
    return {
        name: [dict(r) for r in await h.pool.fetch(sql, tenant)] for name, sql in TABLES.items()
    }


def events_of(tenant: str) -> list[Any]:
    good = journey(tenant, "1001")
    second = journey(tenant, "1003", customer="Andra AB", start=BASE_TIME + dt.timedelta(hours=2))
    bad = rejected(tenant, "1002")
    failed = job_failed(tenant, good[0].body.invoice_id, at=BASE_TIME + dt.timedelta(hours=1))
    retried = job_retried(tenant, good[0].body.invoice_id, at=BASE_TIME + dt.timedelta(hours=3))
    return [*good, *second, *bad, failed, retried]


async def test_events_applied_twice_and_in_any_order_give_the_same_read_model(
    database_url: str,
) -> None:
    tenant = new_tenant()
    events = events_of(tenant)
    in_order = await ServiceHarness.start(app_for(database_url), database_url)
    shuffled = await ServiceHarness.start(app_for(database_url), database_url)
    try:
        for env in events:
            await in_order.deliver(env)
        mixed = list(reversed(events))
        random.Random(7).shuffle(mixed)
        # Twice each, in separate batches and within one batch: the inbox and the read
        # model's own keys both drop the copies.
        await shuffled.deliver(*mixed[:5], *mixed[:5])
        for env in mixed[5:]:
            await shuffled.deliver(env)
        await shuffled.deliver(*events)
        # A copy delivered after its inbox id was pruned is dropped by the steps' event ids.
        await shuffled.pool.execute("DELETE FROM inbox")
        await shuffled.deliver(*events)
        assert await snapshot(shuffled, tenant) == await snapshot(in_order, tenant)
        rows = await in_order.pool.fetch(
            "SELECT number, status, error_count FROM invoices WHERE tenant_id = $1 ORDER BY number",
            tenant,
        )
        assert [tuple(r) for r in rows] == [
            ("1001", Status.BOOKED.value, 1),  # the failed job is on its journey
            ("1002", Status.REJECTED.value, 2),
            ("1003", Status.BOOKED.value, 0),
        ]
        job = await in_order.pool.fetchrow("SELECT state, retried_by FROM failed_jobs")
        assert (job["state"], job["retried_by"]) == ("pending", "operator:ops")
    finally:
        await in_order.close()
        await shuffled.close()


async def test_a_retried_job_that_fails_again_is_failed_whatever_the_order(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    first = job_failed(tenant, None, job_id=3, at=BASE_TIME)
    retry = job_retried(tenant, None, job_id=3, at=BASE_TIME + dt.timedelta(minutes=1))
    again = job_failed(tenant, None, job_id=3, at=BASE_TIME + dt.timedelta(minutes=2), error="x")
    await harness.deliver(again)
    await harness.deliver(retry, first)
    row = await harness.pool.fetchrow("SELECT * FROM failed_jobs WHERE job_id = 3")
    assert (row["state"], row["error"], row["failed_at"]) == ("failed", "x", again.body.failed_at)
    assert row["retried_at"] == retry.body.retried_at
    # The retry known first, its failure later: pending, with the failure's details.
    other = new_tenant()
    await harness.deliver(job_retried(other, None, job_id=4, at=BASE_TIME))
    await harness.deliver(job_failed(other, None, job_id=4, at=BASE_TIME - dt.timedelta(hours=1)))
    row = await harness.pool.fetchrow("SELECT * FROM failed_jobs WHERE job_id = 4")
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert row["error"].startswith("Fortnox refused")


async def test_an_actions_outcome_may_arrive_before_its_request(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    now = dt.datetime.now(dt.UTC)
    request = OperatorActionRequested(
        tenant_id=tenant,
        action_id="a1",
        service="some-service",  # not control-panel: recorded, not carried out
        action=OperatorAction.RETRY_JOB,
        target_id="3",
        requested_by="operator:ops",
        requested_at=now,
    )
    done = OperatorActionCompleted(
        tenant_id=tenant,
        action_id="a1",
        service="some-service",
        action=OperatorAction.RETRY_JOB,
        target_id="3",
        outcome=ActionOutcome.DONE,
        message="job 3 is pending again, due now",
        completed_at=now,
    )
    assert (await harness.publish(done)).events == []
    assert (await harness.publish(request)).events == []
    row = await harness.pool.fetchrow("SELECT * FROM actions WHERE action_id = 'a1'")
    assert (row["requested_by"], row["outcome"]) == ("operator:ops", "done")


async def test_control_panel_carries_out_commands_addressed_to_itself(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    command = OperatorActionRequested(
        tenant_id=tenant,
        action_id="own",
        service="control-panel",
        action=OperatorAction.SYNC_CONNECTION,
        target_id="c1",
        requested_by="operator:ops",
        requested_at=dt.datetime.now(dt.UTC),
    )
    out = await harness.publish(command)
    [answer] = out.of(OperatorActionCompleted)
    assert answer.outcome is ActionOutcome.UNSUPPORTED
    assert await harness.pool.fetchval("SELECT action FROM actions WHERE action_id = 'own'")


async def test_the_newest_connection_revision_wins(harness: ServiceHarness[Deps]) -> None:
    tenant = new_tenant()

    def state(revision: int, error: str | None) -> ConnectionUpdated:
        return ConnectionUpdated(
            tenant_id=tenant,
            connection_id="fortnox-1",
            system=SourceSystem.FORTNOX,
            mode=ConnectionMode.AUTOMATIC,
            revision=revision,
            last_poll_at=BASE_TIME,
            last_error=error,
            updated_at=BASE_TIME,
        )

    await harness.publish(state(2, None))
    await harness.publish(state(1, "401 Unauthorized"))
    assert envelope(state(1, None), source="/erp-poller").key == f"{tenant}:fortnox-1"
    row = await harness.pool.fetchrow("SELECT revision, last_error FROM connections")
    assert (row["revision"], row["last_error"]) == (2, None)


async def test_a_dead_letter_is_recorded_once_and_on_its_invoices_journey(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    good = journey(tenant, "1001")
    record = dead_letter_record(tenant, good[1])
    await harness.deliver_records([record, record])
    await harness.deliver_records([record])
    letters = await harness.pool.fetch("SELECT * FROM dead_letters WHERE tenant_id = $1", tenant)
    assert len(letters) == 1
    assert letters[0]["consumer"] == "mapper"
    assert letters[0]["invoice_id"] == good[0].body.invoice_id
    assert letters[0]["letter_id"] == "dlq:mapper:invoice.created:3:41"
    kinds = await harness.pool.fetch(
        "SELECT kind FROM steps WHERE invoice_id = $1", good[0].body.invoice_id
    )
    assert [r["kind"] for r in kinds] == ["event.dead_lettered"]
    # Junk from a raw record is stored as text PostgreSQL accepts.
    nul = dead_letter_record(tenant, good[2], reason="bad \x00 byte", origin_offset=42)
    await harness.deliver_records([nul])
    assert (
        await harness.pool.fetchval("SELECT reason FROM dead_letters WHERE letter_id LIKE '%:42'")
        == "bad \ufffd byte"
    )
    # A poison record the panel itself cannot read goes to the dead-letter topic too.
    garbled = await harness.deliver_records(
        [("invoice.created", b"k", b"{not json", encode(good[1])[2])]
    )
    assert "body invalid" in garbled.dead_letters[0].reason


async def test_statistics_days_follow_the_tenants_zone(harness: ServiceHarness[Deps]) -> None:
    tenant = new_tenant()
    await harness.tenant(tenant, tenant_profile("NO"))
    late = dt.datetime(2025, 3, 10, 23, 30, tzinfo=dt.UTC)  # 11 March in Oslo
    for env in journey(tenant, "1", start=late) + journey(tenant, "2", start=late.replace(hour=9)):
        await harness.deliver(env)
    from control_panel.domain.access import Principal
    from control_panel.domain.stats import Granularity
    from control_panel.service import queries

    stats = await queries.statistics(
        harness.deps.repositories(harness.pool),
        Principal("x", tenant, operator=False),
        None,
        dt.date(2025, 3, 10),
        dt.date(2025, 3, 11),
        Granularity.DAY,
        harness.deps.settings.unit_prices(),
        "SEK",
    )
    assert stats.zone == "Europe/Oslo"
    assert [(p.period.day, p.sent) for p in stats.periods] == [
        (10, {"email": 1}),
        (11, {"email": 1}),
    ]
    assert stats.total.cost == 2 * harness.deps.settings.unit_price_email


LETTER_TIME_MS = int(BASE_TIME.timestamp() * 1000) + 3_600_000


async def _produce(bootstrap: str, records: list[tuple[str, Any, Any, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(
                topic, value=value, key=key, headers=headers, timestamp_ms=LETTER_TIME_MS
            )
    finally:
        await producer.stop()


async def test_a_fresh_read_model_catches_up_from_the_topics_beginning(
    database_url: str, kafka_bootstrap: str
) -> None:
    """Every topic read from the earliest offset by a new consumer group into an empty
    schema gives exactly the read model of applying each event once in order."""
    tenant = new_tenant()
    events = events_of(tenant)
    records = [(e.topic, *encode(e)) for e in events]
    letter = dead_letter_record(tenant, events[1])
    # Published out of order across topics, some twice (a relay that resent a batch).
    mixed = [*records[::-1], records[0], records[4], letter, letter]
    await _produce(kafka_bootstrap, mixed)

    expected = await ServiceHarness.start(app_for(database_url), database_url)
    fresh = await ServiceHarness.start(app_for(database_url, kafka_bootstrap), database_url)
    consumer = create_consumer(
        kafka_bootstrap, f"control-panel-catch-up-{uuid.uuid4().hex[:8]}", fresh.app.topics
    )
    await consumer.start()
    task = asyncio.create_task(
        EventConsumer(
            service=fresh.app.name,
            pool=fresh.pool,
            consumer=consumer,
            handlers=fresh.app.handlers,
            raw_handlers=fresh.app.raw_handlers,
            deps=fresh.deps,
        ).run()
    )
    try:
        for env in events:
            await expected.deliver(env)
        await expected.deliver_records([letter], timestamp_ms=LETTER_TIME_MS)

        deadline = asyncio.get_running_loop().time() + 120
        want = await snapshot(expected, tenant)
        while (got := await snapshot(fresh, tenant)) != want:
            if asyncio.get_running_loop().time() > deadline:
                differ = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
                raise AssertionError(f"did not catch up: {differ}")
            await asyncio.sleep(0.5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
        await expected.close()
        await fresh.close()


async def test_an_event_postgresql_cannot_store_is_dead_lettered_not_retried_forever(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    poisoned = journey(tenant, "1001", customer="Nul\x00 AB")[1]
    out = await harness.deliver(poisoned, *journey(tenant, "1003"))
    [letter] = out.dead_letters
    # The contract refuses it already (no control characters in a name), before the read
    # model would have failed to store it.
    assert "invoice.buyer.name" in letter.reason
    assert "control characters" in letter.reason
    assert (
        await harness.pool.fetchval("SELECT count(*) FROM invoices WHERE tenant_id = $1", tenant)
        == 1
    )


async def test_one_tenants_ids_never_shadow_anothers(harness: ServiceHarness[Deps]) -> None:
    a, b = new_tenant(), new_tenant()
    # Both tenants' factor transfers are called tr_1001, both payments pay-1001.
    await harness.deliver(*journey(a, "1001"), *journey(b, "1001"))
    for table in ("transfers", "payments", "ledger_entries", "invoices"):
        rows = await harness.pool.fetch(
            f"SELECT tenant_id FROM {table} WHERE tenant_id = ANY($1::text[])", [a, b]
        )
        assert sorted(r["tenant_id"] for r in rows) == sorted([a, b]), table


async def test_rebuild_empties_the_read_model_and_reads_every_topic_again(
    fresh_database_url: str, kafka_bootstrap: str
) -> None:
    from control_panel.adapters.tokens import PgTokenRepository
    from control_panel.entrypoints.cli import rebuild_read_model
    from control_panel.service.tokens import authenticate, create_token
    from nordflow_runtime import db
    from nordflow_runtime.kafka import GroupActiveError

    tenant = new_tenant()
    events = events_of(tenant)
    await _produce(kafka_bootstrap, [(e.topic, *encode(e)) for e in events])
    app = app_for(fresh_database_url, kafka_bootstrap)
    pool = await db.create_pool(fresh_database_url, app.schema)
    await db.migrate(pool, app.schema, app.migrations())
    deps = await app.build_deps(Resources(app.name, app.settings, pool, lambda: None))
    token = await create_token(PgTokenRepository(pool), tenant, operator=False, name="t")
    group = f"control-panel-rebuild-{uuid.uuid4().hex[:8]}"

    async def consume() -> tuple[Any, asyncio.Task[None]]:
        consumer = create_consumer(kafka_bootstrap, group, app.topics)
        await consumer.start()
        processor = EventConsumer(
            service=app.name,
            pool=pool,
            consumer=consumer,
            handlers=app.handlers,
            raw_handlers=app.raw_handlers,
            deps=deps,
        )
        return consumer, asyncio.create_task(processor.run())

    async def invoices() -> int:
        return int(
            await pool.fetchval("SELECT count(*) FROM invoices WHERE tenant_id = $1", tenant)
        )

    async def until_three() -> None:
        deadline = asyncio.get_running_loop().time() + 120
        while await invoices() != 3:
            assert asyncio.get_running_loop().time() < deadline, "did not catch up"
            await asyncio.sleep(0.3)

    consumer, task = await consume()
    try:
        await until_three()
        with pytest.raises(GroupActiveError):
            await rebuild_read_model(app, group)  # a replica still runs: nothing changes
        assert await invoices() == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
    try:
        assert await rebuild_read_model(app, group) >= len(app.topics)
        assert await invoices() == 0
        assert await authenticate(PgTokenRepository(pool), token) is not None  # tokens kept
        consumer, task = await consume()
        try:
            await until_three()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await consumer.stop()
    finally:
        await pool.close()
