"""Read a Visma.net CustomerInvoice (with its Customer card) into the invoice builder.

Shapes follow the Visma.net ERP API (and the sandbox in ``nordflow_sandboxes.visma_net``):
dates are DateTimes at midnight (``2026-11-20T00:00:00``), a line's VAT code is
``vatCode: {"id", "description"}`` and its rate lives only in ``taxDetails`` (one entry per
VAT id: ``taxId``, ``vatRate``, ``taxableAmount``, ``vatAmount``). Amounts in the document
currency are read from the ``...InCurrency`` fields when present, else from the base fields.
The base fields are in the company's currency at ``exchangeRate`` (base units per document
unit), so a foreign-currency document's ``vatTotal`` is its VAT in accounting currency (BT-111).
The VAT breakdown is the document's own (``taxDetails``), checked against its lines.

A credit note (``documentType`` CreditNote) names the invoices it credits in ``applications``
(``docType`` Invoice, ``refNbr`` the invoice's reference number; created through
``applicationLines``). ``origInvoiceDate`` is the original invoice's date when it was set;
Visma.net defaults it to the document's own date, which says nothing about the original, so
the mapper then takes the date only from ``related["credited_invoice"]`` if the source gave it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nordflow_schemas.events import ErpDocumentFetched
from nordflow_schemas.invoice import ElectronicAddress, InvoiceReference, VatBreakdown, VatCategory
from nordflow_schemas.money import CENT, money

from ..domain.builder import InvoiceBuilder, Mapped, never_raises, totals
from ..domain.reader import Reader, obj, optional_text

DOC = "CustomerInvoice"
INVOICE_TYPES = frozenset({"invoice", "debitnote"})
CREDIT_TYPES = frozenset({"creditnote"})
CREDITABLE_TYPES = frozenset({"invoice", "debitnote"})
# Zero-rate Norwegian SAF-T sales codes (Visma.net NO standard VAT ids) → EN 16931 category.
ZERO_RATE_CODES: dict[str, tuple[VatCategory, str | None]] = {
    "5": (VatCategory.ZERO, None),
    "6": (VatCategory.EXEMPT, "Outside the scope of the VAT Act"),
    "51": (VatCategory.REVERSE_CHARGE, "Reverse charge"),
    "52": (VatCategory.EXPORT, "Export of goods and services"),
}
# Common Visma.net units of measure → UN/ECE Rec 20 codes; anything else becomes C62 (one).
UNIT_CODES = {
    "STK": "H87",
    "PCS": "H87",
    "PC": "H87",
    "EA": "EA",
    "HOUR": "HUR",
    "HOURS": "HUR",
    "TIME": "HUR",
    "TIMER": "HUR",
    "H": "HUR",
    "DAY": "DAY",
    "DAG": "DAY",
    "KG": "KGM",
    "M": "MTR",
    "L": "LTR",
    "KM": "KMT",
    "MONTH": "MON",
    "MND": "MON",
}


def _present(data: dict[str, Any], key: str) -> bool:
    return data.get(key) not in (None, "")


def _amount(
    r: Reader,
    data: dict[str, Any],
    key: str,
    field: str,
    *,
    default: Decimal | None = None,
    in_currency: bool = True,
) -> Decimal:
    """An amount in the document currency: ``{key}InCurrency`` if given, else ``key``.

    Both are checked when both are given, so a malformed base amount is still named.
    """
    currency_key = f"{key}InCurrency"
    if in_currency and _present(data, currency_key):
        if _present(data, key):
            r.decimal(data, key, field, default=Decimal(0))
        return r.decimal(data, currency_key, f"{field}InCurrency", default=default)
    return r.decimal(data, key, field, default=default)


def _category(tax_id: str, rate: Decimal) -> tuple[VatCategory, str | None]:
    if rate > 0:
        return VatCategory.STANDARD, None
    return ZERO_RATE_CODES.get(tax_id, (VatCategory.ZERO, None))


def _document_type(r: Reader, doc: dict[str, Any], event: ErpDocumentFetched) -> bool:
    """True for a credit note (from ``documentType``; the fetched kind if it is missing)."""
    field = f"{DOC}.documentType"
    raw = doc.get("documentType")
    value = optional_text(obj(raw).get("value") if isinstance(raw, dict) else raw)
    if value is None:
        return event.kind.value == "credit_note"
    kind = value.replace(" ", "").lower()
    if kind in CREDIT_TYPES:
        return True
    if kind not in INVOICE_TYPES:
        r.fail(field, "NF-DOCTYPE", f"{field} {value!r} is not an Invoice, DebitNote or CreditNote")
    return False


def _credited_invoice(
    b: InvoiceBuilder, doc: dict[str, Any], credited: dict[str, Any], issue_date: dt.date | None
) -> InvoiceReference | None:
    """BG-3 of a credit note: the first invoice among its ``applications``.

    EN 16931 allows several preceding invoices, the canonical invoice one: a credit note
    spread over several invoices names the first it was applied to.
    """
    r = b.r
    applications = doc.get("applications")
    if not isinstance(applications, list):
        return None
    for i, raw in enumerate(applications):
        application = obj(raw)
        kind = (optional_text(application.get("docType")) or "").replace(" ", "").lower()
        number = optional_text(application.get("refNbr"))
        if kind not in CREDITABLE_TYPES or number is None:
            continue
        original_date = r.date(doc, "origInvoiceDate", f"{DOC}.origInvoiceDate", with_time=True)
        if original_date == issue_date:
            original_date = None  # Visma.net's default: the credit note's own date
        if optional_text(credited.get("referenceNumber")) == number:
            original_date = (
                r.date(credited, "documentDate", "credited_invoice.documentDate", with_time=True)
                or original_date
            )
        if original_date is not None and issue_date is not None and original_date > issue_date:
            r.fail(
                f"{DOC}.applications[{i}]",
                "NF-CREDIT-REF",
                f"the credited invoice {number} is dated {original_date}, after the credit note",
            )
        return b.credited(number, issue_date=original_date)
    return None


@dataclass
class _TaxDetails:
    """The document's VAT ids: rate, taxable amount, VAT, name and the field each came from."""

    listed: bool = False  # taxDetails has entries (even unreadable ones)
    rates: dict[str, Decimal] = field(default_factory=dict)
    base: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    vat: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    names: dict[str, str | None] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def breakdown(self) -> tuple[VatBreakdown, ...]:
        """BG-23 grouped by (category, rate), with the VAT code's exemption reason."""
        grouped: dict[tuple[VatCategory, Decimal], list[Decimal]] = {}
        reasons: dict[tuple[VatCategory, Decimal], str | None] = {}
        for tax_id, rate in self.rates.items():
            category, reason = _category(tax_id, rate)
            key = (category, rate if category is VatCategory.STANDARD else Decimal(0))
            sums = grouped.setdefault(key, [Decimal(0), Decimal(0)])
            sums[0] += self.base[tax_id]
            sums[1] += self.vat[tax_id]
            if category is not VatCategory.STANDARD and category is not VatCategory.ZERO:
                reasons.setdefault(key, reason or self.names.get(tax_id))
        return tuple(
            VatBreakdown(
                category=category,
                rate=rate,
                taxable_amount=base,
                tax_amount=vat,
                exemption_reason=reasons.get((category, rate)),
            )
            for (category, rate), (base, vat) in sorted(grouped.items())
        )


