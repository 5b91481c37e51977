"""Map a Fortnox v3 invoice (with its customer card and the tenant's seller profile)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from nordflow_schemas.events import ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    ElectronicAddress,
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

from .validation import accounting_currency

CENT = Decimal("0.01")
LIMIT = Decimal(10) ** 12
# BT-120 texts EN 16931 asks for (BR-AE-10, BR-G-10).
EXEMPTION_REASONS = {
    VatCategory.REVERSE_CHARGE: "Reverse charge",
    VatCategory.EXPORT: "Export outside the EU",
}


class Reader:
    """Reads source fields, collecting a readable issue for each one that is missing or bad."""

    def __init__(self) -> None:
        self.issues: list[ValidationIssue] = []

    def fail(self, field: str, rule: str, message: str) -> None:
        """Record one problem."""
        self.issues.append(ValidationIssue(field=field, rule=rule, message=message))

    def fail_model(self, field: str, rule: str, exc: ValidationError) -> None:
        """One issue per problem pydantic found, each naming its field under ``field``."""
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            self.fail(f"{field}.{where}" if where else field, rule, error["msg"])

    def text(
        self, data: dict[str, Any], key: str, field: str, *, required: bool = False
    ) -> str | None:
        """A non-empty string, or None (an issue if required)."""
        value = data.get(key)
        if value is None or str(value).strip() == "":
            if required:
                self.fail(field, "NF-REQUIRED", f"{field} is required")
            return None
        return str(value).strip()

    def decimal(
        self, data: dict[str, Any], key: str, field: str, *, default: Decimal | None = None
    ) -> Decimal:
        """A finite decimal (money is never parsed through float here)."""
        value = data.get(key)
        if value is None or value == "":
            if default is not None:
                return default
            self.fail(field, "NF-REQUIRED", f"{field} is required")
            return Decimal(0)
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            self.fail(field, "NF-NUMBER", f"{field} must be a number, got {value!r}")
            return Decimal(0)
        if abs(number) >= LIMIT:
            # Beyond any invoice, and beyond what Decimal arithmetic keeps exact to the öre.
            self.fail(field, "NF-NUMBER", f"{field} is out of range: {value!r}")
            return Decimal(0)
        return number

    def date(
        self, data: dict[str, Any], key: str, field: str, *, required: bool = False
    ) -> dt.date | None:
        """An ISO date (YYYY-MM-DD)."""
        value = self.text(data, key, field, required=required)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(field, "NF-DATE", f"{field} must be a date YYYY-MM-DD, got {value!r}")
            return None


def vat_in_accounting_currency(
    r: Reader,
    *,
    currency: str,
    accounting: str | None,
    vat_total: Decimal,
    rate: Decimal | None,
    rate_field: str,
    booked: Decimal | None = None,
) -> tuple[str | None, Decimal | None, Decimal | None]:
    """(BT-6, BT-111, exchange rate) of an invoice; all None in the accounting currency.

    `rate` is accounting-currency units per invoice-currency unit. `booked` is the VAT total
    in the accounting currency as the source booked it, when it states one; otherwise it is
    the VAT total at the rate, rounded to cents.
    """
    if accounting is None or currency == accounting:
        return None, None, None
    if rate is None:
        r.fail(
            rate_field,
            "NF-REQUIRED",
            f"{rate_field} is required for an invoice in {currency}: its VAT must also be "
            f"stated in {accounting}",
        )
        return None, None, None
    if rate <= 0:
        r.fail(rate_field, "NF-CURRENCY-RATE", f"{rate_field} must be positive, got {rate}")
        return None, None, None
    vat = booked if booked is not None else (vat_total * rate).quantize(CENT, ROUND_HALF_UP)
    return accounting, vat, rate


def _vat_category(rate: Decimal, customer: dict[str, Any]) -> VatCategory:
    vat_type = str(customer.get("VATType") or "SEVAT").upper()
    if vat_type in {"SEREVERSEDVAT", "EUREVERSEDVAT"}:
        return VatCategory.REVERSE_CHARGE
    if vat_type == "EXPORT":
        return VatCategory.EXPORT
    return VatCategory.STANDARD if rate > 0 else VatCategory.ZERO


def _country(value: str | None, default: str) -> str:
    code = (value or "").strip().upper()
    return code if len(code) == 2 and code.isalpha() else default


def map_fortnox(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    """The canonical invoice, or every problem found (never an exception)."""
    r = Reader()
    doc = event.payload
    customer = event.related.get("customer", {})
    seller_profile = event.related.get("seller", {})
    credit = event.kind.value == "credit_note"
    sign = Decimal(-1) if credit else Decimal(1)

    number = r.text(doc, "DocumentNumber", "Invoice.DocumentNumber", required=True)
    issue_date = r.date(doc, "InvoiceDate", "Invoice.InvoiceDate", required=True)
    due_date = r.date(doc, "DueDate", "Invoice.DueDate")
    currency = (r.text(doc, "Currency", "Invoice.Currency") or "SEK").upper()
    seller_country = _country(seller_profile.get("country_code"), "SE")

    lines: list[InvoiceLine] = []
    taxable: dict[tuple[VatCategory, Decimal], Decimal] = defaultdict(Decimal)
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
        effective_rate = rate if category is VatCategory.STANDARD else Decimal(0)
        taxable[(category, effective_rate)] += net
        try:
            lines.append(
                InvoiceLine(
                    line_id=str(len(lines) + 1),
                    description=str(row.get("Description") or row.get("ArticleNumber") or "")
                    or "(no description)",
                    article_number=str(row["ArticleNumber"]) if row.get("ArticleNumber") else None,
                    quantity=quantity,
                    unit_code=str(row.get("Unit") or "C62"),
                    unit_price=price,
                    allowance_amount=(quantity * price - net).quantize(CENT),
                    net_amount=net,
                    vat_category=category,
                    vat_rate=effective_rate,
                    account_number=str(row["AccountNumber"]) if row.get("AccountNumber") else None,
                )
            )
        except ValidationError as exc:
            r.fail_model(f, "NF-ROW", exc)

    breakdown = tuple(
        VatBreakdown(
            category=category,
            rate=rate,
            taxable_amount=amount,
            tax_amount=(amount * rate / 100).quantize(CENT),
            exemption_reason=EXEMPTION_REASONS.get(category),
        )
        for (category, rate), amount in sorted(taxable.items())
    )
    net_total = r.decimal(doc, "Net", "Invoice.Net") * sign
    vat_total = r.decimal(doc, "TotalVAT", "Invoice.TotalVAT") * sign
    rounding = r.decimal(doc, "RoundOff", "Invoice.RoundOff", default=Decimal(0)) * sign
    total = r.decimal(doc, "Total", "Invoice.Total") * sign
    balance = (
        r.decimal(doc, "Balance", "Invoice.Balance") * sign
        if doc.get("Balance") not in (None, "")
        else None
    )

    # Fortnox amounts are in the invoice currency; CurrencyRate is SEK per CurrencyUnit units.
    currency_rate: Decimal | None = None
    if doc.get("CurrencyRate") not in (None, ""):
        unit = r.decimal(doc, "CurrencyUnit", "Invoice.CurrencyUnit", default=Decimal(1))
        if unit <= 0:
            r.fail(
                "Invoice.CurrencyUnit", "NF-CURRENCY-RATE", f"CurrencyUnit {unit} is not positive"
            )
            unit = Decimal(1)
        currency_rate = r.decimal(doc, "CurrencyRate", "Invoice.CurrencyRate") / unit
    vat_currency, vat_accounting, exchange_rate = vat_in_accounting_currency(
        r,
        currency=currency,
        accounting=accounting_currency(seller_country) or "SEK",
        vat_total=vat_total,
        rate=currency_rate,
        rate_field="Invoice.CurrencyRate",
    )

    buyer_name = r.text(doc, "CustomerName", "Invoice.CustomerName", required=True)
    buyer_country = _country(doc.get("CountryCode") or customer.get("CountryCode"), seller_country)
    gln = customer.get("GLN") or customer.get("GLNDelivery")
    email = (doc.get("EmailInformation") or {}).get("EmailAddressTo") or customer.get(
        "EmailInvoice"
    )
    seller_name = r.text(seller_profile, "name", "seller.name", required=True)
    if r.issues:
        return r.issues
    try:
        invoice = Invoice(
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
                party_type=PartyType.PRIVATE
                if str(customer.get("Type", "")).upper() == "PRIVATE"
                else PartyType.COMPANY,
                company_id=(doc.get("OrganisationNumber") or customer.get("OrganisationNumber"))
                or None,
                vat_id=customer.get("VATNumber") or None,
                electronic_address=ElectronicAddress(scheme="0088", value=str(gln))
                if gln
                else None,
                address=Address(
                    lines=tuple(x for x in (doc.get("Address1"), doc.get("Address2")) if x),
                    city=doc.get("City") or None,
                    postal_code=doc.get("ZipCode") or None,
                    country_code=buyer_country,
                ),
                email=email or None,
                customer_number=str(doc.get("CustomerNumber") or "") or None,
            ),
            lines=tuple(lines),
            vat_breakdown=breakdown,
            totals=Totals(
                line_extension=net_total,
                tax_exclusive=net_total,
                tax_total=vat_total,
                tax_inclusive=net_total + vat_total,
                rounding=rounding,
                payable=total,
            ),
            payment=PaymentInstructions(
                payment_reference=str(doc.get("OCR") or "") or None,
                account_id=seller_profile.get("bankgiro"),
                account_scheme="SE:BANKGIRO" if seller_profile.get("bankgiro") else None,
                terms=str(doc.get("TermsOfPayment") or "") or None,
            ),
            buyer_reference=str(doc.get("YourReference") or "") or None,
            order_reference=str(doc.get("YourOrderNumber") or "") or None,
            preceding_invoice=InvoiceReference(number=str(doc["CreditInvoiceReference"]))
            if credit and doc.get("CreditInvoiceReference") not in (None, "", "0", 0)
            else None,
            payment_method=str(doc.get("PaymentWay") or "") or None,
            outstanding_amount=balance,
            vat_accounting_currency=vat_currency,
            vat_total_accounting_currency=vat_accounting,
            exchange_rate=exchange_rate,
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
    return invoice
