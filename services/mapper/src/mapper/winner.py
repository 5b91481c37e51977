"""Map a Winner order (one payment-calendar part of an accepted kitchen quote) to an invoice.

erp-poller splits a quote by its payment calendar into orders `<quote>-<part>` whose lines
are already the part's share, to the öre (see services/erp-poller/INGESTION.md). Line amounts
exclude VAT unless the order says `prices_include_vat`; the VAT is computed per rate on the
summed nets. A credit order names the order it credits in `credited_order_id`; its amounts
are positive, like every canonical credit note.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from nordflow_schemas.common import canonical_invoice_id
from nordflow_schemas.events import ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    Invoice,
    InvoiceLine,
    InvoiceReference,
    Party,
    PartyType,
    PaymentInstructions,
    Totals,
    VatBreakdown,
    VatCategory,
)
from pydantic import ValidationError

from .fortnox import Reader

CENT = Decimal("0.01")
PRICE_PLACES = Decimal("0.0001")


def money(value: Decimal) -> Decimal:
    """Rounded to the öre, half up (as Swedish invoices round)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def objects(
    r: Reader, data: dict[str, Any], key: str, field: str
) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a list with their index; anything else is a named issue."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        r.fail(field, "NF-TYPE", f"{field} must be a list, got {type(value).__name__}")
        return []
    items: list[tuple[int, dict[str, Any]]] = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            items.append((i, item))
        else:
            r.fail(f"{field}[{i}]", "NF-TYPE", f"{field}[{i}] must be an object")
    return items


def mapping(r: Reader, data: dict[str, Any], key: str, field: str) -> dict[str, Any]:
    """A nested JSON object ({} if absent; an issue if it is something else)."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        r.fail(field, "NF-TYPE", f"{field} must be an object")
        return {}
    return value


def country(value: Any, default: str) -> str:
    """An ISO 3166 alpha-2 code, or the default."""
    code = str(value or "").strip().upper()
    return code if len(code) == 2 and code.isalpha() and code.isascii() else default


def text_or_none(value: Any) -> str | None:
    """A non-empty string, or None."""
    text = str(value).strip() if value is not None else ""
    return text or None


def seller_party(r: Reader, profile: dict[str, Any]) -> tuple[Party | None, str]:
    """The tenant's seller profile (from the connection) as a party, and its country."""
    name = r.text(profile, "name", "seller.name", required=True)
    seller_country = country(profile.get("country_code"), "SE")
    if name is None:
        return None, seller_country
    try:
        return (
            Party(
                name=name,
                company_id=text_or_none(profile.get("organisation_number")),
                vat_id=text_or_none(profile.get("vat_number")),
                address=Address(
                    lines=tuple(str(x) for x in [profile.get("address1")] if x),
                    city=text_or_none(profile.get("city")),
                    postal_code=text_or_none(profile.get("zip_code")),
                    country_code=seller_country,
                ),
                email=text_or_none(profile.get("email")),
            ),
            seller_country,
        )
    except ValidationError as exc:
        r.fail_model("seller", "NF-SCHEMA", exc)
        return None, seller_country


def address(r: Reader, data: dict[str, Any], field: str, default_country: str) -> Address:
    """A postal address object: lines, postal_code, city, country_code."""
    lines = data.get("lines") or []
    if not isinstance(lines, list):
        r.fail(f"{field}.lines", "NF-TYPE", f"{field}.lines must be a list of strings")
        lines = []
    return Address(
        lines=tuple(str(x) for x in lines if x not in (None, ""))[:2],
        city=text_or_none(data.get("city")),
        postal_code=text_or_none(data.get("postal_code")),
        country_code=country(data.get("country_code"), default_country),
    )


def breakdown(taxable: dict[tuple[VatCategory, Decimal], Decimal]) -> tuple[VatBreakdown, ...]:
    """VAT per (category, rate), computed on the summed nets."""
    return tuple(
        VatBreakdown(
            category=category,
            rate=rate,
            taxable_amount=amount,
            tax_amount=money(amount * rate / 100),
            exemption_reason="Reverse charge" if category is VatCategory.REVERSE_CHARGE else None,
        )
        for (category, rate), amount in sorted(taxable.items())
    )


def schema_issues(exc: ValidationError) -> list[ValidationIssue]:
    """The canonical model's own complaints, as issues naming its fields."""
    return [
        ValidationIssue(
            field=".".join(str(p) for p in err["loc"]) or "invoice",
            rule="NF-SCHEMA",
            message=err["msg"],
        )
        for err in exc.errors()
    ]


