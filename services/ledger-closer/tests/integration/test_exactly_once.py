"""One payment per entry in the ERP, also when the ERP applied it but answered with an error:
invoice.transferred / payment.received through the consumer's batch processing, the
post-entry job against the Fortnox sandbox, ledger.entry.posted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import asyncpg
import pytest
from ledger_closer.adapters.repository import PgConnectionRepository
from ledger_closer.deps import Deps
from ledger_closer.testing import (
    payment_received,
    sandbox_invoice,
    sandbox_payments,
    source,
    transferred,
    write_connection,
)
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import Emitted, ServiceHarness
from nordflow_sandboxes.fortnox.testing import (
    FaultSpec,
    RunningFortnoxSandbox,
    running_fortnox_sandbox,
)
from nordflow_schemas.events import EntryKind, JobFailed, LedgerEntryPosted
from nordflow_schemas.testing import new_tenant, tenant_profile

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox() -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox() as running:
        yield running


async def connect(
    harness: ServiceHarness[Deps], box: SecretBox, sandbox: RunningFortnoxSandbox, token: str
) -> str:
    """A new tenant whose write connection is the sandbox company of ``token``."""
    tenant = new_tenant()
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            tenant, f"{tenant}-fx", base_url=sandbox.base_url, token_sealed=box.seal(token)
        )
    )
    return tenant


async def run_until_finished(harness: ServiceHarness[Deps], tenant: str) -> tuple[dict, Emitted]:
    """Run the tenant's job, its retries made due at once, until it is done or failed."""
    emitted = Emitted()
    for _ in range(20):
        out = await harness.run_jobs(include_future=True)
        emitted.events += out.events
        [job] = [j for j in await harness.jobs() if j["tenant_id"] == tenant]
        if job["state"] != "pending":
            return dict(job), emitted
    raise AssertionError(f"job still pending: {dict(job)}")


async def entry_row(harness: ServiceHarness[Deps], tenant: str) -> asyncpg.Record:
    return await harness.pool.fetchrow("SELECT * FROM entries WHERE tenant_id = $1", tenant)


async def test_payment_posted_once_with_event(
    sandbox: RunningFortnoxSandbox, harness: ServiceHarness[Deps], box: SecretBox
) -> None:
    company = sandbox.create_company()
    number, total = sandbox_invoice(sandbox.base_url, company.headers)
    tenant = await connect(harness, box, sandbox, company.token)
    event = transferred(tenant, source_ref=source(f"{tenant}-fx", number), amount=total)

    await harness.publish(event)
    await harness.publish(event)  # a second copy (another event id): once per invoice
    assert len(await harness.jobs()) == 1
    job, out = await run_until_finished(harness, tenant)

    assert job["state"] == "done"
    payments = sandbox_payments(sandbox.base_url, company.headers, number)
    assert len(payments) == 1
    entry = await entry_row(harness, tenant)
    assert entry["erp_reference"] == str(payments[0]["Number"])
    assert not entry["adopted"]
    [posted] = out.of(LedgerEntryPosted)
    assert out.events[0].subject == number
    assert posted.erp_reference == entry["erp_reference"]
    assert (posted.entry_kind, posted.amount, posted.account) == (
        EntryKind.CLOSING_ENTRY,
        total,
        "1512",
    )
    assert len((await harness.emitted()).events) == 1


async def test_erp_applied_but_answered_500_is_adopted_not_doubled(
    sandbox: RunningFortnoxSandbox, harness: ServiceHarness[Deps], box: SecretBox
) -> None:
    company = sandbox.create_company()
    number, total = sandbox_invoice(sandbox.base_url, company.headers)
    with sandbox.admin() as admin:
        admin.inject_fault(
            company.token,
            FaultSpec(
                status=500,
                count=1,
                path_prefix="/3/invoicepayments",
                method="POST",
                after_commit=True,
            ),
        )
    tenant = await connect(harness, box, sandbox, company.token)
    await harness.publish(
        transferred(tenant, source_ref=source(f"{tenant}-fx", number), amount=total)
    )

    job, out = await run_until_finished(harness, tenant)

    assert job["state"] == "done", job["last_error"]
    assert job["attempts"] == 2
    payments = sandbox_payments(sandbox.base_url, company.headers, number)
    assert len(payments) == 1, payments
    entry = await entry_row(harness, tenant)
    assert entry["adopted"]
    assert entry["attempts"] == 1  # the intent row survived the failed first attempt
    assert entry["erp_reference"] == str(payments[0]["Number"])
    assert [p.erp_reference for p in out.of(LedgerEntryPosted)] == [entry["erp_reference"]]


