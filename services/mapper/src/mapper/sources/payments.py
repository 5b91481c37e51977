"""Read a source system's payment document into payment.received (already booked at the source).

The payment is already in the source system (a Fortnox invoice payment, a Visma eAccounting
customer invoice payment, a released Visma.net customer payment, a Sirvoy payment), so the
event says ``recorded_at_source``: ledger-closer must not book it again. The event is about
the PAID invoice: ``source`` is that invoice's SourceRef and ``invoice_id`` its canonical id
(from ``related["invoice"]``), so the payment travels on the invoice's partition, in order
with the invoice's other events.

Each mapper reads the payment as the source's API returns it (the full object, or wrapped
in its usual envelope such as ``{"InvoicePayment": {...}}``) and gives either the event, a
``NotAPayment`` (this version carries no money received yet: a Visma.net payment on hold,
a rounding row) or every problem found, each naming its source field. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nordflow_schemas.common import SourceRef, SourceSystem, canonical_invoice_id
from nordflow_schemas.events import ErpDocumentFetched, PaymentReceived, ValidationIssue
from pydantic import ValidationError

from ..domain.reader import Reader, optional_text, schema_issues
from ..domain.validation import ISO_4217

ENVELOPES = ("InvoicePayment", "CustomerPayment", "Payment")
"""Keys a source wraps one payment object in (Fortnox ``{"InvoicePayment": {...}}``)."""
FORTNOX_ACCOUNTING_CURRENCY = "SEK"
EACCOUNTING_NOT_RECEIVED = {3: "a rounding entry", 4: "a bank charge"}
"""Visma eAccounting PaymentType 3 (Rounding) and 4 (BankCharge) are no money from the payer."""
VISMA_NET_RECEIVED_TYPES = frozenset({"payment", "prepayment"})
VISMA_NET_RELEASED = frozenset({"Open", "Closed"})
"""A Visma.net payment's applications are booked once it is released (Open or Closed)."""


@dataclass(frozen=True)
class Payment:
    """What a source's payment says, before it is tied to the paid invoice."""

    payment_id: str
    amount: Decimal
    currency: str
    paid_on: dt.date
    payer: str
    reference: str | None


@dataclass(frozen=True)
class NotAPayment:
    """A payment document version that carries no money received (yet), and why."""

    reason: str


PaymentMapper = Callable[[Reader, dict[str, Any], ErpDocumentFetched], Payment | NotAPayment]


def _unwrap(payload: dict[str, Any]) -> dict[str, Any]:
    if len(payload) == 1:
        ((key, inner),) = payload.items()
        if key in ENVELOPES and isinstance(inner, dict):
            return inner
    return payload


def _currency(r: Reader, data: dict[str, Any], key: str, field: str, default: str | None) -> str:
    value = r.text(data, key, field, required=default is None)
    code = (value or default or "").upper()
    if value is not None and code not in ISO_4217:
        r.fail(field, "NF-CURRENCY", f"{field} {value!r} is not an ISO 4217 currency")
    return code


def _payer(event: ErpDocumentFetched, *names: object) -> str:
    """The payer's name from the payment, else from the related customer card, else empty."""
    customer = event.related.get("customer") or {}
    for name in (*names, customer.get("Name"), customer.get("name")):
        if name is not None and str(name).strip():
            return str(name).strip()
    return ""


def map_fortnox_payment(r: Reader, doc: dict[str, Any], event: ErpDocumentFetched) -> Payment:
    """A Fortnox invoice payment (``GET /3/invoicepayments/{Number}``).

    ``Amount`` is in SEK; ``AmountCurrency`` is the amount in the invoice's ``Currency``, which
    is what the invoice's open balance is counted in, so it is used for foreign currencies.
    """
    p = "InvoicePayment"
    number = r.text(doc, "Number", f"{p}.Number", required=True)
    currency = _currency(r, doc, "Currency", f"{p}.Currency", FORTNOX_ACCOUNTING_CURRENCY)
    foreign = currency != FORTNOX_ACCOUNTING_CURRENCY and doc.get("AmountCurrency") not in (
        None,
        "",
    )
    amount = (
        r.decimal(doc, "AmountCurrency", f"{p}.AmountCurrency")
        if foreign
        else r.decimal(doc, "Amount", f"{p}.Amount")
    )
    paid_on = r.date(doc, "PaymentDate", f"{p}.PaymentDate", required=True, with_time=True)
    return Payment(
        payment_id=str(number),
        amount=amount,
        currency=currency,
        paid_on=paid_on or dt.date.min,
        payer=_payer(event, doc.get("InvoiceCustomerName")),
        reference=optional_text(doc.get("InvoiceOCR")),
    )


def map_visma_eaccounting_payment(
    r: Reader, doc: dict[str, Any], event: ErpDocumentFetched
) -> Payment | NotAPayment:
    """A Visma eAccounting customer invoice payment (InvoicePaymentApi).

    ``BankTransactionId`` is the payment's only identity; the fees (bank, factoring) are
    settled on the invoice too but are no money received, so the amount is ``PaymentAmount``.
    """
    p = "InvoicePayment"
    payment_type = doc.get("PaymentType")
    if isinstance(payment_type, int) and payment_type in EACCOUNTING_NOT_RECEIVED:
        return NotAPayment(
            f"PaymentType {payment_type} is {EACCOUNTING_NOT_RECEIVED[payment_type]}"
        )
    transaction = r.text(doc, "BankTransactionId", f"{p}.BankTransactionId", required=True)
    amount = r.decimal(doc, "PaymentAmount", f"{p}.PaymentAmount")
    currency = _currency(r, doc, "PaymentCurrency", f"{p}.PaymentCurrency", None)
    paid_on = r.date(doc, "PaymentDate", f"{p}.PaymentDate", required=True, with_time=True)
    return Payment(
        payment_id=str(transaction),
        amount=amount,
        currency=currency,
        paid_on=paid_on or dt.date.min,
        payer=_payer(event),
        reference=optional_text(doc.get("Reference")),
    )