def map_winner(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    """The canonical invoice for a Winner order, or every problem found (never an exception)."""
    try:
        return _map(event)
    except ArithmeticError as exc:  # a last guard: a strange number must not stop the consumer
        return [ValidationIssue(field="Order", rule="NF-NUMBER", message=str(exc))]


def _map(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    r = Reader()
    doc = event.payload
    seller, seller_country = seller_party(r, event.related.get("seller", {}))

    number = r.text(doc, "order_id", "Order.order_id", required=True)
    issue_date = r.date(doc, "order_date", "Order.order_date", required=True)
    due_date = r.date(doc, "due_date", "Order.due_date")
    currency = (r.text(doc, "currency", "Order.currency") or "SEK").upper()
    if not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("Order.currency", "NF-CURRENCY", f"not an ISO 4217 currency: {currency!r}")
    gross = doc.get("prices_include_vat") is True
    credited = text_or_none(doc.get("credited_order_id"))

    lines: list[InvoiceLine] = []
    taxable: dict[tuple[VatCategory, Decimal], Decimal] = defaultdict(Decimal)
    quoted = Decimal(0)  # the sum of the quote's gross amounts, when prices include VAT
    rows = objects(r, doc, "lines", "Order.lines")
    if not rows and "Order.lines" not in {i.field for i in r.issues}:
        r.fail("Order.lines", "BR-16", "an order needs at least one line")
    for i, row in rows:
        f = f"Order.lines[{i}]"
        description = r.text(row, "description", f"{f}.description", required=True)
        quantity = r.decimal(row, "quantity", f"{f}.quantity", default=Decimal(1))
        amount = r.decimal(row, "amount", f"{f}.amount")
        rate = r.decimal(row, "vat_rate", f"{f}.vat_rate")
        if not Decimal(0) <= rate < Decimal(100):
            r.fail(f"{f}.vat_rate", "NF-VAT-RATE", f"{f}.vat_rate must be 0..99 %, got {rate}")
            rate = Decimal(0)
        if quantity == 0:
            r.fail(f"{f}.quantity", "NF-QUANTITY", f"{f}.quantity must not be zero")
            quantity = Decimal(1)
        net = money(amount - money(amount * rate / (100 + rate))) if gross else money(amount)
        quoted += money(amount)
        category = VatCategory.STANDARD if rate > 0 else VatCategory.ZERO
        taxable[(category, rate)] += net
        try:
            lines.append(
                InvoiceLine(
                    line_id=str(len(lines) + 1),
                    description=description or "(no description)",
                    article_number=text_or_none(row.get("article_number")),
                    quantity=quantity,
                    unit_price=(net / quantity).quantize(PRICE_PLACES, rounding=ROUND_HALF_UP),
                    net_amount=net,
                    vat_category=category,
                    vat_rate=rate,
                )
            )
        except ValidationError as exc:
            r.fail_model(f, "NF-ROW", exc)

    customer = mapping(r, doc, "customer", "Order.customer")
    buyer_name = r.text(customer, "name", "Order.customer.name", required=True)
    project = mapping(r, doc, "project", "Order.project")
    project_number = r.text(project, "number", "Order.project.number", required=True)
    customer_address = mapping(r, customer, "address", "Order.customer.address")
    buyer_address = address(r, customer_address, "Order.customer.address", seller_country)
    if r.issues or seller is None:
        return r.issues

    vat = breakdown(taxable)
    net_total = sum((b.taxable_amount for b in vat), Decimal(0))
    vat_total = sum((b.tax_amount for b in vat), Decimal(0))
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
            text_or_none(doc.get("note")),
        )
        if x
    )
    try:
        return Invoice(
            invoice_id=event.invoice_id,
            tenant_id=event.tenant_id,
            source=event.source,
            document_type=DocumentType.CREDIT_NOTE if credited else DocumentType.INVOICE,
            number=str(number),
            issue_date=issue_date,  # type: ignore[arg-type]  # required: issue recorded if None
            due_date=due_date,
            currency=currency,
            seller=seller,
            buyer=Party(
                name=str(buyer_name),
                party_type=PartyType.COMPANY
                if str(customer.get("type") or "").lower() == "company"
                else PartyType.PRIVATE,
                company_id=text_or_none(customer.get("organisation_number")),
                vat_id=text_or_none(customer.get("vat_number")),
                address=buyer_address,
                email=text_or_none(customer.get("email")),
                customer_number=text_or_none(customer.get("customer_number")),
            ),
            lines=tuple(lines),
            vat_breakdown=vat,
            totals=Totals(
                line_extension=net_total,
                tax_exclusive=net_total,
                tax_total=vat_total,
                tax_inclusive=net_total + vat_total,
                rounding=rounding,
                payable=net_total + vat_total + rounding,
            ),
            payment=PaymentInstructions(
                account_id=text_or_none(event.related.get("seller", {}).get("bankgiro")),
                account_scheme="SE:BANKGIRO"
                if event.related.get("seller", {}).get("bankgiro")
                else None,
            ),
            buyer_reference=text_or_none(doc.get("reference")),
            order_reference=text_or_none(doc.get("quote_number")),
            preceding_invoice=InvoiceReference(
                number=credited,
                invoice_id=canonical_invoice_id(
                    event.tenant_id,
                    event.source.system.value,
                    event.source.connection_id,
                    credited,
                ),
            )
            if credited
            else None,
            note=note or None,
        )
    except ValidationError as exc:
        return schema_issues(exc)
