"""holds on the real PostgreSQL: policies, attachments during a hold, early release."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import pytest
from distribution_router.adapters.channels.base import Attachment
from distribution_router.adapters.repositories import PgHoldRepository, pg_repositories
from distribution_router.service import holds
from distribution_router.testing import held_invoice
from nordflow_runtime import jobs

pytestmark = pytest.mark.integration

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)
PDF = b"%PDF-1.7 terms"
PNG = b"\x89PNG\r\n\x1a\n photo"


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def new_invoice() -> str:
    return f"inv_{uuid.uuid4().hex}"


async def test_no_policy_means_no_hold(conn):
    assert (
        await holds.hold_until(
            PgHoldRepository(conn), tenant_id=new_tenant(), customer_key="1", now=NOW
        )
        is None
    )


async def test_a_customers_policy_wins_over_the_tenants(conn):
    tenant = new_tenant()
    await holds.set_policy(
        PgHoldRepository(conn),
        tenant_id=tenant,
        customer_key=None,
        enabled=True,
        duration=dt.timedelta(days=2),
    )
    await holds.set_policy(
        PgHoldRepository(conn),
        tenant_id=tenant,
        customer_key="17",
        enabled=True,
        duration=dt.timedelta(hours=1),
    )
    await holds.set_policy(
        PgHoldRepository(conn),
        tenant_id=tenant,
        customer_key="18",
        enabled=False,
        duration=dt.timedelta(hours=1),
    )

    async def until(customer: str) -> dt.datetime | None:
        return await holds.hold_until(
            PgHoldRepository(conn), tenant_id=tenant, customer_key=customer, now=NOW
        )

    assert await until("17") == NOW + dt.timedelta(hours=1)
    assert await until("18") is None  # the customer is exempt from the tenant's default
    assert await until("19") == NOW + dt.timedelta(days=2)
    # Another tenant's policies do not apply.
    assert (
        await holds.hold_until(
            PgHoldRepository(conn), tenant_id=new_tenant(), customer_key="17", now=NOW
        )
        is None
    )
    # Without the tenant's default only customer 17 is held.
    assert await holds.delete_policy(PgHoldRepository(conn), tenant_id=tenant, customer_key=None)
    assert await until("19") is None
    assert await until("17") == NOW + dt.timedelta(hours=1)


async def test_a_policy_duration_outside_the_limits_is_refused(conn):
    with pytest.raises(ValueError, match="duration"):
        await holds.set_policy(
            PgHoldRepository(conn),
            tenant_id=new_tenant(),
            customer_key=None,
            enabled=True,
            duration=dt.timedelta(days=91),
        )


async def test_files_attached_during_the_hold_travel_in_order(conn):
    tenant, invoice = new_tenant(), new_invoice()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    for first in (True, False):  # redelivered: the first hold stands
        async with conn.transaction():
            assert first == await holds.start_hold(
                pg_repositories(conn),
                tenant_id=tenant,
                invoice_id=invoice,
                customer_key="17",
                until=until,
            )
    for name, kind, content in (("terms.pdf", "application/pdf", PDF), ("a.png", "image/png", PNG)):
        async with conn.transaction():
            await holds.add_attachment(
                pg_repositories(conn),
                tenant_id=tenant,
                invoice_id=invoice,
                filename=name,
                content_type=kind,
                content=content,
            )
    async with conn.transaction():
        attached = await holds.attachments(PgHoldRepository(conn), invoice)
    assert attached == (
        Attachment("terms.pdf", "application/pdf", PDF),
        Attachment("a.png", "image/png", PNG),
    )
    assert [
        h.invoice_id for h in await holds.open_holds(PgHoldRepository(conn), tenant_id=tenant)
    ] == [invoice]
    assert await holds.attachments(PgHoldRepository(conn), new_invoice()) == ()


async def test_another_tenant_cannot_attach_or_release(conn):
    tenant, invoice = new_tenant(), new_invoice()
    async with conn.transaction():
        await holds.start_hold(
            pg_repositories(conn),
            tenant_id=tenant,
            invoice_id=invoice,
            customer_key="17",
            until=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
    with pytest.raises(holds.HoldNotFoundError):
        await holds.add_attachment(
            pg_repositories(conn),
            tenant_id=new_tenant(),
            invoice_id=invoice,
            filename="x.pdf",
            content_type="application/pdf",
            content=PDF,
        )
    with pytest.raises(holds.HoldNotFoundError):
        await holds.release_hold(
            pg_repositories(conn),
            tenant_id=new_tenant(),
            invoice_id=invoice,
            released_by="someone",
        )
    assert await holds.open_holds(PgHoldRepository(conn), tenant_id=new_tenant()) == []


async def test_an_elapsed_hold_takes_no_more_files(conn):
    tenant, invoice = new_tenant(), new_invoice()
    async with conn.transaction():
        await holds.start_hold(
            pg_repositories(conn),
            tenant_id=tenant,
            invoice_id=invoice,
            customer_key="17",
            until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
        )
    with pytest.raises(holds.HoldClosedError, match="ended at"):
        await holds.add_attachment(
            pg_repositories(conn),
            tenant_id=tenant,
            invoice_id=invoice,
            filename="late.pdf",
            content_type="application/pdf",
            content=PDF,
        )
    assert await holds.open_holds(PgHoldRepository(conn), tenant_id=tenant) == []


async def test_release_makes_the_pending_send_job_due_now_and_closes_the_hold(conn):
    tenant, invoice = new_tenant(), new_invoice()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    await held_invoice(conn, tenant, until, invoice)
    async with conn.transaction():
        released = await holds.release_hold(
            pg_repositories(conn),
            tenant_id=tenant,
            invoice_id=invoice,
            released_by="api token 'panel'",
        )
        released_at = await conn.fetchval("SELECT now()")
    assert released.released_at == released_at
    assert released.released_by == "api token 'panel'"
    assert not released.is_open(dt.datetime.now(dt.UTC))
    job = await conn.fetchrow(
        "SELECT due_at, state FROM jobs WHERE kind = $1 AND job_key = $2",
        holds.SEND_JOB_KIND,
        invoice,
    )
    assert job["state"] == "pending"
    assert job["due_at"] == released_at
    with pytest.raises(holds.HoldClosedError, match="released"):
        async with conn.transaction():
            await holds.add_attachment(
                pg_repositories(conn),
                tenant_id=tenant,
                invoice_id=invoice,
                filename="late.pdf",
                content_type="application/pdf",
                content=PDF,
            )
    with pytest.raises(holds.HoldClosedError):
        async with conn.transaction():
            await holds.release_hold(
                pg_repositories(conn), tenant_id=tenant, invoice_id=invoice, released_by="x"
            )


async def test_release_leaves_a_job_that_already_ran_alone(conn: asyncpg.Connection):
    tenant, invoice = new_tenant(), new_invoice()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    await jobs.schedule(
        conn,
        kind=holds.SEND_JOB_KIND,
        key=invoice,
        tenant_id=tenant,
        payload={},
        due_at=until,
    )
    await conn.execute("UPDATE jobs SET state = 'done' WHERE job_key = $1", invoice)
    async with conn.transaction():
        await holds.start_hold(
            pg_repositories(conn),
            tenant_id=tenant,
            invoice_id=invoice,
            customer_key="1",
            until=until,
        )
    async with conn.transaction():
        await holds.release_hold(
            pg_repositories(conn), tenant_id=tenant, invoice_id=invoice, released_by="x"
        )
    assert await conn.fetchval("SELECT due_at FROM jobs WHERE job_key = $1", invoice) == until


async def test_the_send_waits_for_an_upload_in_flight_and_sends_its_file(conn, pool):
    tenant, invoice = new_tenant(), new_invoice()
    async with conn.transaction():
        await holds.start_hold(
            pg_repositories(conn),
            tenant_id=tenant,
            invoice_id=invoice,
            customer_key="17",
            until=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
    async with pool.acquire() as upload, pool.acquire() as send:
        uploading = upload.transaction()
        await uploading.start()
        await holds.add_attachment(
            pg_repositories(upload),
            tenant_id=tenant,
            invoice_id=invoice,
            filename="late.pdf",
            content_type="application/pdf",
            content=PDF,
        )

        async def read_for_send() -> tuple[Attachment, ...]:
            async with send.transaction():
                return await holds.attachments(PgHoldRepository(send), invoice)

        reading = asyncio.create_task(read_for_send())
        send_pid = send.get_server_pid()
        # The send's read queues behind the upload's lock on the hold row ...
        while not await conn.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", send_pid
        ):
            assert not reading.done()
            await asyncio.sleep(0.01)
        await uploading.commit()
        # ... and so sees the file once the upload committed.
        assert await reading == (Attachment("late.pdf", "application/pdf", PDF),)
