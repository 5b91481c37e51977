"""service.decide_transfer on the real PostgreSQL: decisions, transfers, idempotency."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import asyncpg
import pytest
from factoring_gateway.domain import Agreement
from factoring_gateway.service import decide_transfer, load_agreement, set_agreement
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import AgreementKind, InvoiceCreated, InvoiceTransferred
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    Invoice,
    InvoiceLine,
    Party,
    Totals,
    VatBreakdown,
    VatCategory,
)

pytestmark = pytest.mark.integration

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)
TODAY = NOW.date()


def created_event(
    tenant_id: str,
    *,
    test_mode: bool = False,
    issue_date: dt.date = TODAY,
    document_type: DocumentType = DocumentType.INVOICE,
    payable: Decimal = Decimal("1250.00"),
    currency: str = "SEK",
) -> InvoiceCreated:
    """invoice.created for a one-line invoice (payable = net + 25 % VAT)."""
    net = (payable / Decimal("1.25")).quantize(Decimal("0.01"))
    invoice_id = f"inv_{uuid.uuid4().hex}"
    number = str(uuid.uuid4().int % 100_000)
    invoice = Invoice(
        invoice_id=invoice_id,
        tenant_id=tenant_id,
        source=SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id="conn-1",
            document_id=number,
            document_number=number,
        ),
        document_type=document_type,
        number=number,
        issue_date=issue_date,
        due_date=issue_date + dt.timedelta(days=30),
        currency=currency,
        seller=Party(name="Säljare AB", address=Address(country_code="SE")),
        buyer=Party(name="Köpare AB", address=Address(country_code="SE", city="Lund")),
        lines=(
            InvoiceLine(
                line_id="1",
                description="Konsult",
                quantity=Decimal(1),
                unit_price=net,
                net_amount=net,
                vat_category=VatCategory.STANDARD,
                vat_rate=Decimal(25),
            ),
        ),
        vat_breakdown=(
            VatBreakdown(
                category=VatCategory.STANDARD,
                rate=Decimal(25),
                taxable_amount=net,
                tax_amount=payable - net,
            ),
        ),
        totals=Totals(
            line_extension=net,
            tax_exclusive=net,
            tax_total=payable - net,
            tax_inclusive=payable,
            payable=payable,
        ),
        outstanding_amount=payable,
    )
    return InvoiceCreated(
        tenant_id=tenant_id,
        invoice_id=invoice_id,
        test_mode=test_mode,
        version="v1",
        invoice=invoice,
    )


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def with_agreement(conn: asyncpg.Connection, **changes: object) -> str:
    """A new tenant with a stored agreement (defaults changed by ``changes``)."""
    tenant = new_tenant()
    base = Agreement(tenant_id=tenant, provider="Nordic Factor AB", kind=AgreementKind.FACTORING)
    await set_agreement(conn, dataclasses.replace(base, **changes))
    return tenant


async def transfers(conn: asyncpg.Connection, invoice_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM transfers WHERE invoice_id = $1", invoice_id))


async def decision(conn: asyncpg.Connection, invoice_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM decisions WHERE invoice_id = $1", invoice_id)


async def test_an_eligible_invoice_is_transferred_once(conn: asyncpg.Connection) -> None:
    tenant = await with_agreement(conn, kind=AgreementKind.FINANCING)
    event = created_event(tenant, payable=Decimal("1437.50"))

    transferred = await decide_transfer(conn, event, NOW)

    assert isinstance(transferred, InvoiceTransferred)
    assert transferred.tenant_id == tenant
    assert transferred.invoice_id == event.invoice_id
    assert transferred.provider == "Nordic Factor AB"
    assert transferred.agreement_kind is AgreementKind.FINANCING
    assert transferred.amount == Decimal("1437.50")
    assert transferred.currency == "SEK"
    assert transferred.number == event.invoice.number
    assert transferred.document_type is DocumentType.INVOICE
    assert transferred.source == event.invoice.source
    assert transferred.transferred_at == NOW
    assert transferred.test_mode is False

    rows = await transfers(conn, event.invoice_id)
    assert len(rows) == 1
    assert rows[0]["transfer_id"] == transferred.transfer_id
    assert rows[0]["transfer_id"].startswith("tr_")
    assert rows[0]["amount"] == Decimal("1437.50")
    assert rows[0]["currency"] == "SEK"
    assert rows[0]["provider"] == "Nordic Factor AB"
    assert rows[0]["tenant_id"] == tenant
    recorded = await decision(conn, event.invoice_id)
    assert recorded is not None
    assert recorded["eligible"] is True
    assert recorded["reason"] == "eligible"


async def test_the_same_event_twice_transfers_once(conn: asyncpg.Connection) -> None:
    tenant = await with_agreement(conn)
    event = created_event(tenant)

    first = await decide_transfer(conn, event, NOW)
    second = await decide_transfer(conn, event, NOW + dt.timedelta(seconds=5))

    assert first is not None
    assert second is None
    rows = await transfers(conn, event.invoice_id)
    assert [r["transfer_id"] for r in rows] == [first.transfer_id]
    count = await conn.fetchval(
        "SELECT count(*) FROM decisions WHERE invoice_id = $1", event.invoice_id
    )
    assert count == 1


async def test_concurrent_deliveries_of_one_event_transfer_once(
    conn: asyncpg.Connection, fresh_database_url: str
) -> None:
    """Two consumers racing on the same invoice (e.g. after a rebalance) in two transactions."""
    tenant = await with_agreement(conn)
    event = created_event(tenant)
    other = await asyncpg.connect(
        fresh_database_url, server_settings={"search_path": "factoring_gateway"}
    )
    try:
        first_tx, second_tx = conn.transaction(), other.transaction()
        await first_tx.start()
        await second_tx.start()
        first = await decide_transfer(conn, event, NOW)
        racing = asyncio.create_task(decide_transfer(other, event, NOW))
        await asyncio.sleep(0.2)  # the second waits on the unique invoice id
        assert not racing.done()
        await first_tx.commit()
        second = await asyncio.wait_for(racing, 5)
        await second_tx.commit()
    finally:
        await other.close()
    assert first is not None
    assert second is None
    assert len(await transfers(conn, event.invoice_id)) == 1


async def test_test_mode_records_the_decision_and_transfers_nothing(
    conn: asyncpg.Connection,
) -> None:
    tenant = await with_agreement(conn)
    event = created_event(tenant, test_mode=True)

    assert await decide_transfer(conn, event, NOW) is None

    recorded = await decision(conn, event.invoice_id)
    assert recorded is not None
    assert recorded["eligible"] is False
    assert recorded["reason"] == "test mode: would be transferred"
    assert recorded["tenant_id"] == tenant
    assert await transfers(conn, event.invoice_id) == []


async def test_test_mode_keeps_the_real_reason_of_an_ineligible_invoice(
    conn: asyncpg.Connection,
) -> None:
    tenant = await with_agreement(conn)
    event = created_event(tenant, test_mode=True, currency="USD")

    assert await decide_transfer(conn, event, NOW) is None

    recorded = await decision(conn, event.invoice_id)
    assert recorded is not None
    assert recorded["reason"] == "currency USD is not covered by the agreement"


async def test_without_an_agreement_the_refusal_is_recorded(conn: asyncpg.Connection) -> None:
    event = created_event(new_tenant())

    assert await decide_transfer(conn, event, NOW) is None

    recorded = await decision(conn, event.invoice_id)
    assert recorded is not None
    assert recorded["eligible"] is False
    assert recorded["reason"] == "tenant has no factoring agreement"
    assert await transfers(conn, event.invoice_id) == []


async def test_another_tenants_agreement_does_not_apply(conn: asyncpg.Connection) -> None:
    await with_agreement(conn)
    event = created_event(new_tenant())
    assert await decide_transfer(conn, event, NOW) is None
    assert await transfers(conn, event.invoice_id) == []


async def test_stored_agreement_rules_are_applied(conn: asyncpg.Connection) -> None:
    tenant = await with_agreement(
        conn,
        enabled=True,
        max_age_days=10,
        include_credit_notes=False,
        payment_methods=frozenset({"BG"}),
        currencies=frozenset({"EUR"}),
    )
    loaded = await load_agreement(conn, tenant)
    assert loaded is not None
    assert loaded.payment_methods == frozenset({"BG"})
    assert loaded.currencies == frozenset({"EUR"})
    assert loaded.max_age_days == 10
    assert loaded.include_credit_notes is False

    event = created_event(tenant, currency="EUR")
    assert await decide_transfer(conn, event, NOW) is None
    recorded = await decision(conn, event.invoice_id)
    assert recorded is not None
    assert recorded["reason"] == "payment method None is not a factoring one"


async def test_replacing_an_agreement_disables_it(conn: asyncpg.Connection) -> None:
    tenant = await with_agreement(conn)
    await set_agreement(
        conn,
        Agreement(tenant_id=tenant, provider="Other", kind=AgreementKind.FACTORING, enabled=False),
    )
    event = created_event(tenant)
    assert await decide_transfer(conn, event, NOW) is None
    recorded = await decision(conn, event.invoice_id)
    assert recorded is not None
    assert recorded["reason"] == "agreement is disabled"


async def test_the_invoice_age_is_counted_in_stockholm_days(conn: asyncpg.Connection) -> None:
    tenant = await with_agreement(conn, max_age_days=30)
    late_evening = dt.datetime(2025, 3, 10, 23, 30, tzinfo=dt.UTC)  # 11 March 00:30 in Sweden
    event = created_event(tenant, issue_date=dt.date(2025, 2, 8))  # 30 days by UTC, 31 in Sweden

    assert await decide_transfer(conn, event, late_evening) is None
    recorded = await decision(conn, event.invoice_id)
    assert recorded is not None
    assert recorded["reason"] == "invoice date is more than 30 days back"


async def test_a_credit_note_is_transferred_with_its_positive_payable(
    conn: asyncpg.Connection,
) -> None:
    tenant = await with_agreement(conn)
    event = created_event(tenant, document_type=DocumentType.CREDIT_NOTE, payable=Decimal("500"))

    transferred = await decide_transfer(conn, event, NOW)

    assert transferred is not None
    assert transferred.document_type is DocumentType.CREDIT_NOTE
    assert transferred.amount == Decimal("500")
