"""Sirvoy's booking event webhooks: each invoice, credit invoice and payment it carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nordflow_connectors.sirvoy import SirvoyEvent
from nordflow_schemas.events import DocumentKind

from .documents import Document, payment_document_id


def _invoice_ref(invoices: Sequence[Mapping[str, Any]], invoice_id: Any) -> dict[str, Any]:
    number = next(
        (str(i.get("invoiceNumber")) for i in invoices if i.get("invoiceId") == invoice_id), None
    )
    return {"document_id": str(invoice_id), "document_number": number}


def sirvoy_documents(raw: Mapping[str, Any], parsed_event: SirvoyEvent) -> list[Document]:
    """The invoices, credit invoices and payments of one booking event.

    Payloads are the objects exactly as Sirvoy sent them: the sandbox's webhook and its read
    API (`GET /invoices/{id}`, `GET /payments/{id}`) serialise them with one function, so a
    poll after a webhook finds the same content version and emits nothing.
    """
    # The booking as the read API's GET /bookings/{id} answers it: the event minus its envelope.
    booking = {k: v for k, v in raw.items() if k not in {"version", "generatedAt", "event"}}
    raw_invoices = [i for i in raw.get("invoices") or [] if isinstance(i, dict)]
    raw_payments = [p for p in raw.get("payments") or [] if isinstance(p, dict)]
    generated = parsed_event.generated_at
    docs: list[Document] = []
    for obj, model in zip(raw_invoices, parsed_event.booking.invoices, strict=True):
        docs.append(
            Document(
                document_id=str(model.invoice_id),
                document_number=str(model.invoice_number),
                kind=DocumentKind.CREDIT_NOTE if model.is_credit_invoice else DocumentKind.INVOICE,
                payload=dict(obj),
                related={"booking": booking},
                source_time=model.modified_at or generated,
            )
        )
    for raw_payment, payment in zip(raw_payments, parsed_event.booking.payments, strict=True):
        if payment.invoice_id is None:
            continue  # a booking prepayment: it flows once it is put on an invoice (as polled)
        related: dict[str, dict[str, Any]] = {
            "booking": booking,
            "invoice": _invoice_ref(raw_invoices, payment.invoice_id),
        }
        docs.append(
            Document(
                document_id=payment_document_id(payment.payment_id),
                document_number=str(payment.payment_id),
                kind=DocumentKind.PAYMENT,
                payload=dict(raw_payment),
                related=related,
                source_time=payment.modified_at or generated,
            )
        )
    return docs
