"""Read a Sirvoy invoice, cash receipt or credit invoice (with its booking) into the builder.

Sirvoy row prices include VAT (Swedish hotel rooms and food 12 %, other goods 25 %): each
row's net is its gross amount less the VAT it contains, rounded to öre; the VAT is then
computed per (category, rate) on the summed nets, and whatever öre that leaves against
Sirvoy's total goes to the rounding amount (BT-114), so the canonical totals always add up.

A cash receipt already paid through an external provider such as Stripe is a valid, settled
invoice: `settled_by` names the provider, its prepaid amount (BT-113) is the total and nothing
is payable. Whoever consumes it decides: ledger-closer skips booking it (the provider's payout
is booked from the provider), distribution-router never sends it as payable.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nordflow_schemas.events import ErpDocumentFetched
from nordflow_schemas.invoice import VatCategory
from nordflow_schemas.money import CENT, money

from ..domain.builder import InvoiceBuilder, Mapped, net_price, never_raises, totals, vat_sums
from ..domain.reader import Reader, obj, optional_text

MAX_SOURCE_ROUNDING = Decimal("0.50")  # Swedish öresavrundning to whole kronor at most
INVOICE_TYPES = ("invoice", "cashReceipt")


def external_provider(doc: dict[str, Any]) -> str | None:
    """The external provider (e.g. Stripe) that took a cash receipt's payment at sale."""
    if doc.get("type") != "cashReceipt" or not isinstance(doc.get("payments"), list | tuple):
        return None
    for payment in doc["payments"]:
        if not isinstance(payment, dict):
            continue
        provider = str(payment.get("provider") or "").strip()
        if provider and str(payment.get("amount")) not in {"0", "0.0", "0.00"}:
            return provider
    return None


def _rows(b: InvoiceBuilder, doc: dict[str, Any], sign: Decimal) -> tuple[int, Decimal]:
    """Each row as a line, net of the VAT its price includes; (rows read, their gross sum)."""
    r = b.r
    gross_total = Decimal(0)
    rows = r.objects(doc, "rows", "Invoice.rows")
    if not rows and not r.has_issue("Invoice.rows"):
        r.fail("Invoice.rows", "BR-16", "an invoice needs at least one row")
    for i, row in rows:
        f = f"Invoice.rows[{i}]"
        description = r.text(row, "description", f"{f}.description", required=True)
        quantity = r.decimal(row, "quantity", f"{f}.quantity")
        unit_price = r.decimal(row, "unitPrice", f"{f}.unitPrice")
        rate = r.vat_rate(row, "vatRate", f"{f}.vatRate")
        gross = money(quantity * unit_price)
        if row.get("amount") not in (None, ""):
            stated = r.decimal(row, "amount", f"{f}.amount")
            if abs(stated - gross) > CENT:
                r.fail(
                    f"{f}.amount",
                    "NF-ROW-AMOUNT",
                    f"{f}.amount {stated} is not quantity x unitPrice = {gross}",
                )
        gross_total += gross * sign
        net = (gross - money(gross * rate / (100 + rate))) * sign
        quantity *= sign
        b.add_line(
            f,
            description=description,
            quantity=quantity,
            unit_price=net_price(net, quantity)
            if quantity
            else net_price(unit_price * 100, 100 + rate),
            net=net,
            category=VatCategory.STANDARD if rate > 0 else VatCategory.ZERO,
            rate=rate,
            account=r.text(row, "accountCode", f"{f}.accountCode"),
        )
    return len(rows), gross_total


