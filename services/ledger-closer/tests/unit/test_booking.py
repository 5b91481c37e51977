"""Booking documents into the system a flow names, on fakes: planned once per invoice from
invoice.created, written once (adopted after an unknown outcome), skipped with the reason,
only described in test mode, a credit after its original, an order invoiced when due."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from ledger_closer.domain import BOOK_DOCUMENT, INVOICE_ORDER, NotBookedYetError
from ledger_closer.domain.booking import event_of
from ledger_closer.service import Repositories, book_document, invoice_order, record_created
from ledger_closer.testing import (
    ErpUnavailableError,
    FakeConnectionRepository,
    FakeEntryRepository,
    FakeJobScheduler,
    FakeLedgerWriters,
    created,
    fake_repositories,
    write_connection,
)
from nordflow_schemas.events import (
    BookingAction,
    DocumentKind,
    Flow,
    InvoiceBooked,
    InvoiceBookingSkipped,
)
from nordflow_schemas.invoice import DocumentType, InvoiceReference, ProjectReference
from nordflow_schemas.testing import simple_invoice

NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
TENANT = "hotell"
BOOKS = Flow(book_into="h-fortnox", factor=False, distribute=False)


def setup() -> tuple[Repositories, FakeLedgerWriters]:
    repos = fake_repositories(connections=[write_connection(TENANT, "h-fortnox")])
    return repos, FakeLedgerWriters()


def jobs(repos: Repositories) -> FakeJobScheduler:
    assert isinstance(repos.jobs, FakeJobScheduler)
    return repos.jobs


def bookings(repos: Repositories) -> dict[str, dict[str, object]]:
    assert isinstance(repos.bookings, FakeEntryRepository)
    return repos.bookings.bookings


async def run(repos: Repositories, writers: FakeLedgerWriters, kind: str = BOOK_DOCUMENT) -> list:
    out = []
    for (job_kind, key), job in list(jobs(repos).jobs.items()):
        if job_kind != kind:
            continue
        event = event_of(job.payload)
        if kind == BOOK_DOCUMENT:
            out += await book_document(repos, writers, event, key=key, clock=lambda: NOW)
        else:
            out.append(await invoice_order(repos, writers, event, key=key, clock=lambda: NOW))
    return out


async def test_a_booked_flow_plans_one_booking_and_the_invoice_is_written_once() -> None:
    repos, writers = setup()
    event = created(simple_invoice(TENANT), flow=BOOKS, kind=DocumentKind.INVOICE)
    assert await record_created(repos, event, NOW)
    assert not await record_created(repos, event, NOW)  # once per invoice
    assert not await record_created(repos, created(simple_invoice(TENANT)), NOW)  # no flow

    [booked] = await run(repos, writers)

    assert isinstance(booked, InvoiceBooked)
    assert (booked.action, booked.target.connection_id, booked.erp_reference) == (
        BookingAction.INVOICE,
        "h-fortnox",
        "1001",
    )
    assert [(r.resource, r.outcome) for r in booked.records] == [("invoice", "created")]
    assert bookings(repos)[f"book:{event.invoice_id}"]["erp_reference"] == "1001"
    assert isinstance(repos.connections, FakeConnectionRepository)
    assert repos.connections.locked == ["h-fortnox"]  # its writes, one at a time


async def test_a_write_applied_but_answered_with_an_error_is_adopted_not_doubled() -> None:
    repos, writers = setup()
    writers.ledger("h-fortnox").fail_after_apply = 1
    event = created(simple_invoice(TENANT), flow=BOOKS)
    await record_created(repos, event, NOW)
    with pytest.raises(ErpUnavailableError):
        await run(repos, writers)
    [booked] = await run(repos, writers)
    assert [(r.resource, r.outcome) for r in booked.records] == [("invoice", "adopted")]
    assert writers.ledger("h-fortnox").creates == 1
    assert bookings(repos)[f"book:{event.invoice_id}"]["attempts"] == 1


async def test_a_paid_cash_receipt_is_skipped_with_its_reason() -> None:
    repos, writers = setup()
    invoice = simple_invoice(TENANT)
    paid = invoice.model_copy(
        update={
            "settled_by": "stripe",
            "totals": invoice.totals.model_copy(
                update={"prepaid": invoice.totals.payable, "payable": Decimal(0)}
            ),
        }
    )
    await record_created(repos, created(paid, flow=BOOKS), NOW)
    [skipped] = await run(repos, writers)
    assert isinstance(skipped, InvoiceBookingSkipped)
    assert "already paid via stripe" in skipped.reason
    assert writers.ledger("h-fortnox").creates == 0


async def test_test_mode_writes_nothing_and_says_what_it_would_have_done() -> None:
    repos, writers = setup()
    await record_created(repos, created(simple_invoice(TENANT), flow=BOOKS, test_mode=True), NOW)
    [booked] = await run(repos, writers)
    assert booked.test_mode
    assert [r.outcome for r in booked.records] == ["planned"]
    assert writers.ledger("h-fortnox").creates == 0
    assert bookings(repos) == {}


async def test_a_credit_waits_for_its_original_to_be_booked() -> None:
    repos, writers = setup()
    original = simple_invoice(TENANT)
    credit = simple_invoice(TENANT, document_type=DocumentType.CREDIT_NOTE).model_copy(
        update={
            "preceding_invoice": InvoiceReference(
                number=original.number, invoice_id=original.invoice_id
            )
        }
    )
    await record_created(repos, created(credit, flow=BOOKS), NOW)
    with pytest.raises(NotBookedYetError):
        await run(repos, writers)
    first = created(original, flow=BOOKS)
    await record_created(repos, first, NOW)
    key = f"book:{original.invoice_id}"
    [booked] = await book_document(repos, writers, first, key=key, clock=lambda: NOW)
    assert booked.action is BookingAction.INVOICE
    credited, _ = await run(repos, writers)  # the credit, then the original (adopted)
    assert credited.action is BookingAction.CREDIT_INVOICE


async def test_an_order_is_invoiced_when_its_part_is_due() -> None:
    repos, writers = setup()
    due = dt.date(2026, 4, 20)
    order = simple_invoice(TENANT).model_copy(
        update={"due_date": due, "project": ProjectReference(number="P-1", name="Kök")}
    )
    await record_created(repos, created(order, flow=BOOKS, kind=DocumentKind.ORDER), NOW)
    [booked] = await run(repos, writers)
    assert booked.action is BookingAction.ORDER
    [invoicing] = [j for (kind, _), j in jobs(repos).jobs.items() if kind == INVOICE_ORDER]
    assert invoicing.due_at == dt.datetime(2026, 4, 20, tzinfo=dt.UTC)
    [invoiced] = await run(repos, writers, INVOICE_ORDER)
    assert (invoiced.action, invoiced.erp_reference) == (BookingAction.ORDER_INVOICED, "F1001")
    [again] = await run(repos, writers, INVOICE_ORDER)
    assert [r.outcome for r in again.records] == ["adopted"]
    assert isinstance(repos.connections, FakeConnectionRepository)
    assert repos.connections.locked == ["h-fortnox"] * 3  # the booking, each invoicing


async def test_an_order_without_a_due_date_is_invoiced_on_the_tenants_date_not_utcs() -> None:
    repos, writers = setup()
    order = simple_invoice(TENANT).model_copy(update={"due_date": None})
    await record_created(repos, created(order, flow=BOOKS, kind=DocumentKind.ORDER), NOW)
    await run(repos, writers)
    [(key, job)] = [(k, j) for (kind, k), j in jobs(repos).jobs.items() if kind == INVOICE_ORDER]
    # 23:30 UTC on 1 March is 00:30 on 2 March in Stockholm (no profile: Sweden's zone).
    late = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
    invoiced = await invoice_order(
        repos, writers, event_of(job.payload), key=key, clock=lambda: late
    )
    assert invoiced.action is BookingAction.ORDER_INVOICED
    [document] = writers.ledger("h-fortnox").documents.values()
    assert document["invoice_date"] == dt.date(2026, 3, 2)
