"""factoring-gateway on the real PostgreSQL: its repositories, and invoice.created through the
consumer's batch processing (inbox, outbox) to invoice.transferred."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from factoring_gateway.adapters.repository import PgAgreementRepository, PgTransferRepository
from factoring_gateway.deps import Deps
from factoring_gateway.domain import Agreement
from factoring_gateway.testing import app_for
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.envelope import envelope
from nordflow_schemas.events import AgreementKind, InvoiceTransferred
from nordflow_schemas.testing import created, new_tenant, simple_invoice, tenant_profile

pytestmark = pytest.mark.integration


async def test_agreements_round_trip_and_replace(harness: ServiceHarness[Deps]) -> None:
    repo = PgAgreementRepository(harness.pool)
    tenant = new_tenant()
    assert await repo.get(tenant) is None
    stored = Agreement(
        tenant_id=tenant,
        provider="Nordic Factor AB",
        kind=AgreementKind.FINANCING,
        max_age_days=10,
        include_credit_notes=False,
        payment_methods=frozenset({"BG"}),
        currencies=frozenset({"EUR"}),
    )
    await repo.save(stored)
    assert await repo.get(tenant) == stored
    replaced = Agreement(tenant_id=tenant, provider="Other", kind=AgreementKind.FACTORING)
    await repo.save(replaced)
    assert await repo.get(tenant) == replaced
    assert await repo.get(new_tenant()) is None


async def test_concurrent_deliveries_of_one_invoice_transfer_once(
    harness: ServiceHarness[Deps],
) -> None:
    """Two consumers racing on the same invoice (e.g. after a rebalance) in two transactions."""
    tenant = new_tenant()
    async with harness.pool.acquire() as first, harness.pool.acquire() as second:
        first_tx, second_tx = first.transaction(), second.transaction()
        await first_tx.start()
        await second_tx.start()
        now = dt.datetime.now(dt.UTC)
        kwargs = {
            "tenant_id": tenant,
            "invoice_id": "inv_race",
            "provider": "F",
            "amount": Decimal(1),
            "currency": "SEK",
            "transferred_at": now,
        }
        assert await PgTransferRepository(first).record_transfer(transfer_id="tr_1", **kwargs)
        racing = asyncio.create_task(
            PgTransferRepository(second).record_transfer(transfer_id="tr_2", **kwargs)
        )
        await asyncio.sleep(0.2)  # the second waits on the unique invoice id
        assert not racing.done()
        await first_tx.commit()
        assert await asyncio.wait_for(racing, 5) is False
        await second_tx.commit()
    rows = await harness.pool.fetch(
        "SELECT transfer_id FROM transfers WHERE tenant_id = $1", tenant
    )
    assert [r["transfer_id"] for r in rows] == ["tr_1"]


async def test_invoice_created_is_transferred_once_through_the_consumer(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    await PgAgreementRepository(harness.pool).save(
        Agreement(tenant_id=tenant, provider="Factor AS", kind=AgreementKind.FACTORING)
    )
    invoice = simple_invoice(tenant, issue_date=dt.date.today(), country="NO", currency="NOK")
    event = envelope(created(invoice), source="/mapper", subject=invoice.number)

    out = await harness.deliver(event, event)

    [transferred] = out.of(InvoiceTransferred)
    assert transferred.invoice_id == invoice.invoice_id
    assert out.events[0].subject == invoice.number
    assert (await harness.deliver(event)).events == []


async def test_a_norwegian_tenants_day_follows_its_profile(database_url: str) -> None:
    """With its profile (Europe/Oslo) delivered, a 30-day-old invoice is judged in Oslo days;
    the same invoice of a tenant whose profile says Atlantic/Reykjavik (UTC) is still young."""
    late_evening = dt.datetime(2025, 3, 10, 23, 30, tzinfo=dt.UTC)  # 11 March in Oslo
    harness = await ServiceHarness.start(
        app_for(database_url), database_url, deps=Deps(clock=lambda: late_evening)
    )
    try:
        oslo, reykjavik = new_tenant(), new_tenant()
        await harness.tenant(oslo, tenant_profile("NO"))
        await harness.tenant(reykjavik, tenant_profile("NO", time_zone="Atlantic/Reykjavik"))
        for tenant in (oslo, reykjavik):
            await PgAgreementRepository(harness.pool).save(
                Agreement(tenant_id=tenant, provider="Factor AS", kind=AgreementKind.FACTORING)
            )
        old = dt.date(2025, 2, 8)
        in_oslo = simple_invoice(oslo, issue_date=old, country="NO", currency="NOK")
        in_reykjavik = simple_invoice(reykjavik, issue_date=old, country="NO", currency="NOK")

        assert (await harness.publish(created(in_oslo))).events == []
        assert len((await harness.publish(created(in_reykjavik))).of(InvoiceTransferred)) == 1
        reason = await harness.pool.fetchval(
            "SELECT reason FROM decisions WHERE invoice_id = $1", in_oslo.invoice_id
        )
        assert reason == "invoice date is more than 30 days back"
    finally:
        await harness.close()