@never_raises("Invoice")
def map_sirvoy(event: ErpDocumentFetched) -> Mapped:
    """The canonical invoice, or every problem found (never an exception)."""
    r = Reader()
    b = InvoiceBuilder(r, event)
    doc = event.payload
    booking = event.related.get("booking", {})

    r.text(doc, "invoiceId", "Invoice.invoiceId", required=True)
    number = r.text(doc, "invoiceNumber", "Invoice.invoiceNumber", required=True)
    kind = r.text(doc, "type", "Invoice.type", required=True)
    if kind is not None and kind not in INVOICE_TYPES:
        r.fail("Invoice.type", "NF-ENUM", f"Invoice.type must be invoice or cashReceipt: {kind!r}")
    credit = (
        bool(r.flag(doc, "isCreditInvoice", "Invoice.isCreditInvoice"))
        or event.kind.value == "credit_note"
    )
    sign = Decimal(-1) if credit else Decimal(1)
    issue_date = r.date(doc, "invoiceDate", "Invoice.invoiceDate", required=True)
    due_date = r.date(doc, "dueDate", "Invoice.dueDate")
    currency = (r.text(doc, "currency", "Invoice.currency", required=True) or "").upper()
    if currency and not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("Invoice.currency", "NF-CURRENCY", f"not an ISO 4217 currency: {currency!r}")
    credited_number = r.text(doc, "creditedInvoiceNumber", "Invoice.creditedInvoiceNumber")
    credited_id = r.text(doc, "creditedInvoiceId", "Invoice.creditedInvoiceId")
    if credit and credited_number is None:
        r.fail(
            "Invoice.creditedInvoiceNumber",
            "NF-CREDIT-REF",
            "a credit invoice must name the invoice it credits",
        )

    rows, gross_total = _rows(b, doc, sign)
    breakdown = b.vat_breakdown()
    net_total, vat_total = vat_sums(breakdown)
    total = r.decimal(doc, "totalAmount", "Invoice.totalAmount") * sign
    rows_read = rows > 0 and not any(i.field.startswith("Invoice.rows") for i in r.issues)
    if rows_read and abs(total - gross_total) > MAX_SOURCE_ROUNDING:
        r.fail(
            "Invoice.totalAmount",
            "NF-TOTAL",
            f"Invoice.totalAmount {total * sign} differs from the sum of the rows "
            f"{gross_total * sign}",
        )
    stated_vat = r.decimal(doc, "totalVat", "Invoice.totalVat", default=vat_total * sign) * sign
    if rows_read and abs(stated_vat - vat_total) > CENT * (rows + 1):
        r.fail(
            "Invoice.totalVat",
            "NF-VAT-TOTAL",
            f"Invoice.totalVat {stated_vat * sign} differs from the VAT in the rows "
            f"{vat_total * sign}",
        )
    balance = (
        r.decimal(doc, "balance", "Invoice.balance") * sign
        if doc.get("balance") not in (None, "")
        else None
    )
    payments = r.objects(doc, "payments", "Invoice.payments")
    methods = sorted({str(p["method"]).strip() for _, p in payments if p.get("method")})

    recipient = r.mapping(doc, "recipient", "Invoice.recipient")
    org_number = r.text(recipient, "organisationNumber", "Invoice.recipient.organisationNumber")
    business = r.text(recipient, "businessName", "Invoice.recipient.businessName")
    person = r.text(recipient, "name", "Invoice.recipient.name")
    buyer_name = (business or person) if org_number else (person or business)
    if buyer_name is None:
        r.fail("Invoice.recipient.name", "NF-REQUIRED", "Invoice.recipient.name is required")
    buyer = b.buyer(
        buyer_name,
        private=not org_number,
        company_id=org_number,
        address=b.address(
            (recipient.get("address"),),
            city=recipient.get("city"),
            postal_code=recipient.get("postcode"),
            country=recipient.get("country"),
        ),
        email=recipient.get("email") or obj(booking.get("guest")).get("email"),
    )
    settled_by = external_provider(doc)
    invoice_totals = totals(net_total, vat_total, payable=total)
    if settled_by is not None:
        # Paid in full at sale: the whole amount is prepaid (BT-113), nothing is payable.
        invoice_totals = invoice_totals.model_copy(
            update={"prepaid": invoice_totals.payable, "payable": Decimal(0)}
        )
        balance = Decimal(0)
    return b.build(
        credit=credit,
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        buyer=buyer,
        vat=breakdown,
        totals=invoice_totals,
        payment_reference=optional_text(doc.get("paymentReference"))
        or optional_text(doc.get("ocr")),
        buyer_reference=optional_text(booking.get("guestReference")),
        order_reference=optional_text(doc.get("bookingId")),
        preceding=b.credited(credited_number, document_id=credited_id)
        if credit and credited_number
        else None,
        payment_method=",".join(methods) or None,
        outstanding=balance,
        settled_by=settled_by,
    )
