"""delivery.hold_updated and channel.suggestion_decided on the real PostgreSQL and Kafka:
written to the outbox in the transaction of the change, each exactly once — also when the
invoice's record is redelivered, a change is refused or its transaction rolls back — and
published by the relay once per change."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from distribution_router.adapters.repositories import PgSuggestionRepository, pg_repositories
from distribution_router.deps import Deps
from distribution_router.domain.deliveries import NewSuggestion
from distribution_router.service import holds
from distribution_router.testing import FakeSender, bearer, start_harness
from distribution_router.testing.invoices import company, created_event
from nordflow_runtime.kafka import create_consumer, create_producer
from nordflow_runtime.outbox import OutboxRelay
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.envelope import decode, envelope
from nordflow_schemas.events import (
    Channel,
    ChannelSuggestionDecided,
    DeliveryHoldUpdated,
    Flow,
    HoldChange,
    HoldReason,
    InvoiceCreated,
    InvoiceDistributed,
    SuggestionDecision,
)
from nordflow_schemas.topics import DELIVERY_HOLD_UPDATED

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\nterms and conditions\n%%EOF\n"


class AbandonedError(Exception):
    """Raised inside a transaction to roll it back."""


@pytest.fixture
async def paper_harness(database_url: str) -> Any:
    """The service with a paper sender (every buyer here is reached on paper)."""
    h = await start_harness(database_url, senders={Channel.PAPER: FakeSender(Channel.PAPER)})
    yield h
    await h.close()


async def held_for_two_hours(h: ServiceHarness[Deps]) -> InvoiceCreated:
    """A tenant holding every new invoice for two hours, and its invoice to be distributed."""
    event = created_event(company(customer_number="17")).model_copy(
        update={"flow": Flow(factor=False)}
    )
    async with h.pool.acquire() as conn, conn.transaction():
        await holds.set_policy(
            pg_repositories(conn).holds,
            tenant_id=event.tenant_id,
            customer_key=None,
            enabled=True,
            duration=dt.timedelta(hours=2),
        )
    return event


async def hold_events(h: ServiceHarness[Deps], invoice_id: str) -> list[DeliveryHoldUpdated]:
    return [
        e
        for e in (await h.emitted()).of(DeliveryHoldUpdated)
        if isinstance(e, DeliveryHoldUpdated) and e.invoice_id == invoice_id
    ]


async def test_a_held_invoice_is_announced_once_however_often_its_record_comes(
    paper_harness: ServiceHarness[Deps],
) -> None:
    h = paper_harness
    event = await held_for_two_hours(h)
    record = envelope(event, source="/mapper", subject=event.invoice.number)
    await h.deliver(record)
    await h.deliver(record)  # redelivered (the consumer's offset was not committed)
    await h.deliver(record, record)  # twice in one batch
    await h.publish(event)  # published again by the mapper: another event id, the same invoice

    [placed] = await hold_events(h, event.invoice_id)
    assert (placed.change, placed.revision, placed.reason) == (
        HoldChange.PLACED,
        1,
        HoldReason.TENANT_POLICY,
    )
    assert placed.number == event.invoice.number
    # held_at is the database's time of the routing transaction, held_until the clock's.
    assert abs(placed.held_until - placed.held_at - dt.timedelta(hours=2)) < dt.timedelta(minutes=1)
    rows = await h.pool.fetch(
        "SELECT key, topic FROM outbox WHERE topic = $1", DELIVERY_HOLD_UPDATED.name
    )
    assert [(r["key"], r["topic"]) for r in rows] == [
        (event.invoice_id.encode(), DELIVERY_HOLD_UPDATED.name)
    ]


async def test_changes_through_the_api_are_announced_once_each_in_their_transaction(
    paper_harness: ServiceHarness[Deps],
) -> None:
    h = paper_harness
    event = await held_for_two_hours(h)
    await h.publish(event)
    invoice, tenant = event.invoice_id, event.tenant_id
    headers = await bearer(h.pool, tenant, "ekonomi")
    async with h.http() as client:
        added = await client.post(
            f"/api/v1/holds/{invoice}/attachments",
            params={"filename": "villkor.pdf"},
            content=PDF,
            headers=headers | {"Content-Type": "application/pdf"},
        )
        assert added.status_code == 201, added.text
        extra = await client.post(
            f"/api/v1/holds/{invoice}/attachments",
            files={"file": ("timmar.csv", b"dag;timmar\n", "text/csv")},
            headers=headers,
        )
        assert extra.status_code == 201, extra.text
        refused = await client.post(
            f"/api/v1/holds/{invoice}/attachments",
            params={"filename": "x.exe"},
            content=b"MZ",
            headers=headers | {"Content-Type": "application/octet-stream"},
        )
        assert refused.status_code == 415
        removed = await client.delete(
            f"/api/v1/holds/{invoice}/attachments/{extra.json()['attachment_id']}",
            headers=headers,
        )
        assert removed.status_code == 204
        missing = await client.delete(
            f"/api/v1/holds/{invoice}/attachments/{extra.json()['attachment_id']}",
            headers=headers,
        )
        assert missing.status_code == 404
        released = await client.post(f"/api/v1/holds/{invoice}/release", headers=headers)
        assert released.status_code == 200, released.text
        assert released.json()["number"] == event.invoice.number
        assert released.json()["reason"] == "tenant_policy"
        again = await client.post(f"/api/v1/holds/{invoice}/release", headers=headers)
        assert again.status_code == 409
        late = await client.post(
            f"/api/v1/holds/{invoice}/attachments",
            params={"filename": "late.pdf"},
            content=PDF,
            headers=headers | {"Content-Type": "application/pdf"},
        )
        assert late.status_code == 409

    events = await hold_events(h, invoice)
    assert [(e.change, e.revision) for e in events] == [
        (HoldChange.PLACED, 1),
        (HoldChange.ATTACHMENT_ADDED, 2),
        (HoldChange.ATTACHMENT_ADDED, 3),
        (HoldChange.ATTACHMENT_REMOVED, 4),
        (HoldChange.RELEASED, 5),
    ]
    assert [a.filename for a in events[-1].attachments] == ["villkor.pdf"]
    assert events[-1].released_by == "api token 'ekonomi'"
    assert events[-1].needed is None
    # The released invoice goes at once, with its file and its cost.
    sent = (await h.run_jobs()).of(InvoiceDistributed)
    assert [(d.invoice_id, d.cost, d.cost_currency) for d in sent] == [
        (invoice, Decimal("9.50"), "SEK")
    ]


async def test_a_change_whose_transaction_rolls_back_is_never_announced(
    paper_harness: ServiceHarness[Deps],
) -> None:
    h = paper_harness
    event = await held_for_two_hours(h)
    await h.publish(event)

    async def attach_then_abandon() -> None:
        async with h.pool.acquire() as conn, conn.transaction():
            await holds.add_attachment(
                pg_repositories(conn),
                tenant_id=event.tenant_id,
                invoice_id=event.invoice_id,
                filename="villkor.pdf",
                content_type="application/pdf",
                content=PDF,
            )
            raise AbandonedError  # e.g. the request was cancelled before the commit

    with pytest.raises(AbandonedError):
        await attach_then_abandon()
    assert [e.change for e in await hold_events(h, event.invoice_id)] == [HoldChange.PLACED]
    assert await h.pool.fetchval("SELECT revision FROM holds") == 1


async def test_a_decided_suggestion_is_announced_once(paper_harness: ServiceHarness[Deps]) -> None:
    h = paper_harness
    tenant, invoice = f"t-{uuid.uuid4().hex[:12]}", f"inv_{uuid.uuid4().hex}"
    async with h.pool.acquire() as conn:
        suggestion_id = await PgSuggestionRepository(conn).record_once(
            NewSuggestion(
                tenant_id=tenant,
                customer_key="42",
                invoice_id=invoice,
                current=Channel.PAPER,
                suggested=Channel.PEPPOL,
                recipient="0088:7300010000001",
                now=dt.datetime.now(dt.UTC),
                snooze=dt.timedelta(days=90),
            )
        )
    assert suggestion_id is not None
    headers = await bearer(h.pool, tenant, "ekonomi")
    async with h.http() as client:
        path = f"/api/v1/suggestions/{suggestion_id}"
        assert (await client.post(f"{path}/dismiss", headers=headers)).status_code == 200
        assert (await client.post(f"{path}/accept", headers=headers)).status_code == 409
        other = await bearer(h.pool, f"t-{uuid.uuid4().hex[:12]}")
        assert (await client.post(f"{path}/accept", headers=other)).status_code == 404
    [decided] = (await h.emitted()).of(ChannelSuggestionDecided)
    assert (decided.invoice_id, decided.suggestion_id, decided.decision) == (
        invoice,
        suggestion_id,
        SuggestionDecision.DISMISSED,
    )
    assert decided.decided_by == "api token 'ekonomi'"


async def test_the_relay_publishes_each_change_once_on_the_topic(
    paper_harness: ServiceHarness[Deps], kafka_bootstrap: str
) -> None:
    h = paper_harness
    event = await held_for_two_hours(h)
    record = envelope(event, source="/mapper", subject=event.invoice.number)
    await h.deliver(record)
    await h.deliver(record)  # redelivered
    async with h.pool.acquire() as conn, conn.transaction():
        await holds.release_hold(
            pg_repositories(conn),
            tenant_id=event.tenant_id,
            invoice_id=event.invoice_id,
            released_by="api token 'ekonomi'",
        )
    producer = create_producer(kafka_bootstrap, "hold-events-test")
    await producer.start()
    try:
        relay = OutboxRelay(h.pool, producer, h.schema)
        assert await relay.publish_batch() >= 2
        assert await relay.publish_batch() == 0  # nothing is published twice
    finally:
        await producer.stop()

    consumer = create_consumer(
        kafka_bootstrap, f"hold-events-{uuid.uuid4().hex[:8]}", [DELIVERY_HOLD_UPDATED.name]
    )
    await consumer.start()
    seen: list[DeliveryHoldUpdated] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        quiet_until = None
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    if r.key != event.invoice_id.encode():
                        continue
                    body = decode(r.value, list(r.headers)).body
                    assert isinstance(body, DeliveryHoldUpdated)
                    seen.append(body)
            if len(seen) >= 2 and quiet_until is None:
                quiet_until = asyncio.get_running_loop().time() + 2  # any copy would show
            if quiet_until is not None and asyncio.get_running_loop().time() > quiet_until:
                break
    finally:
        await consumer.stop()
    assert [(e.change, e.revision) for e in seen] == [
        (HoldChange.PLACED, 1),
        (HoldChange.RELEASED, 2),
    ]
