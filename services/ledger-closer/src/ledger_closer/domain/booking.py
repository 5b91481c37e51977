"""Pure rules of booking a document into the accounting system its flow names: what to write
(an invoice, a credit, orders), from which parts of the canonical invoice, or why not at all;
and the records the writers report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nordflow_schemas.events import BookedRecord, BookingAction, DocumentKind, InvoiceCreated
from nordflow_schemas.invoice import DocumentType, Invoice, PartyType

# The durable job kinds of booking: write the document, and invoice an order when due.
BOOK_DOCUMENT = "book-document"
INVOICE_ORDER = "invoice-order"

# What a record's outcome says.
CREATED, UPDATED, FOUND, ADOPTED, BOOKED, PLANNED = (
    "created",
    "updated",
    "found",
    "adopted",
    "booked",
    "planned",
)


def booking_key(invoice_id: str) -> str:
    """The job (and booking) key of writing a document into its target: one per document."""
    return f"book:{invoice_id}"


def invoicing_key(invoice_id: str) -> str:
    """The job (and booking) key of invoicing a booked order: one per order."""
    return f"invoice-order:{invoice_id}"


@dataclass(frozen=True)
class CustomerCard:
    """The buyer as a customer card of the accounting system."""

    name: str
    number: str | None  # the source's customer number (Winner's), kept in the target
    organisation_number: str | None
    private: bool
    email: str | None
    address: str | None
    postal_code: str | None
    city: str | None
    country: str
    vat_number: str | None


@dataclass(frozen=True)
class Line:
    """One line to book: text, product, quantity, net unit price, VAT rate."""

    description: str
    article_number: str | None
    quantity: Decimal
    unit_price: Decimal
    net: Decimal
    vat_rate: Decimal


@dataclass(frozen=True)
class Booking:
    """What to write for one document; ``reference`` is ours (the canonical invoice id), kept
    where the target has room for it and looked up by before anything is created."""

    action: BookingAction
    reference: str
    number: str
    customer: CustomerCard
    lines: tuple[Line, ...]
    issue_date: dt.date
    due_date: dt.date | None
    currency: str
    project_number: str | None = None
    project_name: str | None = None
    quote_number: str | None = None
    credited_invoice_id: str | None = None  # the original's canonical id (a credit)
    note: str | None = None


@dataclass(frozen=True)
class Skip:
    """A document its flow books that is deliberately not written, and why."""

    reason: str


def customer_card(invoice: Invoice) -> CustomerCard:
    """The canonical buyer as a customer card."""
    buyer = invoice.buyer
    lines = buyer.address.lines
    return CustomerCard(
        name=buyer.name,
        number=buyer.customer_number,
        organisation_number=buyer.company_id if buyer.party_type is PartyType.COMPANY else None,
        private=buyer.party_type is PartyType.PRIVATE,
        email=buyer.email,
        address=lines[0] if lines else None,
        postal_code=buyer.address.postal_code,
        city=buyer.address.city,
        country=buyer.address.country_code,
        vat_number=buyer.vat_id,
    )


def plan_booking(event: InvoiceCreated) -> Booking | Skip:
    """What writing the document means: orders for an order (Winner), a credit for a credit
    note, else an invoice; or a skip with its reason (a cash receipt already paid through a
    provider such as Stripe: the provider's payout is booked from the provider)."""
    invoice = event.invoice
    if invoice.settled_by is not None:
        return Skip(
            f"cash receipt {invoice.number} is already paid via {invoice.settled_by}; its "
            f"payment is booked from {invoice.settled_by}'s payout, so it is not booked here"
        )
    if invoice.document_type is DocumentType.CREDIT_NOTE:
        action = BookingAction.CREDIT_INVOICE
    elif event.source_kind is DocumentKind.ORDER:
        action = BookingAction.ORDER
    else:
        action = BookingAction.INVOICE
    credited = invoice.preceding_invoice
    return Booking(
        action=action,
        reference=invoice.invoice_id,
        number=invoice.number,
        customer=customer_card(invoice),
        lines=tuple(
            Line(
                description=line.description,
                article_number=line.article_number,
                quantity=line.quantity,
                unit_price=line.unit_price,
                net=line.net_amount,
                vat_rate=line.vat_rate,
            )
            for line in invoice.lines
        ),
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        project_number=invoice.project.number if invoice.project else None,
        project_name=invoice.project.name if invoice.project else None,
        quote_number=invoice.order_reference,
        credited_invoice_id=credited.invoice_id if credited is not None else None,
        note=invoice.note,
    )


def order_invoice_due(booking: Booking, now: dt.datetime) -> dt.datetime:
    """When a booked order is invoiced: the start of its part's due date (UTC), or now when
    that has passed (the payment calendar's "each when its part is due")."""
    if booking.due_date is None:
        return now
    due = dt.datetime.combine(booking.due_date, dt.time(), tzinfo=dt.UTC)
    return max(due, now)


@dataclass
class Written:
    """What a writer did (or, in test mode, would do): the records and the main one's id."""

    records: list[BookedRecord]
    erp_reference: str | None = None
    action: BookingAction | None = None  # when the writer decided it (cancel or credit)

    def add(self, resource: str, reference: object, outcome: str) -> None:
        """Note one record."""
        ref = None if reference is None else str(reference)
        self.records.append(BookedRecord(resource=resource, reference=ref, outcome=outcome))

    def as_json(self) -> dict[str, Any]:
        """The job's result."""
        return {
            "erp_reference": self.erp_reference,
            "records": [r.model_dump(mode="json") for r in self.records],
        }


def booking_payload(event: InvoiceCreated) -> dict[str, Any]:
    """The book-document job's payload: the event as it came."""
    return {"invoice_id": event.invoice_id, "event": event.model_dump(mode="json")}


def event_of(payload: Mapping[str, Any]) -> InvoiceCreated:
    """The event a book-document job's payload holds."""
    return InvoiceCreated.model_validate(payload["event"])
