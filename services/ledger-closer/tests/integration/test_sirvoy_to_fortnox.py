"""Sirvoy → Fortnox through the service's handlers and jobs against the Fortnox sandbox: a
guest's invoice becomes a booked Fortnox invoice (the guest a customer, once), a payment a
booked Fortnox payment, a credit a credit invoice (or the unbooked original cancelled), a
Stripe-paid cash receipt is skipped with its reason, and test mode writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ledger_closer.adapters.repository import PgConnectionRepository
from ledger_closer.deps import Deps
from ledger_closer.testing import created, guest_invoice, payment_received, write_connection
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import Emitted, ServiceHarness
from nordflow_sandboxes.fortnox.testing import (
    RunningFortnoxSandbox,
    SandboxCompany,
    running_fortnox_sandbox,
)
from nordflow_schemas.events import (
    BookingAction,
    DocumentKind,
    EntryKind,
    Flow,
    InvoiceBooked,
    InvoiceBookingSkipped,
    LedgerEntryPosted,
)
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox() as running:
        yield running


class Hotel:
    """A tenant whose Sirvoy connection books into its Fortnox company."""

    def __init__(self, sandbox: RunningFortnoxSandbox, company: SandboxCompany) -> None:
        self.tenant = new_tenant()
        self.sirvoy = f"{self.tenant}-sv"
        self.fortnox = f"{self.tenant}-fx"
        self.flow = Flow(book_into=self.fortnox, factor=False, distribute=False)
        self.http = httpx.Client(base_url=f"{sandbox.base_url}/3/", headers=company.headers)

    def get(self, path: str, **params: str) -> dict[str, Any]:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture
async def hotel(
    sandbox: RunningFortnoxSandbox, harness: ServiceHarness[Deps], box: SecretBox
) -> Hotel:
    company = sandbox.create_company()
    hotel = Hotel(sandbox, company)
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            hotel.tenant,
            hotel.fortnox,
            base_url=sandbox.base_url,
            token_sealed=box.seal(company.token),
        )
    )
    return hotel


async def finish(harness: ServiceHarness[Deps]) -> Emitted:
    """Run every job, retries made due at once, until none is pending."""
    emitted = Emitted()
    for _ in range(10):
        emitted.events += (await harness.run_jobs(include_future=True)).events
        if all(j["state"] != "pending" for j in await harness.jobs()):
            return emitted
    raise AssertionError([dict(j) for j in await harness.jobs() if j["state"] == "pending"])


async def test_invoices_payment_and_credit_are_booked_in_fortnox(
    harness: ServiceHarness[Deps], hotel: Hotel
) -> None:
    first = guest_invoice(hotel.tenant, hotel.sirvoy, "1001")
    second = guest_invoice(hotel.tenant, hotel.sirvoy, "1002", payable=Decimal("500.00"))
    for invoice in (first, second):
        event = created(invoice, flow=hotel.flow, kind=DocumentKind.INVOICE)
        await harness.publish(event)
        await harness.publish(event)  # delivered twice: booked once
    booked = (await finish(harness)).of(InvoiceBooked)

    assert [b.action for b in booked] == [BookingAction.INVOICE, BookingAction.INVOICE]
    customers = hotel.get("customers")["Customers"]
    assert [c["Name"] for c in customers] == ["Anna Gäst"]  # the guest, created once
    invoices = hotel.get("invoices")["Invoices"]
    assert sorted(i["ExternalInvoiceReference1"] for i in invoices) == sorted(
        [first.invoice_id, second.invoice_id]
    )
    assert all(i["Booked"] for i in invoices)
    number = booked[0].erp_reference
    assert number is not None

    # The guest pays the first invoice at the hotel (picked up from Sirvoy).
    paid = payment_received(
        hotel.tenant,
        invoice_id=first.invoice_id,
        payment_id="sv-77",
        amount=Decimal("1250.00"),
        recorded_at_source=True,
        flow=hotel.flow,
        source_ref=first.source,
    )
    await harness.publish(paid)
    [posted] = (await finish(harness)).of(LedgerEntryPosted)
    assert posted.entry_kind is EntryKind.INVOICE_PAYMENT
    assert posted.target is not None
    assert posted.target.connection_id == hotel.fortnox
    payment = hotel.get(f"invoicepayments/{posted.erp_reference}")["InvoicePayment"]
    assert (payment["InvoiceNumber"], payment["Booked"], payment["ModeOfPaymentAccount"]) == (
        int(number),
        True,
        1930,
    )

    # The second is credited in Sirvoy; it is booked in Fortnox, so it is credited there.
    credit = guest_invoice(
        hotel.tenant, hotel.sirvoy, "1003", payable=Decimal("500.00"), credited=second
    )
    await harness.publish(created(credit, flow=hotel.flow, kind=DocumentKind.CREDIT_NOTE))
    [credited] = (await finish(harness)).of(InvoiceBooked)
    assert credited.action is BookingAction.CREDIT_INVOICE
    assert credited.erp_reference is not None
    credit_invoice = hotel.get(f"invoices/{credited.erp_reference}")["Invoice"]
    assert credit_invoice["Credit"] == "true"
    assert credit_invoice["Booked"] is True
    assert credit_invoice["ExternalInvoiceReference1"] == credit.invoice_id
    assert credit_invoice["CreditInvoiceReference"] == booked[1].erp_reference


async def test_a_stripe_paid_cash_receipt_is_skipped_and_test_mode_writes_nothing(
    harness: ServiceHarness[Deps], hotel: Hotel
) -> None:
    receipt = guest_invoice(hotel.tenant, hotel.sirvoy, "2001")
    paid = receipt.model_copy(
        update={
            "settled_by": "stripe",
            "totals": receipt.totals.model_copy(
                update={"prepaid": receipt.totals.payable, "payable": Decimal(0)}
            ),
        }
    )
    await harness.publish(created(paid, flow=hotel.flow))
    trial = guest_invoice(hotel.tenant, hotel.sirvoy, "2002")
    await harness.publish(created(trial, flow=hotel.flow, test_mode=True))
    out = await finish(harness)

    [skipped] = out.of(InvoiceBookingSkipped)
    assert skipped.reason.startswith("cash receipt 2001 is already paid via stripe")
    [planned] = out.of(InvoiceBooked)
    assert planned.test_mode
    assert [(r.resource, r.outcome) for r in planned.records] == [
        ("customer", "planned"),
        ("invoice", "planned"),
        ("bookkeeping", "planned"),
    ]
    assert hotel.get("customers")["Customers"] == []
    assert hotel.get("invoices")["Invoices"] == []

    # Its Stripe payment, picked up from Sirvoy, and a credit of it are not waited for:
    # nothing is written for them, the payment's job ends, the credit's skip says why.
    await harness.publish(
        payment_received(
            hotel.tenant,
            invoice_id=paid.invoice_id,
            payment_id="sv-stripe-1",
            amount=receipt.totals.payable,
            recorded_at_source=True,
            flow=hotel.flow,
            source_ref=paid.source,
        )
    )
    credit = guest_invoice(hotel.tenant, hotel.sirvoy, "2003", credited=paid)
    await harness.publish(created(credit, flow=hotel.flow, kind=DocumentKind.CREDIT_NOTE))
    out = await finish(harness)
    assert out.of(LedgerEntryPosted) == []
    [credit_skipped] = out.of(InvoiceBookingSkipped)
    assert credit_skipped.reason.startswith("the invoice it credits was not booked either: cash")
    jobs = {j["job_key"]: j for j in await harness.jobs()}
    payment_job = jobs[f"payment:{paid.invoice_id}:sv-stripe-1@{hotel.fortnox}"]
    assert (payment_job["state"], payment_job["attempts"]) == ("done", 1)
    assert hotel.get("invoicepayments")["InvoicePayments"] == []
    assert hotel.get("invoices")["Invoices"] == []


async def test_a_credit_of_an_invoice_not_booked_yet_cancels_it(
    harness: ServiceHarness[Deps], hotel: Hotel
) -> None:
    # An invoice in Fortnox that is not booked (the hotel's accountant reopened it), found by
    # its booking in ledger-closer.
    invoice = guest_invoice(hotel.tenant, hotel.sirvoy, "3001")
    await harness.publish(created(invoice, flow=hotel.flow))
    [booked] = (await finish(harness)).of(InvoiceBooked)
    customer = hotel.get("customers")["Customers"][0]["CustomerNumber"]
    unbooked = hotel.http.post(
        "invoices",
        json={
            "Invoice": {
                "CustomerNumber": customer,
                "InvoiceRows": [{"Description": "Rum", "DeliveredQuantity": 1, "Price": 100}],
            }
        },
    )
    number = unbooked.json()["Invoice"]["DocumentNumber"]
    await harness.pool.execute(
        "UPDATE bookings SET erp_reference = $1 WHERE booking_key = $2",
        number,
        f"book:{invoice.invoice_id}",
    )
    credit = guest_invoice(hotel.tenant, hotel.sirvoy, "3002", credited=invoice)
    await harness.publish(created(credit, flow=hotel.flow))
    [cancelled] = (await finish(harness)).of(InvoiceBooked)
    assert cancelled.action is BookingAction.CANCELLATION
    assert hotel.get(f"invoices/{number}")["Invoice"]["Cancelled"] is True
    assert hotel.get(f"invoices/{booked.erp_reference}")["Invoice"]["Cancelled"] is False


async def test_a_payment_of_the_exact_amount_writes_off_fortnox_rounding(
    harness: ServiceHarness[Deps], hotel: Hotel
) -> None:
    # Sirvoy's total has öre; Fortnox rounds the SEK invoice to whole kronor.
    invoice = guest_invoice(hotel.tenant, hotel.sirvoy, "4001", payable=Decimal("1436.50"))
    await harness.publish(created(invoice, flow=hotel.flow))
    [booked] = (await finish(harness)).of(InvoiceBooked)
    assert hotel.get(f"invoices/{booked.erp_reference}")["Invoice"]["Total"] == 1437

    await harness.publish(
        payment_received(
            hotel.tenant,
            invoice_id=invoice.invoice_id,
            payment_id="sv-4001",
            amount=Decimal("1436.50"),
            recorded_at_source=True,
            flow=hotel.flow,
            source_ref=invoice.source,
        )
    )
    [posted] = (await finish(harness)).of(LedgerEntryPosted)
    payment = hotel.get(f"invoicepayments/{posted.erp_reference}")["InvoicePayment"]
    assert payment["Amount"] == 1436.5
    assert [(w["AccountNumber"], w["Amount"]) for w in payment["WriteOffs"]] == [(3740, 0.5)]
    paid = hotel.get(f"invoices/{booked.erp_reference}")["Invoice"]
    assert (paid["Balance"], paid["Booked"]) == (0, True)
