"""invoice.created and invoice.updated a consumed batch at a time, on the real PostgreSQL
through the runtime's batch processing (ServiceHarness): the same decisions and rows as the
same records one by one (duplicates, copies, an invoice created and updated in one batch,
credit notes beside their originals), and a bad record set aside while the rest of its
batch is decided."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from factoring_gateway.adapters.repositories import PgAgreementRepository, PgInvoiceRepository
from factoring_gateway.deps import Deps
from factoring_gateway.domain.batches import InvoiceState, OfferedInvoice
from factoring_gateway.domain.transfer import TransferSecret
from factoring_gateway.service.agreements import set_agreement
from factoring_gateway.testing import agreement, app_for, sample_invoice
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.envelope import Envelope, envelope
from nordflow_schemas.events import (
    Flow,
    InvoiceCreated,
    InvoiceFactoringDecided,
    InvoiceUpdated,
)
from nordflow_schemas.invoice import DocumentType, Invoice, InvoiceReference
from nordflow_schemas.testing import new_tenant, tenant_profile

pytestmark = pytest.mark.integration

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def two(database_url: str) -> AsyncIterator[tuple[ServiceHarness[Deps], ...]]:
    """Two copies of the service, each on a schema of its own."""
    first = await ServiceHarness.start(app_for(database_url), database_url)
    second = await ServiceHarness.start(app_for(database_url), database_url)
    yield first, second
    await first.close()
    await second.close()


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[ServiceHarness[Deps]]:
    """The service on a schema of its own (no factor: nothing is transferred here)."""
    harness = await ServiceHarness.start(app_for(database_url), database_url)
    yield harness
    await harness.close()


async def prepare(harness: ServiceHarness[Deps], one: str, other: str) -> None:
    """``one``: an agreement, Oslo's zone; ``other``: SEK then NOK, London's zone."""
    await harness.tenant(one, tenant_profile("NO"))
    await harness.tenant(other, tenant_profile("SE", time_zone="Europe/London"))
    deps = harness.deps
    for terms in (
        agreement(one),
        agreement(other, f"{other}-sek", currencies=frozenset({"SEK"})),
        agreement(other, f"{other}-nok", currencies=frozenset({"NOK"})),
    ):
        async with harness.pool.acquire() as conn, conn.transaction():
            await set_agreement(
                deps.repositories(conn),
                deps.formats,
                deps.sealer,
                terms,
                TransferSecret(password="pw"),
                deps.clock(),
            )


def created(invoice: Invoice, **changes: Any) -> Envelope[InvoiceCreated]:
    body = InvoiceCreated(
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.invoice_id,
        version="v1",
        invoice=invoice,
        **changes,
    )
    return envelope(body, source="/mapper", subject=invoice.number)


def updated(invoice: Invoice, version: str) -> Envelope[InvoiceUpdated]:
    body = InvoiceUpdated(
        tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, version=version, invoice=invoice
    )
    return envelope(body, source="/mapper", subject=invoice.number)


def paid(invoice: Invoice) -> Invoice:
    return invoice.model_copy(update={"outstanding_amount": Decimal(0)})


def a_mix(one: str, other: str) -> list[Envelope[Any]]:
    """Records of every kind, in the order a batch would hold them."""
    today = dt.date.today()
    inv = {n: sample_invoice(one, n, issue_date=today) for n in ("1", "2", "3", "4", "5")}
    credit_by_id = sample_invoice(
        one, "91", document_type=DocumentType.CREDIT_NOTE, credited=inv["1"], issue_date=today
    )
    credit_by_number = sample_invoice(
        one, "92", document_type=DocumentType.CREDIT_NOTE, credited=inv["2"], issue_date=today
    ).model_copy(update={"preceding_invoice": InvoiceReference(number="2")})
    first = dataclasses.replace(created(inv["1"]), traceparent=TRACE)
    return [
        first,
        created(inv["2"]),
        first,  # the same record again: the inbox drops it
        created(paid(inv["1"])),  # another copy of invoice 1: decided once, the first time
        created(inv["3"], flow=Flow(factor=False)),
        created(inv["4"], test_mode=True),
        created(credit_by_id),
        created(credit_by_number),
        created(inv["5"]),
        updated(paid(inv["5"]), "v2"),  # created and paid in one batch: withdrawn
        updated(paid(inv["2"]), "v1"),  # the version it was decided in: nothing to do
        created(sample_invoice(other, "1", issue_date=today)),
        created(sample_invoice(other, "2", issue_date=today, currency="SEK")),
        created(sample_invoice(other, "3", issue_date=today, currency="USD")),
        created(sample_invoice(new_tenant(), "1", issue_date=today)),  # no agreement
        updated(sample_invoice(other, "9", issue_date=today), "v2"),  # not created: kept
    ]


def decisions_of(events: list[InvoiceFactoringDecided]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude={"decided_at"}) for e in events]


async def rows(harness: ServiceHarness[Deps]) -> list[dict[str, Any]]:
    found = await harness.pool.fetch(
        "SELECT invoice_id, tenant_id, number, document_type, state, reason, agreement_id, "
        "payment_reference, flow::text, invoice::text, version, batch_id, factor_due_date, "
        "traceparent, tracestate FROM invoices ORDER BY invoice_id"
    )
    return [dict(r) for r in found]


async def early_rows(harness: ServiceHarness[Deps]) -> list[dict[str, Any]]:
    found = await harness.pool.fetch(
        "SELECT invoice_id, tenant_id, version, invoice::text FROM early_versions "
        "ORDER BY invoice_id"
    )
    return [dict(r) for r in found]


async def test_a_batch_decides_and_keeps_what_its_records_one_by_one_do(
    two: tuple[ServiceHarness[Deps], ServiceHarness[Deps]],
) -> None:
    batched, alone = two
    one, other = new_tenant(), new_tenant()
    for harness in two:
        await prepare(harness, one, other)
    mix = a_mix(one, other)

    at_once = await batched.deliver(*mix)
    one_by_one = [await alone.deliver(env) for env in mix]

    decided = at_once.of(InvoiceFactoringDecided)
    assert decisions_of(decided) == decisions_of(
        [d for out in one_by_one for d in out.of(InvoiceFactoringDecided)]
    )
    assert await rows(batched) == await rows(alone)
    assert await early_rows(batched) == await early_rows(alone)
    assert at_once.dead_letters == []
    by_number = {d.number: d for d in decided if d.tenant_id == one}
    assert sorted(by_number) == ["1", "2", "4", "5", "91", "92"]  # 3's flow excludes factoring
    assert all(by_number[n].eligible for n in ("1", "2", "5", "91", "92"))
    assert by_number["4"].reason == f"test mode: would be transferred under {one}-factor"
    states = {r["number"]: r["state"] for r in await rows(batched) if r["tenant_id"] == one}
    assert states == {
        "1": "pending",
        "2": "pending",
        "3": "not_offered",
        "4": "test",
        "5": "withdrawn",
        "91": "pending",
        "92": "pending",
    }
    theirs = [(d.number, d.agreement_id) for d in decided if d.tenant_id == other]
    assert theirs == [("1", f"{other}-nok"), ("2", f"{other}-sek"), ("3", None)]
    # The decision continues its creation's trace, and keeps it for the transfer's events.
    [first] = [e for e in at_once.events if e.body.invoice_id == mix[0].body.invoice_id]
    assert (first.traceparent or "").split("-")[1] == TRACE.split("-")[1]
    kept = [r["traceparent"] for r in await rows(batched) if r["invoice_id"] == first.key]
    assert kept == [TRACE]
    assert (await batched.deliver(*mix)).events == []  # redelivered: nothing new


async def test_a_bad_record_is_set_aside_and_the_rest_of_its_batch_decided(
    service: ServiceHarness[Deps],
) -> None:
    harness = service
    one, other = new_tenant(), new_tenant()
    await prepare(harness, one, other)
    today = dt.date.today()
    good = [sample_invoice(one, n, issue_date=today) for n in ("1", "2", "3")]
    bad = sample_invoice(one, "4", issue_date=today)
    # A personal number sealed under another key: it cannot be opened here (PermanentError).
    bad = bad.model_copy(
        update={"buyer": bad.buyer.model_copy(update={"personal_number_sealed": "gAAAAinvalid"})}
    )

    out = await harness.deliver(
        created(good[0]),
        created(good[1]),
        created(bad),
        created(good[2]),
        updated(paid(good[0]), "v2"),
    )

    [letter] = out.dead_letters
    assert "PERSONAL_DATA_KEY" in letter.reason
    assert letter.origin_topic == "invoice.created"
    decided = out.of(InvoiceFactoringDecided)
    assert [d.invoice_id for d in decided] == [i.invoice_id for i in good]
    assert all(d.eligible for d in decided)
    states = {r["number"]: r["state"] for r in await rows(harness)}
    assert states == {"1": "withdrawn", "2": "pending", "3": "pending"}


async def test_the_batch_statements_keep_and_read_what_the_single_ones_did(
    service: ServiceHarness[Deps],
) -> None:
    one, other = new_tenant(), new_tenant()
    await prepare(service, one, other)
    at = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)
    offered = [
        OfferedInvoice(
            invoice=sample_invoice(one, n),
            state=InvoiceState.PENDING,
            reason="eligible",
            flow=Flow(distribute=False),
            agreement_id=f"{one}-factor",
            payment_reference=sample_invoice(one, n).payment.payment_reference,
            version="v1",
            decided_at=at + dt.timedelta(seconds=int(n)),
            trace=(TRACE, "k=v") if n == "1" else (None, None),
        )
        for n in ("1", "2", "3")
    ]
    async with service.pool.acquire() as conn, conn.transaction():
        invoices = PgInvoiceRepository(conn)
        assert await invoices.record(offered[:1]) == {offered[0].invoice_id}
        assert await invoices.record(offered) == {o.invoice_id for o in offered[1:]}
        assert await invoices.record([]) == set()
        ids = [o.invoice_id for o in offered]
        assert await invoices.get_many([*ids, "inv_unknown"]) == dict(
            zip(ids, offered, strict=True)
        )
        newer = paid(offered[1].invoice)
        await invoices.update_invoices([(offered[1].invoice_id, newer, "v2")])
        assert await invoices.get(offered[1].invoice_id) == dataclasses.replace(
            offered[1], invoice=newer, version="v2"
        )
        assert await invoices.get(offered[2].invoice_id) == offered[2]
        agreements = PgAgreementRepository(conn)
        by_tenant = await agreements.of_tenants([one, other, new_tenant()])
        assert {t: [s.agreement.agreement_id for s in a] for t, a in by_tenant.items()} == {
            one: [f"{one}-factor"],
            other: [f"{other}-sek", f"{other}-nok"],  # oldest first, as of_tenant
        }
        assert by_tenant[other] == await agreements.of_tenant(other)


async def test_an_update_ahead_of_its_creation_in_one_batch_is_decided_on(
    service: ServiceHarness[Deps],
) -> None:
    """``invoice.updated`` read before its invoice's ``invoice.created`` in one consumed batch
    (two topics: no order between them): the invoice is decided on the newer version."""
    one, other = new_tenant(), new_tenant()
    await prepare(service, one, other)
    today = dt.date.today()
    settled, moved = (sample_invoice(one, n, issue_date=today) for n in ("1", "2"))
    later_due = moved.model_copy(update={"due_date": today + dt.timedelta(days=45)})

    out = await service.deliver(
        updated(paid(settled), "v2"),
        updated(later_due, "v2"),
        created(settled),
        created(moved),
    )

    assert out.dead_letters == []
    decided = {d.number: d for d in out.of(InvoiceFactoringDecided)}
    assert sorted(decided) == ["1", "2"]
    assert not decided["1"].eligible  # paid in its newer version: never offered
    assert decided["1"].reason == "invoice is not open (paid or cancelled: nothing outstanding)"
    assert decided["1"].payee is None
    assert decided["2"].eligible
    found = {r["number"]: r for r in await rows(service)}
    assert {n: (r["state"], r["version"]) for n, r in found.items()} == {
        "1": ("ineligible", "v2"),
        "2": ("pending", "v2"),
    }
    assert Invoice.model_validate_json(found["2"]["invoice"]).due_date == later_due.due_date
    assert await early_rows(service) == []
    # The creation again under another event id (the inbox cannot drop it): decided once.
    again = await service.deliver(created(settled), created(moved))
    assert again.of(InvoiceFactoringDecided) == []
    assert {r["number"]: r["version"] for r in await rows(service)} == {"1": "v2", "2": "v2"}


async def test_the_early_versions_are_kept_last_one_wins_and_taken_once(
    service: ServiceHarness[Deps],
) -> None:
    one = new_tenant()
    first, second = (sample_invoice(one, n) for n in ("1", "2"))
    async with service.pool.acquire() as conn, conn.transaction():
        invoices = PgInvoiceRepository(conn)
        await invoices.keep_early_versions([])
        await invoices.keep_early_versions([(first.invoice_id, first, "v2")])
        await invoices.keep_early_versions(
            [(first.invoice_id, paid(first), "v3"), (second.invoice_id, second, "v2")]
        )
        taken = await invoices.take_early_versions([first.invoice_id, "inv_unknown"])
        assert taken == {first.invoice_id: (paid(first), "v3")}
        assert await invoices.take_early_versions([first.invoice_id]) == {}
    assert [r["invoice_id"] for r in await early_rows(service)] == [second.invoice_id]