async def test_a_refusal_fails_the_job_visibly_without_writing(
    sandbox: RunningFortnoxSandbox, harness: ServiceHarness[Deps], box: SecretBox
) -> None:
    company = sandbox.create_company()
    tenant = await connect(harness, box, sandbox, company.token)
    await harness.publish(
        transferred(tenant, source_ref=source(f"{tenant}-fx", "99999"), amount=Decimal("10"))
    )

    job, out = await run_until_finished(harness, tenant)

    assert job["state"] == "failed"
    assert "ERP refused the entry" in job["last_error"]
    assert company.token not in job["last_error"]
    assert out.of(LedgerEntryPosted) == []
    [failed] = out.of(JobFailed)  # the runtime announces it to operators
    assert (failed.kind, failed.job_key) == ("close-invoice", job["job_key"])
    assert company.token not in failed.error
    assert (await entry_row(harness, tenant))["erp_reference"] is None


async def test_a_reported_payment_is_booked_on_the_bank_account(
    sandbox: RunningFortnoxSandbox, harness: ServiceHarness[Deps], box: SecretBox
) -> None:
    company = sandbox.create_company()
    number, _ = sandbox_invoice(
        sandbox.base_url, company.headers, invoice_date=dt.date(2026, 11, 2)
    )
    tenant = await connect(harness, box, sandbox, company.token)
    paid_on = dt.date(2026, 11, 20)
    await harness.publish(
        payment_received(
            tenant, source_ref=source(f"{tenant}-fx", number), amount=Decimal("100.00"),
            paid_on=paid_on,
        )
    )  # fmt: skip

    job, out = await run_until_finished(harness, tenant)

    assert job["state"] == "done", job["last_error"]
    [payment] = sandbox_payments(sandbox.base_url, company.headers, number)
    [posted] = out.of(LedgerEntryPosted)
    assert posted.entry_kind is EntryKind.INVOICE_PAYMENT
    assert posted.account == "1930"
    assert posted.erp_reference == str(payment["Number"])
    assert Decimal(str(payment["Amount"])) == Decimal("100.00")
    assert payment["PaymentDate"] == paid_on.isoformat()


@pytest.mark.parametrize(("test_mode", "recorded_at_source"), [(False, True), (True, False)])
async def test_payment_already_in_the_erp_or_in_test_mode_is_not_booked(
    harness: ServiceHarness[Deps], test_mode: bool, recorded_at_source: bool
) -> None:
    tenant = new_tenant()
    payment = payment_received(tenant, test_mode=test_mode, recorded_at_source=recorded_at_source)
    await harness.publish(payment)
    assert await harness.jobs() == []
    booked = payment.model_copy(update={"test_mode": False, "recorded_at_source": False})
    await harness.publish(booked)  # the same payment, reported by a bank
    assert len(await harness.jobs()) == 1


async def test_the_closing_is_dated_in_the_tenants_zone_from_its_profile(
    sandbox: RunningFortnoxSandbox, harness: ServiceHarness[Deps], box: SecretBox
) -> None:
    """Early on 24 November UTC: the 24th in Oslo (and Stockholm), the 23rd in New York. The
    profiles come from tenant.updated, kept in the service's own copy."""
    moment = dt.datetime(2026, 11, 24, 3, 30, tzinfo=dt.UTC)
    company = sandbox.create_company()
    dates = {}
    for zone in ("Europe/Oslo", "America/New_York"):
        number, total = sandbox_invoice(
            sandbox.base_url, company.headers, invoice_date=dt.date(2026, 11, 20)
        )
        tenant = await connect(harness, box, sandbox, company.token)
        await harness.tenant(tenant, tenant_profile("NO", time_zone=zone))
        await harness.publish(
            transferred(
                tenant, source_ref=source(f"{tenant}-fx", number), amount=total,
                transferred_at=moment,
            )
        )  # fmt: skip
        job, _ = await run_until_finished(harness, tenant)
        assert job["state"] == "done", job["last_error"]
        [payment] = sandbox_payments(sandbox.base_url, company.headers, number)
        dates[zone] = payment["PaymentDate"]
    assert dates == {"Europe/Oslo": "2026-11-24", "America/New_York": "2026-11-23"}
