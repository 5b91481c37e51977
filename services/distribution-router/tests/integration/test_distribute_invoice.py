"""service.routing.distribute_invoice on the real PostgreSQL: one delivery and one send job
per invoice.

Routing announces nothing but a document that can never be sent; the send job
(test_sending.py) emits invoice.distributed once the partner took it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
import pytest
from distribution_router.adapters.repositories import pg_repositories
from distribution_router.service.routing import distribute_invoice as distribute
from distribution_router.testing import Registered, fake_partners
from distribution_router.testing.invoices import created_event
from nordflow_schemas.events import (
    Channel,
    EventBody,
    Flow,
    InvoiceCreated,
    InvoiceDeliveryFailed,
)
from nordflow_schemas.invoice import Address, ElectronicAddress, Party, PartyType

pytestmark = pytest.mark.integration

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)


async def distribute_invoice(
    conn: asyncpg.Connection,
    event: InvoiceCreated,
    now: dt.datetime,
    registered: Registered | None = None,
) -> EventBody | None:
    """Route in one transaction, the SMP a stand-in (the real one: test_smp_lookup)."""
    async with conn.transaction():
        return await distribute(
            pg_repositories(conn), fake_partners({}, registered or Registered()), event, now
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


async def test_a_flow_without_distribution_is_recorded_as_not_sent_never_scheduled(
    conn: asyncpg.Connection,
) -> None:
    event = created_event(company(email="ekonomi@kund.example"))
    booked_only = event.model_copy(update={"flow": Flow(book_into="c-fortnox", factor=False,
                                                         distribute=False)})  # fmt: skip

    assert await distribute_invoice(conn, booked_only, NOW) is None

    [row] = await deliveries(conn, event.invoice_id)
    assert row["status"] == "not_sent"
    assert row["not_sent_reason"] == "the connection's flow excludes distribution"
    assert await send_jobs(conn, event.invoice_id) == []
    assert await distribute_invoice(conn, booked_only, NOW) is None  # once per invoice


async def test_a_paid_cash_receipt_is_never_sent_as_payable(conn: asyncpg.Connection) -> None:
    event = created_event(company(email="gast@hotell.example"))
    invoice = event.invoice
    paid = invoice.model_copy(
        update={
            "settled_by": "stripe",
            "totals": invoice.totals.model_copy(
                update={"prepaid": invoice.totals.payable, "payable": Decimal(0)}
            ),
        }
    )

    assert await distribute_invoice(conn, event.model_copy(update={"invoice": paid}), NOW) is None

    [row] = await deliveries(conn, event.invoice_id)
    assert row["status"] == "not_sent"
    assert "already paid via stripe" in row["not_sent_reason"]
    assert await send_jobs(conn, event.invoice_id) == []
