"""The delivered check before a closing, on fakes: it waits for distribution's report, holds
an invoice that did not reach its buyer (and closes it once it has), and asks the ERP where
the ERP sends the invoice."""

from __future__ import annotations

import datetime as dt

from ledger_closer.domain import (
    CLOSE_INVOICE,
    Delivery,
    Go,
    Hold,
    PlannedEntry,
    Wait,
    delivered_check,
)
from ledger_closer.service import (
    Repositories,
    post_entry,
    record_created,
    record_delivery,
    schedule_closing,
)
from ledger_closer.testing import (
    FakeJobScheduler,
    FakeLedgerWriters,
    created,
    fake_repositories,
    source,
    transferred,
    write_connection,
)
from nordflow_schemas.events import Flow, InvoiceClosingHeld, LedgerEntryPosted
from nordflow_schemas.testing import simple_invoice

NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
TENANT = "acme"


def test_the_rule() -> None:
    assert delivered_check(None, None) == Go()  # never seen created: closed as before
    assert delivered_check(Delivery.PENDING, None) == Wait()
    assert delivered_check(Delivery.DELIVERED, None) == Go()
    assert delivered_check(Delivery.UNCERTAIN, None) == Go()
    assert isinstance(delivered_check(Delivery.FAILED, None), Hold)
    assert isinstance(delivered_check(Delivery.BY_ERP, False), Hold)
    assert delivered_check(Delivery.BY_ERP, True) == Go()
    assert delivered_check(Delivery.BY_ERP, None) == Go()  # the ERP cannot be asked


async def closing_of(repos: Repositories, flow: Flow) -> tuple[str, dict[str, object]]:
    invoice = simple_invoice(TENANT)
    await record_created(repos, created(invoice, flow=flow), NOW)
    event = transferred(TENANT, invoice_id=invoice.invoice_id, source_ref=source("conn-1", "7"))
    await schedule_closing(repos, event, dt.timedelta(0))
    assert isinstance(repos.jobs, FakeJobScheduler)
    job = repos.jobs.jobs[CLOSE_INVOICE, f"closing:{invoice.invoice_id}"]
    return invoice.invoice_id, job.payload


async def close(repos: Repositories, writers: FakeLedgerWriters, payload: dict) -> object:
    return await post_entry(
        repos,
        writers,
        entry_key="k",
        tenant_id=TENANT,
        entry=PlannedEntry.from_payload(payload),
        payload=payload,
        clock=lambda: NOW,
    )


async def test_a_closing_waits_for_the_send_and_holds_one_that_failed_until_it_is_sent() -> None:
    repos = fake_repositories(connections=[write_connection(TENANT)])
    writers = FakeLedgerWriters()
    invoice_id, payload = await closing_of(repos, Flow())

    assert await close(repos, writers, payload) is None  # waits, nothing written
    assert await record_delivery(repos, TENANT, invoice_id, Delivery.FAILED, NOW)
    assert isinstance(repos.jobs, FakeJobScheduler)
    reported = repos.jobs.jobs[CLOSE_INVOICE, f"closing:{invoice_id}:reported"]
    held = await close(repos, writers, reported.payload)
    assert isinstance(held, InvoiceClosingHeld)
    assert "could not be sent" in held.reason
    assert writers.ledger().payments == []

    assert await record_delivery(repos, TENANT, invoice_id, Delivery.DELIVERED, NOW)
    released = repos.jobs.jobs[CLOSE_INVOICE, f"closing:{invoice_id}:delivered"]
    assert released.payload["entry_key"] == "k"
    posted = await close(repos, writers, released.payload)
    assert isinstance(posted, LedgerEntryPosted)
    assert len(writers.ledger().payments) == 1


async def test_where_the_erp_sends_it_its_own_send_status_decides() -> None:
    repos = fake_repositories(connections=[write_connection(TENANT)])
    writers = FakeLedgerWriters()
    _, payload = await closing_of(repos, Flow(distribute=False))
    writers.ledger().sent_status = False
    assert isinstance(await close(repos, writers, payload), InvoiceClosingHeld)
    writers.ledger().sent_status = True
    assert isinstance(await close(repos, writers, payload), LedgerEntryPosted)


async def test_a_closing_that_waited_is_planned_again_by_the_first_report() -> None:
    repos = fake_repositories(connections=[write_connection(TENANT)])
    writers = FakeLedgerWriters()
    invoice_id, payload = await closing_of(repos, Flow())
    assert await close(repos, writers, payload) is None
    assert not await record_delivery(repos, TENANT, invoice_id, Delivery.PENDING, NOW)

    assert await record_delivery(repos, TENANT, invoice_id, Delivery.DELIVERED, NOW)
    assert isinstance(repos.jobs, FakeJobScheduler)
    again = repos.jobs.jobs[CLOSE_INVOICE, f"closing:{invoice_id}:reported"]
    assert "waiting_for_delivery" not in again.payload
    posted = await close(repos, writers, again.payload)
    assert isinstance(posted, LedgerEntryPosted)
    assert len(writers.ledger().payments) == 1
    # a second report plans nothing more
    assert not await record_delivery(repos, TENANT, invoice_id, Delivery.DELIVERED, NOW)


async def test_a_report_that_comes_before_the_created_invoice_is_not_lost() -> None:
    """invoice.distributed and invoice.created come on different topics, in any order (even
    within one consumed batch): the send reported first is the document's delivery, so its
    closing goes ahead instead of waiting for a report that came already."""
    repos = fake_repositories(connections=[write_connection(TENANT)])
    writers = FakeLedgerWriters()
    invoice = simple_invoice(TENANT)
    assert not await record_delivery(repos, TENANT, invoice.invoice_id, Delivery.FAILED, NOW)
    assert not await record_delivery(repos, TENANT, invoice.invoice_id, Delivery.DELIVERED, NOW)
    # a failure reported after the send never undoes it
    assert not await record_delivery(repos, TENANT, invoice.invoice_id, Delivery.FAILED, NOW)
    await record_created(repos, created(invoice, flow=Flow()), NOW)
    event = transferred(TENANT, invoice_id=invoice.invoice_id, source_ref=source("conn-1", "7"))
    await schedule_closing(repos, event, dt.timedelta(0))
    assert isinstance(repos.jobs, FakeJobScheduler)
    payload = repos.jobs.jobs[CLOSE_INVOICE, f"closing:{invoice.invoice_id}"].payload
    posted = await close(repos, writers, payload)
    assert isinstance(posted, LedgerEntryPosted)
    assert len(writers.ledger().payments) == 1
