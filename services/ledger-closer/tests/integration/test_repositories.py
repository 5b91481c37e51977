"""ledger-closer's PostgreSQL repositories: write connections, the intent log committed on its
own connection, the entries, and the jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest
from ledger_closer.adapters.repository import (
    PgConnectionRepository,
    PgDocumentRepository,
    PgEntryRepository,
    PgIntentLog,
    PgJobScheduler,
)
from ledger_closer.deps import Deps
from ledger_closer.domain import (
    DEFAULT_ACCOUNTS,
    AccountRole,
    ConnectionOfAnotherTenantError,
    Delivery,
    PlannedEntry,
    WriteConnection,
)
from ledger_closer.testing import created, source, write_connection
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.envelope import envelope
from nordflow_schemas.events import Channel, EntryKind, Flow, InvoiceDistributed
from nordflow_schemas.testing import new_tenant, simple_invoice

pytestmark = pytest.mark.integration

ENTRY = PlannedEntry(
    invoice_id="inv_1",
    kind=EntryKind.CLOSING_ENTRY,
    source=source("c", "7"),
    amount=Decimal("-1250.00"),
    currency="SEK",
    paid_on=dt.date(2026, 11, 24),
    account_role=AccountRole.FACTORING,
)


async def test_write_connections_round_trip_and_belong_to_one_tenant(
    harness: ServiceHarness[Deps],
) -> None:
    repo = PgConnectionRepository(harness.pool)
    tenant = new_tenant()
    norwegian = dataclasses.replace(DEFAULT_ACCOUNTS["NO"], bank=1940)
    added = write_connection(
        tenant, f"{tenant}-fx", token_sealed=b"sealed-1", mode_of_payment="BG", accounts=norwegian
    )
    await repo.save(added)

    found = await repo.find(tenant, f"{tenant}-fx")
    assert isinstance(found, WriteConnection)
    assert found.updated_at is not None
    assert found == dataclasses.replace(added, updated_at=found.updated_at)
    assert await repo.find(new_tenant(), f"{tenant}-fx") is None  # another tenant's id

    await repo.save(
        write_connection(tenant, f"{tenant}-fx", token_sealed=b"sealed-2", system="other")
    )
    again = await repo.find(tenant, f"{tenant}-fx")
    assert again is not None
    assert (again.token_sealed, again.mode_of_payment, again.accounts) == (
        b"sealed-2",
        "FACT",
        DEFAULT_ACCOUNTS["SE"],
    )
    assert again.system == "fortnox"  # re-adding never changes the system
    assert again.updated_at is not None
    assert again.updated_at > found.updated_at

    with pytest.raises(ConnectionOfAnotherTenantError, match="belongs to another tenant"):
        await repo.save(write_connection(new_tenant(), f"{tenant}-fx"))
    assert (await repo.find(tenant, f"{tenant}-fx")) == again


async def test_the_intent_outlives_the_jobs_transaction(harness: ServiceHarness[Deps]) -> None:
    tenant = new_tenant()
    key = f"closing:{tenant}"
    async with harness.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await PgIntentLog(harness.pool).record(key, tenant, ENTRY, 1512)
        await PgEntryRepository(conn).record_posted(key, "41", False, dt.datetime.now(dt.UTC))
        await tx.rollback()  # the attempt failed after the ERP call

    row = await harness.pool.fetchrow("SELECT * FROM entries WHERE entry_key = $1", key)
    assert row is not None
    assert (row["tenant_id"], row["invoice_id"], row["kind"]) == (tenant, "inv_1", "closing_entry")
    assert (row["amount"], row["currency"], row["account"]) == (Decimal("-1250.00"), "SEK", 1512)
    assert (row["attempts"], row["erp_reference"], row["adopted"]) == (0, None, False)

    await PgIntentLog(harness.pool).record(key, tenant, ENTRY, 1512)
    assert (
        await harness.pool.fetchval("SELECT attempts FROM entries WHERE entry_key = $1", key) == 1
    )


async def test_posted_entries_are_known_per_invoice(harness: ServiceHarness[Deps]) -> None:
    tenant = new_tenant()
    entries = PgEntryRepository(harness.pool)
    other = dataclasses.replace(ENTRY, invoice_id="inv_2")
    for key, planned in (("a", ENTRY), ("b", ENTRY), ("c", other)):
        await PgIntentLog(harness.pool).record(f"{tenant}:{key}", tenant, planned, 1512)
    posted_at = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
    await entries.record_posted(f"{tenant}:a", "41", True, posted_at)
    await entries.record_posted(f"{tenant}:c", "43", False, posted_at)

    assert await entries.known_references("inv_1") == {"41"}  # not b's (unposted), not c's
    assert await entries.known_references("inv_2") == {"43"}
    row = await harness.pool.fetchrow("SELECT * FROM entries WHERE entry_key = $1", f"{tenant}:a")
    assert (row["erp_reference"], row["adopted"], row["posted_at"]) == ("41", True, posted_at)


async def test_a_job_is_scheduled_once_per_key(harness: ServiceHarness[Deps]) -> None:
    tenant = new_tenant()
    due = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
    async with harness.pool.acquire() as conn:
        jobs = PgJobScheduler(conn)
        first = {"kind": "post-entry", "key": f"closing:{tenant}", "tenant_id": tenant}
        assert await jobs.schedule(**first, payload=ENTRY.payload(), due_at=due)
        assert not await jobs.schedule(**first, payload={}, due_at=due)
    [job] = [j for j in await harness.jobs() if j["tenant_id"] == tenant]
    assert job["due_at"] == due
    assert PlannedEntry.from_payload(json.loads(job["payload"])) == ENTRY


async def test_a_job_is_found_by_its_key_tenant_and_invoice(harness: ServiceHarness[Deps]) -> None:
    tenant = new_tenant()
    due = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
    key = f"payment:{tenant}-p1"
    async with harness.pool.acquire() as conn:
        jobs = PgJobScheduler(conn)
        await jobs.schedule(
            kind="post-entry", key=key, tenant_id=tenant, payload=ENTRY.payload(), due_at=due
        )
        found = {"kind": "post-entry", "key": key, "tenant_id": tenant}
        assert await jobs.exists(**found, invoice_id=ENTRY.invoice_id)
        assert not await jobs.exists(**found, invoice_id="inv_another")
        assert not await jobs.exists(
            **{**found, "tenant_id": "another"}, invoice_id=ENTRY.invoice_id
        )
        assert not await jobs.exists(
            **{**found, "kind": "close-invoice"}, invoice_id=ENTRY.invoice_id
        )


async def test_a_send_reported_before_the_invoice_was_seen_created_is_its_delivery(
    harness: ServiceHarness[Deps],
) -> None:
    """invoice.distributed ahead of invoice.created in one consumed batch (different topics
    come in any order): the document starts delivered, so its closing does not wait for a
    report that came already; a failure reported after the send does not undo it."""
    tenant = new_tenant()
    invoice = simple_invoice(tenant)
    sent = InvoiceDistributed(
        tenant_id=tenant,
        invoice_id=invoice.invoice_id,
        number=invoice.number,
        channel=Channel.EMAIL,
        document_format="pdf",
        recipient="ekonomi@kopare.example",
        distributed_at=dt.datetime.now(dt.UTC),
        partner_reference="<1@nordflow.localhost>",
    )
    await harness.deliver(
        envelope(sent, source="/distribution-router"),
        envelope(created(invoice, flow=Flow()), source="/mapper"),
    )
    row = await harness.pool.fetchrow(
        "SELECT delivery FROM documents WHERE invoice_id = $1", invoice.invoice_id
    )
    assert row["delivery"] == "delivered"
    assert (
        await harness.pool.fetchval(
            "SELECT count(*) FROM delivery_reports WHERE invoice_id = $1", invoice.invoice_id
        )
        == 0
    )

    # Reports of another invoice, the failure after the send: kept, the send wins.
    other = simple_invoice(tenant)
    async with harness.pool.acquire() as conn, conn.transaction():
        documents = PgDocumentRepository(conn)
        assert await documents.set_delivery(tenant, other.invoice_id, Delivery.DELIVERED) is None
        assert await documents.set_delivery(tenant, other.invoice_id, Delivery.FAILED) is None
        await documents.record_created(
            tenant, other.invoice_id, other.number, source("c", "8"), Delivery.PENDING
        )
        found = await documents.get(other.invoice_id)
    assert found is not None
    assert found.delivery is Delivery.DELIVERED


async def test_a_report_and_the_creation_applied_at_once_are_applied_one_after_the_other(
    harness: ServiceHarness[Deps],
) -> None:
    """Two replicas: one applies the send's report while the other applies the invoice's
    creation, in transactions open at the same time. The creation waits for the report's
    transaction, so it sees the kept report and the document starts delivered."""
    tenant = new_tenant()
    invoice = simple_invoice(tenant)
    async with harness.pool.acquire() as first, harness.pool.acquire() as second:
        report = first.transaction()
        await report.start()
        assert (
            await PgDocumentRepository(first).set_delivery(
                tenant, invoice.invoice_id, Delivery.DELIVERED
            )
            is None
        )

        async def create() -> None:
            async with second.transaction():
                await PgDocumentRepository(second).record_created(
                    tenant, invoice.invoice_id, invoice.number, source("c", "9"), Delivery.PENDING
                )

        creating = asyncio.create_task(create())
        await asyncio.sleep(0.5)
        assert not creating.done()  # waits for the report's transaction
        await report.commit()
        await asyncio.wait_for(creating, 10)
    row = await harness.pool.fetchrow(
        "SELECT delivery FROM documents WHERE invoice_id = $1", invoice.invoice_id
    )
    assert row["delivery"] == "delivered"