def _tax_details(r: Reader, doc: dict[str, Any], sign: Decimal) -> _TaxDetails:
    """VAT ids → rate and the document's own breakdown (``taxDetails``)."""
    taxes = _TaxDetails()
    details = doc.get("taxDetails")
    if not isinstance(details, list) or not details:
        r.fail(f"{DOC}.taxDetails", "NF-REQUIRED", "the VAT breakdown (taxDetails) is missing")
        details = []
    taxes.listed = bool(details)
    for i, raw_detail in enumerate(details):
        f = f"{DOC}.taxDetails[{i}]"
        detail = obj(raw_detail)
        tax = obj(detail.get("taxId"))
        tax_id = optional_text(tax.get("id")) or optional_text(detail.get("taxId"))
        if tax_id is None:
            r.fail(f"{f}.taxId.id", "NF-REQUIRED", f"{f}.taxId.id is required")
            continue
        rate = r.decimal(detail, "vatRate", f"{f}.vatRate")
        if rate < 0 or rate > 100:
            r.fail(f"{f}.vatRate", "NF-VAT-RATE", f"{f}.vatRate {rate} is not a VAT percentage")
        if tax_id in taxes.rates and taxes.rates[tax_id] != rate:
            r.fail(f"{f}.vatRate", "NF-VAT-RATE", f"VAT id {tax_id!r} has two rates")
        taxes.rates[tax_id] = rate
        taxes.base[tax_id] += _amount(r, detail, "taxableAmount", f"{f}.taxableAmount") * sign
        taxes.vat[tax_id] += _amount(r, detail, "vatAmount", f"{f}.vatAmount") * sign
        taxes.names[tax_id] = optional_text(tax.get("description"))
        taxes.fields.setdefault(tax_id, f)
    return taxes