def map_visma_net_payment(
    r: Reader, doc: dict[str, Any], event: ErpDocumentFetched
) -> Payment | NotAPayment:
    """A Visma.net customer payment (PaymentDto), counted for the paid invoice only.

    One payment may apply to several documents: the amount is the sum of its
    ``paymentLines[].amountPaid`` whose ``refNbr`` is the paid invoice's. Only released
    payments (status Open or Closed) of type Payment or Prepayment are money received.
    """
    p = "CustomerPayment"
    kind = str(doc.get("type") or "Payment")
    if kind.lower() not in VISMA_NET_RECEIVED_TYPES:
        return NotAPayment(f"a Visma.net {kind} is no payment received")
    status = str(doc.get("status") or "")
    if status not in VISMA_NET_RELEASED:
        return NotAPayment(f"the payment is not released yet (status {status or 'unknown'})")
    ref_nbr = r.text(doc, "refNbr", f"{p}.refNbr", required=True)
    currency = _currency(r, doc, "currency", f"{p}.currency", None)
    paid_on = r.date(doc, "applicationDate", f"{p}.applicationDate", required=True, with_time=True)
    invoice = event.related.get("invoice") or {}
    wanted = {str(v) for v in (invoice.get("document_id"), invoice.get("document_number")) if v}
    lines = doc.get("paymentLines")
    if isinstance(lines, list) and lines:
        amount = Decimal(0)
        matched = False
        for i, line in enumerate(lines):
            if isinstance(line, dict) and str(line.get("refNbr")) in wanted:
                matched = True
                amount += r.decimal(line, "amountPaid", f"{p}.paymentLines[{i}].amountPaid")
        if not matched:
            r.fail(
                f"{p}.paymentLines",
                "NF-PAYMENT-LINE",
                f"no payment line applies the payment to invoice {sorted(wanted)}",
            )
    else:
        amount = r.decimal(doc, "paymentAmount", f"{p}.paymentAmount")
    customer = doc.get("customer") if isinstance(doc.get("customer"), dict) else {}
    return Payment(
        payment_id=str(ref_nbr),
        amount=amount,
        currency=currency,
        paid_on=paid_on or dt.date.min,
        payer=_payer(event, (customer or {}).get("name")),
        reference=optional_text(doc.get("paymentRef")),
    )


def map_sirvoy_payment(r: Reader, doc: dict[str, Any], event: ErpDocumentFetched) -> Payment:
    """A Sirvoy payment (the sandbox's assumed shape, as nordflow_connectors.sirvoy reads it).

    Sirvoy voids a wrong payment instead of deleting it: a voided payment counts zero.
    """
    p = "Payment"
    payment_id = r.text(doc, "paymentId", f"{p}.paymentId", required=True)
    amount = r.decimal(doc, "amount", f"{p}.amount")
    if doc.get("voided") is True:
        amount = Decimal(0)
    currency = _currency(r, doc, "currency", f"{p}.currency", None)
    paid_on = r.date(doc, "paymentDate", f"{p}.paymentDate", required=True, with_time=True)
    return Payment(
        payment_id=str(payment_id),
        amount=amount,
        currency=currency,
        paid_on=paid_on or dt.date.min,
        payer=_payer(event),
        reference=optional_text(doc.get("providerReference")),
    )


PAYMENT_MAPPERS: dict[SourceSystem, PaymentMapper] = {
    SourceSystem.FORTNOX: map_fortnox_payment,
    SourceSystem.VISMA_EACCOUNTING: map_visma_eaccounting_payment,
    SourceSystem.VISMA_NET: map_visma_net_payment,
    SourceSystem.SIRVOY: map_sirvoy_payment,
}


def map_payment(event: ErpDocumentFetched) -> PaymentReceived | NotAPayment | list[ValidationIssue]:
    """payment.received for a fetched payment document, a NotAPayment, or every problem."""
    mapper = PAYMENT_MAPPERS.get(event.source.system)
    if mapper is None:
        return [
            ValidationIssue(
                field="source.system",
                rule="NF-SOURCE",
                message=f"no payment mapping for source system {event.source.system.value!r}",
            )
        ]
    r = Reader()
    invoice = event.related.get("invoice") or {}
    invoice_document = r.text(invoice, "document_id", "related.invoice.document_id", required=True)
    result = mapper(r, _unwrap(event.payload), event)
    if r.issues:
        return r.issues
    if isinstance(result, NotAPayment):
        return result
    system, connection = event.source.system, event.source.connection_id
    try:
        return PaymentReceived(
            tenant_id=event.tenant_id,
            invoice_id=canonical_invoice_id(
                event.tenant_id, system.value, connection, str(invoice_document)
            ),
            test_mode=event.test_mode,
            source=SourceRef(
                system=system,
                connection_id=connection,
                document_id=str(invoice_document),
                document_number=optional_text(invoice.get("document_number")),
            ),
            payment_id=result.payment_id,
            amount=result.amount,
            currency=result.currency,
            paid_on=result.paid_on,
            payer=result.payer,
            flow=event.flow,
            reference=result.reference,
            recorded_at_source=True,
        )
    except ValidationError as exc:
        return schema_issues(exc, "payment")
