"""Read a Fortnox v3 invoice (with its customer card) into the invoice builder.

Fortnox amounts are in the invoice currency, negative on a credit invoice (the canonical
credit note is positive, so they are multiplied by -1); ``CurrencyRate`` is SEK per
``CurrencyUnit`` units of the invoice currency. The customer card's ``VATType`` says
whether rows are reverse charge or export.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nordflow_schemas.events import ErpDocumentFetched
from nordflow_schemas.invoice import VatCategory
from nordflow_schemas.money import money

from ..domain.builder import InvoiceBuilder, Mapped, never_raises, totals
from ..domain.reader import Reader, obj, optional_text


def _vat_category(rate: Decimal, customer: dict[str, Any]) -> VatCategory:
    vat_type = str(customer.get("VATType") or "SEVAT").upper()
    if vat_type in {"SEREVERSEDVAT", "EUREVERSEDVAT"}:
        return VatCategory.REVERSE_CHARGE
    if vat_type == "EXPORT":
        return VatCategory.EXPORT
    return VatCategory.STANDARD if rate > 0 else VatCategory.ZERO


def _rows(
    r: Reader, b: InvoiceBuilder, doc: dict[str, Any], customer: dict[str, Any], sign: Decimal
) -> None:
    """Each row with an amount as a line (text-only rows are left out)."""
    rows = doc.get("InvoiceRows") or []
    if not rows:
        r.fail("Invoice.InvoiceRows", "BR-16", "an invoice needs at least one row")
    for i, row in enumerate(rows):
        f = f"Invoice.InvoiceRows[{i}]"
        if not row.get("DeliveredQuantity") and not row.get("Price"):
            continue  # Fortnox text-only rows carry no amount
        quantity = r.decimal(row, "DeliveredQuantity", f"{f}.DeliveredQuantity") * sign
        price = r.decimal(row, "Price", f"{f}.Price")
        rate = r.decimal(row, "VAT", f"{f}.VAT")
        net = r.decimal(row, "Total", f"{f}.Total", default=(quantity * sign * price)) * sign
        category = _vat_category(rate, customer)
        b.add_line(
            f,
            description=optional_text(row.get("Description"))
            or optional_text(row.get("ArticleNumber")),
            article_number=optional_text(row.get("ArticleNumber")),
            quantity=quantity,
            unit_code=optional_text(row.get("Unit")),
            unit_price=price,
            allowance=money(quantity * price - net),
            net=net,
            category=category,
            rate=rate if category is VatCategory.STANDARD else Decimal(0),
            account=optional_text(row.get("AccountNumber")),
        )


@never_raises("Invoice")
def map_fortnox(event: ErpDocumentFetched) -> Mapped:
    """The canonical invoice, or every problem found (never an exception)."""
    r = Reader()
    b = InvoiceBuilder(r, event)
    doc = event.payload
    customer = event.related.get("customer", {})
    credit = event.kind.value == "credit_note"
    sign = Decimal(-1) if credit else Decimal(1)

    number = r.text(doc, "DocumentNumber", "Invoice.DocumentNumber", required=True)
    issue_date = r.date(doc, "InvoiceDate", "Invoice.InvoiceDate", required=True)
    due_date = r.date(doc, "DueDate", "Invoice.DueDate")
    currency = (r.text(doc, "Currency", "Invoice.Currency") or "SEK").upper()
    _rows(r, b, doc, customer, sign)

    net_total = r.decimal(doc, "Net", "Invoice.Net") * sign
    vat_total = r.decimal(doc, "TotalVAT", "Invoice.TotalVAT") * sign
    rounding = r.decimal(doc, "RoundOff", "Invoice.RoundOff", default=Decimal(0)) * sign
    total = r.decimal(doc, "Total", "Invoice.Total") * sign
    balance = (
        r.decimal(doc, "Balance", "Invoice.Balance") * sign
        if doc.get("Balance") not in (None, "")
        else None
    )
    currency_rate: Decimal | None = None
    if doc.get("CurrencyRate") not in (None, ""):
        unit = r.decimal(doc, "CurrencyUnit", "Invoice.CurrencyUnit", default=Decimal(1))
        if unit <= 0:
            r.fail(
                "Invoice.CurrencyUnit", "NF-CURRENCY-RATE", f"CurrencyUnit {unit} is not positive"
            )
            unit = Decimal(1)
        currency_rate = r.decimal(doc, "CurrencyRate", "Invoice.CurrencyRate") / unit
    accounting = b.accounting_vat(
        currency=currency,
        vat_total=vat_total,
        rate=currency_rate,
        rate_field="Invoice.CurrencyRate",
    )

    buyer_name = r.text(doc, "CustomerName", "Invoice.CustomerName", required=True)
    gln = optional_text(customer.get("GLN")) or optional_text(customer.get("GLNDelivery"))
    buyer = b.buyer(
        buyer_name,
        private=str(customer.get("Type", "")).upper() == "PRIVATE",
        company_id=doc.get("OrganisationNumber") or customer.get("OrganisationNumber"),
        vat_id=customer.get("VATNumber"),
        electronic_address=b.endpoint("0088", gln, "customer.GLN") if gln else None,
        address=b.address(
            (doc.get("Address1"), doc.get("Address2")),
            city=doc.get("City"),
            postal_code=doc.get("ZipCode"),
            country=doc.get("CountryCode") or customer.get("CountryCode"),
        ),
        email=obj(doc.get("EmailInformation")).get("EmailAddressTo")
        or customer.get("EmailInvoice"),
        customer_number=doc.get("CustomerNumber"),
    )
    credited = optional_text(doc.get("CreditInvoiceReference"))
    return b.build(
        credit=credit,
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        buyer=buyer,
        vat=b.vat_breakdown(),
        totals=totals(net_total, vat_total, rounding=rounding, payable=total),
        payment_reference=optional_text(doc.get("OCR")),
        terms=optional_text(doc.get("TermsOfPayment")),
        buyer_reference=optional_text(doc.get("YourReference")),
        order_reference=optional_text(doc.get("YourOrderNumber")),
        preceding=b.credited(credited) if credit and credited not in (None, "0") else None,
        payment_method=optional_text(doc.get("PaymentWay")),
        outstanding=balance,
        accounting=accounting,
    )