def _lines(b: InvoiceBuilder, doc: dict[str, Any], sign: Decimal, taxes: _TaxDetails) -> None:
    """Each invoice line; each VAT id's taxable amount must be what its lines add up to."""
    r = b.r
    line_base: dict[str, Decimal] = defaultdict(Decimal)
    rows = doc.get("invoiceLines")
    if not isinstance(rows, list) or not rows:
        r.fail(f"{DOC}.invoiceLines", "BR-16", "an invoice needs at least one line")
        rows = []
    for i, row in enumerate(rows):
        f = f"{DOC}.invoiceLines[{i}]"
        if not isinstance(row, dict):
            r.fail(f, "NF-LINE", f"{f} must be an object")
            continue
        before = len(r.issues)
        quantity = r.decimal(row, "quantity", f"{f}.quantity") * sign
        price = _amount(r, row, "unitPrice", f"{f}.unitPrice")
        discount = _amount(r, row, "discountAmount", f"{f}.discountAmount", default=Decimal(0))
        gross = money(quantity * sign * price)
        net = _amount(r, row, "amount", f"{f}.amount", default=gross - discount) * sign
        vat_code = row.get("vatCode")
        tax_id = (
            optional_text(obj(vat_code).get("id"))
            if isinstance(vat_code, dict)
            else optional_text(vat_code)
        )
        if tax_id is None:
            r.fail(f"{f}.vatCode.id", "NF-REQUIRED", f"{f}.vatCode.id is required")
        elif taxes.listed and tax_id not in taxes.rates:
            r.fail(
                f"{f}.vatCode.id",
                "NF-VAT-CODE",
                f"VAT code {tax_id!r} of {f} has no rate in {DOC}.taxDetails",
            )
        if len(r.issues) > before or tax_id is None or tax_id not in taxes.rates:
            continue
        rate = taxes.rates[tax_id]
        category, _reason = _category(tax_id, rate)
        line_base[tax_id] += net
        article = optional_text(row.get("inventoryNumber"))
        b.add_line(
            f,
            line_id=optional_text(row.get("lineNumber")),
            description=optional_text(row.get("description")) or article,
            article_number=article,
            quantity=quantity,
            unit_code=UNIT_CODES.get((optional_text(row.get("uom")) or "").upper(), "C62"),
            unit_price=price,
            allowance=money(quantity * price - net),
            net=net,
            category=category,
            rate=rate if category is VatCategory.STANDARD else Decimal(0),
            account=optional_text(obj(row.get("account")).get("number")),
            rule="NF-LINE",
        )
    if b.lines:
        for tax_id, f in taxes.fields.items():
            if abs(taxes.base[tax_id] - line_base[tax_id]) > CENT:
                r.fail(
                    f"{f}.taxableAmount",
                    "NF-VAT-BASE",
                    f"taxable amount {taxes.base[tax_id]} for VAT id {tax_id!r} differs from "
                    f"its lines' total {line_base[tax_id]}",
                )


def _electronic_address(card: dict[str, Any], country: str) -> ElectronicAddress | None:
    """The card's GLN, else a Norwegian buyer's organisation number (ICD 0192)."""
    gln = optional_text(card.get("gln"))
    if gln:
        return ElectronicAddress(scheme="0088", value=gln)
    corporate_id = optional_text(card.get("corporateId"))
    if corporate_id and country == "NO":
        digits = "".join(ch for ch in corporate_id if ch.isdigit())
        if len(digits) == 9:
            return ElectronicAddress(scheme="0192", value=digits)
    return None


