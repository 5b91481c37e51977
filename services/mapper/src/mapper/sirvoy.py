"""Map a Sirvoy invoice, cash receipt or credit invoice (with the tenant's seller profile).

Sirvoy row prices include VAT (Swedish hotel rooms and food 12 %, other goods 25 %): each
row's net is its gross amount less the VAT it contains, rounded to öre; the VAT is then
computed per (category, rate) on the summed nets, and whatever öre that leaves against
Sirvoy's total goes to the rounding amount (BT-114), so the canonical totals always add up.

A cash receipt already paid through an external provider such as Stripe does not flow (the
provider's payout is already booked): it comes back as one `NF-SKIP-CASH-PAID` issue.
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
MAX_AMOUNT = Decimal(10) ** 12
MAX_SOURCE_ROUNDING = Decimal("0.50")  # Swedish öresavrundning to whole kronor at most
INVOICE_TYPES = ("invoice", "cashReceipt")
COUNTRY_NAMES = {
    "SWEDEN": "SE",
    "SVERIGE": "SE",
    "NORWAY": "NO",
    "NORGE": "NO",
    "DENMARK": "DK",
    "DANMARK": "DK",
    "FINLAND": "FI",
    "SUOMI": "FI",
    "GERMANY": "DE",
    "DEUTSCHLAND": "DE",
    "TYSKLAND": "DE",
    "UNITED KINGDOM": "GB",
    "STORBRITANNIEN": "GB",
}


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _amount(
    r: Reader, data: dict[str, Any], key: str, field: str, *, default: Decimal | None = None
) -> Decimal:
    """A finite decimal of a sane size (huge exponents would break öre rounding)."""
    value = r.decimal(data, key, field, default=default)
    if abs(value) >= MAX_AMOUNT:
        r.fail(field, "NF-NUMBER", f"{field} is out of range: {data.get(key)!r}")
        return Decimal(0)
    return value


def _flag(r: Reader, data: dict[str, Any], key: str, field: str) -> bool:
    value = data.get(key)
    if value in (None, "", False, 0, "false", "False", "0"):
        return False
    if value in (True, 1, "true", "True", "1"):
        return True
    r.fail(field, "NF-BOOLEAN", f"{field} must be true or false, got {value!r}")
    return False


def _dicts(
    r: Reader, data: dict[str, Any], key: str, field: str
) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a list, with their index (None means empty); anything else: issue."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        r.fail(field, "NF-TYPE", f"{field} must be a list, got {type(value).__name__}")
        return []
    items: list[tuple[int, dict[str, Any]]] = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            items.append((i, item))
        else:
            r.fail(f"{field}[{i}]", "NF-TYPE", f"{field}[{i}] must be an object, got {item!r}")
    return items


def _country(value: Any, default: str) -> str:
    text = str(value or "").strip().upper()
    if len(text) == 2 and text.isalpha() and text.isascii():
        return text
    return COUNTRY_NAMES.get(text, default)


def _skip_reason(doc: dict[str, Any]) -> ValidationIssue | None:
    """A cash receipt paid through an external provider (e.g. Stripe) is not sent on."""
    if doc.get("type") != "cashReceipt" or not isinstance(doc.get("payments"), list | tuple):
        return None
    for i, payment in enumerate(doc["payments"]):
        if not isinstance(payment, dict):
            continue
        provider = str(payment.get("provider") or "").strip()
        if provider and str(payment.get("amount")) not in {"0", "0.0", "0.00"}:
            number = doc.get("invoiceNumber") or doc.get("invoiceId")
            return ValidationIssue(
                field=f"Invoice.payments[{i}].provider",
                rule="NF-SKIP-CASH-PAID",
                message=(
                    f"cash receipt {number} is already paid via {provider}; it is skipped "
                    f"because the {provider} payment is booked from the provider's payout"
                ),
            )
    return None


def map_sirvoy(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    """The canonical invoice, or every problem found (never an exception)."""
    skipped = _skip_reason(event.payload)
    if skipped is not None:
        return [skipped]
    try:
        return _map(event)
    except ArithmeticError as exc:  # a last guard: a strange number must not stop the consumer
        return [ValidationIssue(field="Invoice", rule="NF-NUMBER", message=str(exc))]


def _map(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    r = Reader()
    doc = event.payload
    seller_profile = event.related.get("seller", {})
    booking = event.related.get("booking", {})

    r.text(doc, "invoiceId", "Invoice.invoiceId", required=True)
    number = r.text(doc, "invoiceNumber", "Invoice.invoiceNumber", required=True)
    kind = r.text(doc, "type", "Invoice.type", required=True)
    if kind is not None and kind not in INVOICE_TYPES:
        r.fail("Invoice.type", "NF-ENUM", f"Invoice.type must be invoice or cashReceipt: {kind!r}")
    credit = (
        _flag(r, doc, "isCreditInvoice", "Invoice.isCreditInvoice")
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

    # Rows: gross (VAT included) → net per row; VAT per (category, rate) on the summed nets.
    lines: list[InvoiceLine] = []
    taxable: dict[tuple[VatCategory, Decimal], Decimal] = defaultdict(Decimal)
    gross_total = Decimal(0)
    rows = _dicts(r, doc, "rows", "Invoice.rows")
    if not rows and "Invoice.rows" not in {i.field for i in r.issues}:
        r.fail("Invoice.rows", "BR-16", "an invoice needs at least one row")
    for i, row in rows:
        f = f"Invoice.rows[{i}]"
        description = r.text(row, "description", f"{f}.description", required=True)
        quantity = _amount(r, row, "quantity", f"{f}.quantity")
        unit_price = _amount(r, row, "unitPrice", f"{f}.unitPrice")
        rate = _amount(r, row, "vatRate", f"{f}.vatRate")
        if not Decimal(0) <= rate < Decimal(100):
            r.fail(f"{f}.vatRate", "NF-VAT-RATE", f"{f}.vatRate must be 0..99 %, got {rate}")
            rate = Decimal(0)
        gross = _round(quantity * unit_price)
        if row.get("amount") not in (None, ""):
            stated = _amount(r, row, "amount", f"{f}.amount")
            if abs(stated - gross) > CENT:
                r.fail(
                    f"{f}.amount",
                    "NF-ROW-AMOUNT",
                    f"{f}.amount {stated} is not quantity x unitPrice = {gross}",
                )
        gross_total += gross * sign
        net = (gross - _round(gross * rate / (100 + rate))) * sign
        quantity *= sign
        category = VatCategory.STANDARD if rate > 0 else VatCategory.ZERO
        taxable[(category, rate)] += net
        net_price = (
            (net / quantity).quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)
            if quantity
            else (unit_price * 100 / (100 + rate)).quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)
        )
        account = r.text(row, "accountCode", f"{f}.accountCode")
        try:
            lines.append(
                InvoiceLine(
                    line_id=str(len(lines) + 1),
                    description=description or "(no description)",
                    quantity=quantity,
                    unit_price=net_price,
                    net_amount=net,
                    vat_category=category,
                    vat_rate=rate,
                    account_number=account,
                )
            )
        except ValidationError as exc:
            r.fail_model(f, "NF-ROW", exc)

    breakdown = tuple(
        VatBreakdown(
            category=category,
            rate=rate,
            taxable_amount=amount,
            tax_amount=_round(amount * rate / 100),
        )
        for (category, rate), amount in sorted(taxable.items())
    )
    net_total = sum((b.taxable_amount for b in breakdown), Decimal(0))
    vat_total = sum((b.tax_amount for b in breakdown), Decimal(0))

    total = _amount(r, doc, "totalAmount", "Invoice.totalAmount") * sign
    rows_read = bool(rows) and not any(i.field.startswith("Invoice.rows") for i in r.issues)
    if rows_read and abs(total - gross_total) > MAX_SOURCE_ROUNDING:
        r.fail(
            "Invoice.totalAmount",
            "NF-TOTAL",
            f"Invoice.totalAmount {total * sign} differs from the sum of the rows "
            f"{gross_total * sign}",
        )
    stated_vat = _amount(r, doc, "totalVat", "Invoice.totalVat", default=vat_total * sign) * sign
    if rows_read and abs(stated_vat - vat_total) > CENT * (len(rows) + 1):
        r.fail(
            "Invoice.totalVat",
            "NF-VAT-TOTAL",
            f"Invoice.totalVat {stated_vat * sign} differs from the VAT in the rows "
            f"{vat_total * sign}",
        )
    balance = (
        _amount(r, doc, "balance", "Invoice.balance") * sign
        if doc.get("balance") not in (None, "")
        else None
    )
    payments = _dicts(r, doc, "payments", "Invoice.payments")
    methods = sorted({str(p["method"]).strip() for _, p in payments if p.get("method")})

    recipient_value = doc.get("recipient")
    recipient: dict[str, Any] = {}
    if isinstance(recipient_value, dict):
        recipient = recipient_value
    elif recipient_value is not None:
        r.fail("Invoice.recipient", "NF-TYPE", "Invoice.recipient must be an object")
    org_number = r.text(recipient, "organisationNumber", "Invoice.recipient.organisationNumber")
    business = r.text(recipient, "businessName", "Invoice.recipient.businessName")
    person = r.text(recipient, "name", "Invoice.recipient.name")
    buyer_name = (business or person) if org_number else (person or business)
    if buyer_name is None:
        r.fail("Invoice.recipient.name", "NF-REQUIRED", "Invoice.recipient.name is required")

    seller_name = r.text(seller_profile, "name", "seller.name", required=True)
    seller_country = _country(seller_profile.get("country_code"), "SE")
    if r.issues:
        return r.issues

    guest = booking.get("guest") if isinstance(booking.get("guest"), dict) else {}
    email = recipient.get("email") or (guest or {}).get("email")
    reference = doc.get("paymentReference") or doc.get("ocr")
    try:
        return Invoice(
            invoice_id=event.invoice_id,
            tenant_id=event.tenant_id,
            source=event.source,
            document_type=DocumentType.CREDIT_NOTE if credit else DocumentType.INVOICE,
            number=str(number),
            issue_date=issue_date,  # type: ignore[arg-type]  # required: issue recorded if None
            due_date=due_date,
            currency=currency,
            seller=Party(
                name=str(seller_name),
                company_id=seller_profile.get("organisation_number"),
                vat_id=seller_profile.get("vat_number"),
                address=Address(
                    lines=tuple(x for x in [seller_profile.get("address1")] if x),
                    city=seller_profile.get("city"),
                    postal_code=seller_profile.get("zip_code"),
                    country_code=seller_country,
                ),
                email=seller_profile.get("email"),
            ),
            buyer=Party(
                name=str(buyer_name),
                party_type=PartyType.COMPANY if org_number else PartyType.PRIVATE,
                company_id=org_number,
                address=Address(
                    lines=tuple(str(x) for x in [recipient.get("address")] if x),
                    city=str(recipient.get("city") or "") or None,
                    postal_code=str(recipient.get("postcode") or "") or None,
                    country_code=_country(recipient.get("country"), seller_country),
                ),
                email=str(email) if email else None,
            ),
            lines=tuple(lines),
            vat_breakdown=breakdown,
            totals=Totals(
                line_extension=net_total,
                tax_exclusive=net_total,
                tax_total=vat_total,
                tax_inclusive=net_total + vat_total,
                rounding=total - (net_total + vat_total),
                payable=total,
            ),
            payment=PaymentInstructions(
                payment_reference=str(reference) if reference else None,
                account_id=seller_profile.get("bankgiro"),
                account_scheme="SE:BANKGIRO" if seller_profile.get("bankgiro") else None,
            ),
            buyer_reference=str(booking.get("guestReference") or "") or None,
            order_reference=str(doc.get("bookingId") or "") or None,
            preceding_invoice=InvoiceReference(
                number=str(credited_number),
                invoice_id=canonical_invoice_id(
                    event.tenant_id,
                    event.source.system.value,
                    event.source.connection_id,
                    credited_id,
                )
                if credited_id
                else None,
            )
            if credit
            else None,
            payment_method=",".join(methods) or None,
            outstanding_amount=balance,
        )
    except ValidationError as exc:
        return [
            ValidationIssue(
                field=".".join(str(p) for p in err["loc"]) or "invoice",
                rule="NF-SCHEMA",
                message=err["msg"],
            )
            for err in exc.errors()
        ]
