"""Read a Winner order (one payment-calendar part of an accepted kitchen quote) into the builder.

erp-poller splits a quote by its payment calendar into orders `<quote>-<part>` whose lines
are already the part's share, to the öre (see services/erp-poller/INGESTION.md). Line amounts
exclude VAT unless the order says `prices_include_vat`; the VAT is computed per rate on the
summed nets. A credit order names the order it credits in `credited_order_id`; its amounts
are positive, like every canonical credit note.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nordflow_schemas.events import ErpDocumentFetched
from nordflow_schemas.invoice import ProjectReference, VatCategory
from nordflow_schemas.money import money

from ..domain.builder import InvoiceBuilder, Mapped, net_price, never_raises, totals, vat_sums
from ..domain.reader import Reader, optional_text


def _lines(b: InvoiceBuilder, doc: dict[str, Any], gross: bool) -> Decimal:
    """Each order line as an invoice line; the sum of the quoted amounts."""
    r = b.r
    quoted = Decimal(0)
    rows = r.objects(doc, "lines", "Order.lines")
    if not rows and not r.has_issue("Order.lines"):
        r.fail("Order.lines", "BR-16", "an order needs at least one line")
    for i, row in rows:
        f = f"Order.lines[{i}]"
        description = r.text(row, "description", f"{f}.description", required=True)
        quantity = r.decimal(row, "quantity", f"{f}.quantity", default=Decimal(1))
        amount = r.decimal(row, "amount", f"{f}.amount")
        rate = r.vat_rate(row, "vat_rate", f"{f}.vat_rate")
        if quantity == 0:
            r.fail(f"{f}.quantity", "NF-QUANTITY", f"{f}.quantity must not be zero")
            quantity = Decimal(1)
        net = money(amount - money(amount * rate / (100 + rate))) if gross else money(amount)
        quoted += money(amount)
        b.add_line(
            f,
            description=description,
            article_number=optional_text(row.get("article_number")),
            quantity=quantity,
            unit_price=net_price(net, quantity),
            net=net,
            category=VatCategory.STANDARD if rate > 0 else VatCategory.ZERO,
            rate=rate,
        )
    return quoted


@never_raises("Order")
def map_winner(event: ErpDocumentFetched) -> Mapped:
    """The canonical invoice for a Winner order, or every problem found (never an exception)."""
    r = Reader()
    b = InvoiceBuilder(r, event)
    doc = event.payload

    number = r.text(doc, "order_id", "Order.order_id", required=True)
    issue_date = r.date(doc, "order_date", "Order.order_date", required=True)
    due_date = r.date(doc, "due_date", "Order.due_date")
    currency = (r.text(doc, "currency", "Order.currency") or "SEK").upper()
    if not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("Order.currency", "NF-CURRENCY", f"not an ISO 4217 currency: {currency!r}")
    gross = doc.get("prices_include_vat") is True
    credited = optional_text(doc.get("credited_order_id"))
    quoted = _lines(b, doc, gross)

    customer = r.mapping(doc, "customer", "Order.customer")
    buyer_name = r.text(customer, "name", "Order.customer.name", required=True)
    project = r.mapping(doc, "project", "Order.project")
    project_number = r.text(project, "number", "Order.project.number", required=True)
    buyer = b.buyer(
        buyer_name,
        private=str(customer.get("type") or "").lower() != "company",
        company_id=customer.get("organisation_number"),
        vat_id=customer.get("vat_number"),
        address=b.address_of(
            r.mapping(customer, "address", "Order.customer.address"), "Order.customer.address"
        ),
        email=customer.get("email"),
        customer_number=customer.get("customer_number"),
    )

    vat = b.vat_breakdown()
    net_total, vat_total = vat_sums(vat)
    # With VAT-inclusive prices the customer owes exactly what the quote said: the öre that
    # per-rate VAT on the summed nets leaves is the rounding amount (BT-114).
    rounding = quoted - (net_total + vat_total) if gross else Decimal(0)
    note = " ".join(
        x
        for x in (
            f"Projekt {project_number} {project.get('name') or ''}".strip(),
            f"(del {doc.get('part')} av {doc.get('parts')}, {doc.get('percent')} %)"
            if doc.get("parts") not in (None, 1)
            else None,
            optional_text(doc.get("note")),
        )
        if x
    )
    return b.build(
        credit=credited is not None,
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        buyer=buyer,
        vat=vat,
        totals=totals(net_total, vat_total, rounding=rounding),
        buyer_reference=optional_text(doc.get("reference")),
        order_reference=optional_text(doc.get("quote_number")),
        preceding=b.credited(credited, document_id=credited) if credited else None,
        note=note or None,
        project=ProjectReference(number=project_number, name=optional_text(project.get("name")))
        if project_number
        else None,
    )