@never_raises(DOC)
def map_visma_net(event: ErpDocumentFetched) -> Mapped:
    """The canonical invoice, or every problem found (never an exception)."""
    r = Reader()
    b = InvoiceBuilder(r, event, home_country="NO")
    doc = event.payload
    card = obj(event.related.get("customer"))

    credit = _document_type(r, doc, event)
    number = r.text(doc, "referenceNumber", f"{DOC}.referenceNumber", required=True)
    issue_date = r.date(doc, "documentDate", f"{DOC}.documentDate", required=True, with_time=True)
    due_date = r.date(doc, "documentDueDate", f"{DOC}.documentDueDate", with_time=True)

    currency_field = f"{DOC}.currencyId"
    currency = (
        optional_text(doc.get("currencyId"))
        or optional_text(card.get("currencyId"))
        or b.currency
        or ""
    ).upper()
    if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        if optional_text(doc.get("currencyId")) is None:
            r.fail(currency_field, "NF-REQUIRED", f"{currency_field} is required")
        else:
            r.fail(currency_field, "NF-CURRENCY", f"{currency_field} {currency!r} is not ISO 4217")

    # The document total decides the sign: credit notes may come with negative amounts.
    payable = _amount(r, doc, "amount", f"{DOC}.amount")
    sign = Decimal(-1) if credit and payable < 0 else Decimal(1)
    payable *= sign
    taxes = _tax_details(r, doc, sign)
    _lines(b, doc, sign, taxes)

    line_total = b.line_total
    if _present(doc, "detailTotal") or _present(doc, "detailTotalInCurrency"):
        line_total = _amount(r, doc, "detailTotal", f"{DOC}.detailTotal") * sign
    vat_total = _amount(r, doc, "vatTotal", f"{DOC}.vatTotal") * sign
    rounding = _amount(r, doc, "roundingDiff", f"{DOC}.roundingDiff", default=Decimal(0)) * sign
    balance = (
        _amount(r, doc, "balance", f"{DOC}.balance") * sign
        if _present(doc, "balance") or _present(doc, "balanceInCurrency")
        else None
    )
    preceding = (
        _credited_invoice(b, doc, obj(event.related.get("credited_invoice")), issue_date)
        if credit
        else None
    )
    accounting = b.accounting_vat(
        currency=currency,
        vat_total=vat_total,
        rate=r.decimal(doc, "exchangeRate", f"{DOC}.exchangeRate")
        if _present(doc, "exchangeRate")
        else None,
        rate_field=f"{DOC}.exchangeRate",
        booked=_amount(r, doc, "vatTotal", f"{DOC}.vatTotal", in_currency=False) * sign
        if _present(doc, "vatTotal") and _present(doc, "vatTotalInCurrency")
        else None,
    )

    customer = obj(doc.get("customer"))
    customer_number = optional_text(customer.get("number")) or optional_text(card.get("number"))
    card_number = optional_text(card.get("number"))
    if card_number and optional_text(customer.get("number")) and card_number != customer_number:
        r.fail(
            f"{DOC}.customer.number",
            "NF-CUSTOMER",
            f"the invoice's customer {customer_number!r} is not the card fetched ({card_number!r})",
        )
    buyer_name = optional_text(customer.get("name")) or optional_text(card.get("name"))
    if buyer_name is None:
        r.fail(f"{DOC}.customer.name", "NF-REQUIRED", f"{DOC}.customer.name is required")
    address = obj(card.get("invoiceAddress")) or obj(card.get("mainAddress"))
    buyer_address = b.address(
        (address.get("addressLine1"), address.get("addressLine2")),
        city=address.get("city"),
        postal_code=address.get("postalCode"),
        country=obj(address.get("country")).get("id"),
    )
    buyer = b.buyer(
        buyer_name,
        company_id=card.get("corporateId"),
        vat_id=card.get("vatRegistrationId"),
        electronic_address=_electronic_address(card, buyer_address.country_code),
        address=buyer_address,
        email=optional_text(obj(card.get("invoiceContact")).get("email"))
        or optional_text(obj(card.get("mainContact")).get("email")),
        customer_number=customer_number,
    )
    payment_method = doc.get("paymentMethod")
    return b.build(
        credit=credit,
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        buyer=buyer,
        vat=taxes.breakdown(),
        totals=totals(line_total, vat_total, rounding=rounding, payable=payable),
        payment_reference="".join((optional_text(doc.get("paymentReference")) or "").split())
        or None,
        terms=optional_text(obj(doc.get("creditTerms")).get("id")),
        order_reference=optional_text(doc.get("customerRefNumber")),
        preceding=preceding,
        note=optional_text(doc.get("invoiceText")),
        payment_method=optional_text(obj(payment_method).get("id"))
        if isinstance(payment_method, dict)
        else optional_text(payment_method),
        outstanding=balance,
        accounting=accounting,
    )
