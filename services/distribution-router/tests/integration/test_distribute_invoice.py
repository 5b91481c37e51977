"""service.distribute_invoice on the real PostgreSQL: one delivery and one send job per invoice.

Routing announces nothing but a document that can never be sent; the send job
(test_sending.py) emits invoice.distributed once the partner took it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import asyncpg
import pytest
from distribution_router import service
from nordflow_documents.registry import default_registry
from nordflow_documents.validation import shared_validator
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import (
    Channel,
    InvoiceCreated,
    InvoiceDeliveryFailed,
)
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    ElectronicAddress,
    Invoice,
    InvoiceLine,
    Party,
    PartyType,
    Totals,
    VatBreakdown,
    VatCategory,
)

pytestmark = pytest.mark.integration

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)


class Registered:
    """A stand-in SMP (the real one is tested in test_smp_lookup): who is in PEPPOL."""

    def __init__(self, *participants: tuple[str, str]) -> None:
        self.participants = set(participants)

    async def accepts(self, scheme: str, value: str, document_type: str) -> bool:
        return (scheme, value) in self.participants


async def distribute_invoice(conn, event, now, registered=Registered()):  # noqa: B008
    return await service.distribute_invoice(
        conn,
        event,
        now,
        lookup=registered,
        renderers=default_registry(),
        validator=shared_validator(),
    )


def created_event(
    buyer: Party, *, test_mode: bool = False, buyer_reference: str | None = "Inköp"
) -> InvoiceCreated:
    """invoice.created for a one-line invoice to ``buyer`` in a new tenant."""
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    invoice_id = f"inv_{uuid.uuid4().hex}"
    number = str(uuid.uuid4().int % 100_000)
    invoice = Invoice(
        invoice_id=invoice_id,
        tenant_id=tenant,
        source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c1", document_id=number),
        document_type=DocumentType.INVOICE,
        number=number,
        issue_date=NOW.date(),
        currency="SEK",
        seller=Party(
            name="Säljare AB",
            company_id="556036-0793",
            vat_id="SE556036079301",
            address=Address(
                lines=("Gatan 1",), city="Stockholm", postal_code="11122", country_code="SE"
            ),
        ),
        buyer=buyer,
        due_date=NOW.date() + dt.timedelta(days=30),
        buyer_reference=buyer_reference,
        lines=(
            InvoiceLine(
                line_id="1",
                description="Vara",
                quantity=Decimal(2),
                unit_price=Decimal(50),
                net_amount=Decimal(100),
                vat_category=VatCategory.STANDARD,
                vat_rate=Decimal(25),
            ),
        ),
        vat_breakdown=(
            VatBreakdown(
                category=VatCategory.STANDARD,
                rate=Decimal(25),
                taxable_amount=Decimal(100),
                tax_amount=Decimal(25),
            ),
        ),
        totals=Totals(
            line_extension=Decimal(100),
            tax_exclusive=Decimal(100),
            tax_total=Decimal(25),
            tax_inclusive=Decimal(125),
            payable=Decimal(125),
        ),
    )
    return InvoiceCreated(
        tenant_id=tenant, invoice_id=invoice_id, test_mode=test_mode, version="v1", invoice=invoice
    )


def company(
    *, email: str | None = None, electronic_address: ElectronicAddress | None = None
) -> Party:
    return Party(
        name="Kund AB",
        email=email,
        electronic_address=electronic_address,
        address=Address(country_code="SE", city="Luleå"),
    )


async def deliveries(conn: asyncpg.Connection, invoice_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM deliveries WHERE invoice_id = $1", invoice_id))


async def send_jobs(conn: asyncpg.Connection, invoice_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT * FROM jobs WHERE kind = 'send-invoice' AND job_key = $1", invoice_id
        )
    )


async def test_an_invoice_is_routed_recorded_and_scheduled(conn: asyncpg.Connection) -> None:
    event = created_event(
        company(electronic_address=ElectronicAddress(scheme="0007", value="5560360793"))
    )

    outcome = await distribute_invoice(conn, event, NOW, Registered(("0007", "5560360793")))

    assert outcome is None  # nothing is announced before the partner took it
    rows = await deliveries(conn, event.invoice_id)
    assert len(rows) == 1
    row = rows[0]
    assert (row["tenant_id"], row["number"], row["channel"], row["recipient"]) == (
        event.tenant_id,
        event.invoice.number,
        "peppol",
        "0007:5560360793",
    )
    assert row["test_mode"] is False
    assert row["distributed_at"] == NOW
    assert row["status"] == "scheduled"
    assert row["document_format"] == "peppol-bis-billing-3"
    assert len(row["document_sha256"]) == 64
    (job,) = await send_jobs(conn, event.invoice_id)
    assert (job["state"], job["due_at"], job["tenant_id"]) == ("pending", NOW, event.tenant_id)


async def test_a_document_breaking_the_rules_is_not_sent_and_names_them(
    conn: asyncpg.Connection,
) -> None:
    address = ElectronicAddress(scheme="0007", value="5560360793")
    event = created_event(company(electronic_address=address), buyer_reference=None)

    failed = await distribute_invoice(conn, event, NOW, Registered(("0007", "5560360793")))

    assert isinstance(failed, InvoiceDeliveryFailed)
    assert failed.channel is Channel.PEPPOL
    assert {e.rule for e in failed.errors} == {"PEPPOL-EN16931-R003"}
    row = (await deliveries(conn, event.invoice_id))[0]
    assert row["status"] == "failed"
    assert "PEPPOL-EN16931-R003" in row["errors"]
    assert await distribute_invoice(conn, event, NOW, Registered(("0007", "5560360793"))) is None


async def test_an_unregistered_electronic_address_falls_back_to_email(
    conn: asyncpg.Connection,
) -> None:
    address = ElectronicAddress(scheme="0007", value="5560360793")
    event = created_event(company(electronic_address=address, email="f@kund.example"))
    assert await distribute_invoice(conn, event, NOW) is None
    assert [r["channel"] for r in await deliveries(conn, event.invoice_id)] == ["email"]


async def test_distributing_twice_keeps_one_row_and_emits_once(conn: asyncpg.Connection) -> None:
    event = created_event(company(email="faktura@kund.example"))

    await distribute_invoice(conn, event, NOW)
    second = await distribute_invoice(conn, event, NOW + dt.timedelta(minutes=1))

    assert second is None
    rows = await deliveries(conn, event.invoice_id)
    assert len(rows) == 1
    assert rows[0]["channel"] == "email"
    assert rows[0]["distributed_at"] == NOW
    assert len(await send_jobs(conn, event.invoice_id)) == 1


async def test_test_mode_records_the_route_and_emits_nothing(conn: asyncpg.Connection) -> None:
    event = created_event(company(), test_mode=True)

    assert await distribute_invoice(conn, event, NOW) is None

    rows = await deliveries(conn, event.invoice_id)
    assert len(rows) == 1
    assert rows[0]["test_mode"] is True
    assert rows[0]["channel"] == "paper"
    assert rows[0]["recipient"] == "post: Luleå"
    assert rows[0]["status"] == "test"
    assert await send_jobs(conn, event.invoice_id) == []
    assert await distribute_invoice(conn, event, NOW) is None
    assert len(await deliveries(conn, event.invoice_id)) == 1


async def test_a_private_buyer_is_recorded_on_email(conn: asyncpg.Connection) -> None:
    private = Party(
        name="Anna Andersson",
        party_type=PartyType.PRIVATE,
        electronic_address=ElectronicAddress(scheme="0007", value="5560360793"),
        email="anna@example.se",
        address=Address(country_code="SE"),
    )
    event = created_event(private)
    assert await distribute_invoice(conn, event, NOW) is None
    assert [r["channel"] for r in await deliveries(conn, event.invoice_id)] == ["email"]


async def test_distinct_invoices_get_distinct_rows(conn: asyncpg.Connection) -> None:
    events = [created_event(company(email=f"k{i}@kund.example")) for i in range(3)]
    results = [await distribute_invoice(conn, e, NOW) for e in events]
    assert results == [None, None, None]
    count = await conn.fetchval(
        "SELECT count(*) FROM deliveries WHERE invoice_id = ANY($1::text[])",
        [e.invoice_id for e in events],
    )
    assert count == 3
