"""Map a Visma.net CustomerInvoice (with its Customer card and the tenant's seller profile).

Shapes follow the Visma.net ERP API (and the sandbox in ``nordflow_sandboxes.visma_net``):
dates are DateTimes at midnight (``2026-11-20T00:00:00``), a line's VAT code is
``vatCode: {"id", "description"}`` and its rate lives only in ``taxDetails`` (one entry per
VAT id: ``taxId``, ``vatRate``, ``taxableAmount``, ``vatAmount``). Amounts in the document
currency are read from the ``...InCurrency`` fields when present, else from the base fields.
The base fields are in the company's currency at ``exchangeRate`` (base units per document
unit), so a foreign-currency document's ``vatTotal`` is its VAT in accounting currency (BT-111).

A credit note (``documentType`` CreditNote) names the invoices it credits in ``applications``
(``docType`` Invoice, ``refNbr`` the invoice's reference number; created through
``applicationLines``). ``origInvoiceDate`` is the original invoice's date when it was set;
Visma.net defaults it to the document's own date, which says nothing about the original, so
the mapper then takes the date only from ``related["credited_invoice"]`` if the source gave it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
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
    PaymentInstructions,
    Totals,
    VatBreakdown,
    VatCategory,
)
from pydantic import ValidationError

from .fortnox import Reader, vat_in_accounting_currency
from .validation import accounting_currency

CENT = Decimal("0.01")
DOC = "CustomerInvoice"
CUSTOMER = "Customer"
# Larger amounts are refused rather than risk decimal overflow in cent rounding.
MAX_AMOUNT = Decimal(10) ** 12
INVOICE_TYPES = frozenset({"invoice", "debitnote"})
CREDIT_TYPES = frozenset({"creditnote"})
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
DEFAULT_CURRENCY = {"NO": "NOK", "SE": "SEK", "DK": "DKK", "FI": "EUR"}
CREDITABLE_TYPES = frozenset({"invoice", "debitnote"})


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _opt(value: Any) -> str | None:
    """A stripped non-empty string, or None (scalars only)."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _country(value: Any, default: str) -> str:
    code = (_opt(value) or "").upper()
    return code if len(code) == 2 and code.isalpha() else default


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
    chosen = key
    if in_currency and _present(data, currency_key):
        chosen = currency_key
        if _present(data, key):
            _checked(r, data, key, f"{field}", default=Decimal(0))
    return _checked(r, data, chosen, f"{field}InCurrency" if chosen != key else field, default)


def _checked(
    r: Reader, data: dict[str, Any], key: str, field: str, default: Decimal | None
) -> Decimal:
    before = len(r.issues)
    value = r.decimal(data, key, field, default=default)
    if len(r.issues) == before and abs(value) >= MAX_AMOUNT:
        r.fail(field, "NF-NUMBER", f"{field} is out of range: {data.get(key)!r}")
        return Decimal(0)
    return value


def _date(
    r: Reader, data: dict[str, Any], key: str, field: str, *, required: bool = False
) -> dt.date | None:
    """A Visma.net date: ``YYYY-MM-DD`` or a DateTime such as ``2026-11-20T00:00:00``."""
    value = r.text(data, key, field, required=required)
    if value is None:
        return None
    try:
        if "T" in value or " " in value:
            return dt.datetime.fromisoformat(value).date()
        return dt.date.fromisoformat(value)
    except ValueError:
        r.fail(field, "NF-DATE", f"{field} must be a date YYYY-MM-DD, got {value!r}")
        return None


def _category(tax_id: str, rate: Decimal) -> tuple[VatCategory, str | None]:
    if rate > 0:
        return VatCategory.STANDARD, None
    return ZERO_RATE_CODES.get(tax_id, (VatCategory.ZERO, None))


def _address(data: dict[str, Any], default_country: str) -> Address:
    return Address(
        lines=tuple(
            line
            for line in (_opt(data.get("addressLine1")), _opt(data.get("addressLine2")))
            if line
        ),
        city=_opt(data.get("city")),
        postal_code=_opt(data.get("postalCode")),
        country_code=_country(_obj(data.get("country")).get("id"), default_country),
    )


def _document_type(r: Reader, doc: dict[str, Any], event: ErpDocumentFetched) -> bool:
    """True for a credit note (from ``documentType``; the fetched kind if it is missing)."""
    field = f"{DOC}.documentType"
    raw = doc.get("documentType")
    value = _opt(_obj(raw).get("value") if isinstance(raw, dict) else raw)
    if value is None:
        return event.kind.value == "credit_note"
    kind = value.replace(" ", "").lower()
    if kind in CREDIT_TYPES:
        return True
    if kind not in INVOICE_TYPES:
        r.fail(field, "NF-DOCTYPE", f"{field} {value!r} is not an Invoice, DebitNote or CreditNote")
    return False


def _credited_invoice(
    r: Reader, doc: dict[str, Any], credited: dict[str, Any], issue_date: dt.date | None
) -> InvoiceReference | None:
    """BG-3 of a credit note: the first invoice among its ``applications``.

    EN 16931 allows several preceding invoices, the canonical invoice one: a credit note
    spread over several invoices names the first it was applied to.
    """
    applications = doc.get("applications")
    if not isinstance(applications, list):
        return None
    for i, raw in enumerate(applications):
        application = _obj(raw)
        kind = (_opt(application.get("docType")) or "").replace(" ", "").lower()
        number = _opt(application.get("refNbr"))
        if kind not in CREDITABLE_TYPES or number is None:
            continue
        original_date = _date(r, doc, "origInvoiceDate", f"{DOC}.origInvoiceDate")
        if original_date == issue_date:
            original_date = None  # Visma.net's default: the credit note's own date
        if _opt(credited.get("referenceNumber")) == number:
            original_date = (
                _date(r, credited, "documentDate", "credited_invoice.documentDate") or original_date
            )
        if original_date is not None and issue_date is not None and original_date > issue_date:
            r.fail(
                f"{DOC}.applications[{i}]",
                "NF-CREDIT-REF",
                f"the credited invoice {number} is dated {original_date}, after the credit note",
            )
        return InvoiceReference(number=number, issue_date=original_date)
    return None


def map_visma_net(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    """The canonical invoice, or every problem found (never an exception)."""
    r = Reader()
    doc = event.payload
    card = _obj(event.related.get("customer"))
    seller_profile = _obj(event.related.get("seller"))
    seller_country = _country(seller_profile.get("country_code"), "NO")

    credit = _document_type(r, doc, event)
    number = r.text(doc, "referenceNumber", f"{DOC}.referenceNumber", required=True)
    issue_date = _date(r, doc, "documentDate", f"{DOC}.documentDate", required=True)
    due_date = _date(r, doc, "documentDueDate", f"{DOC}.documentDueDate")

    currency_field = f"{DOC}.currencyId"
    currency = (
        _opt(doc.get("currencyId"))
        or _opt(card.get("currencyId"))
        or DEFAULT_CURRENCY.get(seller_country)
        or ""
    ).upper()
    if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        if _opt(doc.get("currencyId")) is None:
            r.fail(currency_field, "NF-REQUIRED", f"{currency_field} is required")
        else:
            r.fail(currency_field, "NF-CURRENCY", f"{currency_field} {currency!r} is not ISO 4217")

    # The document total decides the sign: credit notes may come with negative amounts.
    payable = _amount(r, doc, "amount", f"{DOC}.amount")
    sign = Decimal(-1) if credit and payable < 0 else Decimal(1)
    payable *= sign

    # VAT ids → rate and the document's own breakdown.
    tax_rates: dict[str, Decimal] = {}
    tax_base: dict[str, Decimal] = defaultdict(Decimal)
    tax_amount: dict[str, Decimal] = defaultdict(Decimal)
    tax_names: dict[str, str | None] = {}
    tax_fields: dict[str, str] = {}
    details = doc.get("taxDetails")
    if not isinstance(details, list) or not details:
        r.fail(f"{DOC}.taxDetails", "NF-REQUIRED", "the VAT breakdown (taxDetails) is missing")
        details = []
    for i, raw_detail in enumerate(details):
        f = f"{DOC}.taxDetails[{i}]"
        detail = _obj(raw_detail)
        tax = _obj(detail.get("taxId"))
        tax_id = _opt(tax.get("id")) or _opt(detail.get("taxId"))
        if tax_id is None:
            r.fail(f"{f}.taxId.id", "NF-REQUIRED", f"{f}.taxId.id is required")
            continue
        rate = _checked(r, detail, "vatRate", f"{f}.vatRate", None)
        if rate < 0 or rate > 100:
            r.fail(f"{f}.vatRate", "NF-VAT-RATE", f"{f}.vatRate {rate} is not a VAT percentage")
        if tax_id in tax_rates and tax_rates[tax_id] != rate:
            r.fail(f"{f}.vatRate", "NF-VAT-RATE", f"VAT id {tax_id!r} has two rates")
        tax_rates[tax_id] = rate
        tax_base[tax_id] += _amount(r, detail, "taxableAmount", f"{f}.taxableAmount") * sign
        tax_amount[tax_id] += _amount(r, detail, "vatAmount", f"{f}.vatAmount") * sign
        tax_names[tax_id] = _opt(tax.get("description"))
        tax_fields.setdefault(tax_id, f)

    lines: list[InvoiceLine] = []
    line_base: dict[str, Decimal] = defaultdict(Decimal)
    rows = doc.get("invoiceLines")
    if not isinstance(rows, list) or not rows:
        r.fail(f"{DOC}.invoiceLines", "BR-16", "an invoice needs at least one line")
        rows = []
    for i, raw_row in enumerate(rows):
        f = f"{DOC}.invoiceLines[{i}]"
        if not isinstance(raw_row, dict):
            r.fail(f, "NF-LINE", f"{f} must be an object")
            continue
        row = raw_row
        before = len(r.issues)
        quantity = _checked(r, row, "quantity", f"{f}.quantity", None) * sign
        price = _amount(r, row, "unitPrice", f"{f}.unitPrice")
        discount = _amount(r, row, "discountAmount", f"{f}.discountAmount", default=Decimal(0))
        gross = (quantity * sign * price).quantize(CENT)
        net = _amount(r, row, "amount", f"{f}.amount", default=gross - discount) * sign
        vat_code = row.get("vatCode")
        tax_id = _opt(_obj(vat_code).get("id")) if isinstance(vat_code, dict) else _opt(vat_code)
        if tax_id is None:
            r.fail(f"{f}.vatCode.id", "NF-REQUIRED", f"{f}.vatCode.id is required")
        elif details and tax_id not in tax_rates:
            r.fail(
                f"{f}.vatCode.id",
                "NF-VAT-CODE",
                f"VAT code {tax_id!r} of {f} has no rate in {DOC}.taxDetails",
            )
        if len(r.issues) > before or tax_id is None or tax_id not in tax_rates:
            continue
        rate = tax_rates[tax_id]
        category, _reason = _category(tax_id, rate)
        line_base[tax_id] += net
        account = _opt(_obj(row.get("account")).get("number"))
        article = _opt(row.get("inventoryNumber"))
        try:
            lines.append(
                InvoiceLine(
                    line_id=_opt(row.get("lineNumber")) or str(len(lines) + 1),
                    description=_opt(row.get("description")) or article or "(no description)",
                    article_number=article,
                    quantity=quantity,
                    unit_code=UNIT_CODES.get((_opt(row.get("uom")) or "").upper(), "C62"),
                    unit_price=price,
                    allowance_amount=(quantity * price - net).quantize(CENT),
                    net_amount=net,
                    vat_category=category,
                    vat_rate=rate if category is VatCategory.STANDARD else Decimal(0),
                    account_number=account,
                )
            )
        except ValidationError as exc:
            r.fail_model(f, "NF-LINE", exc)

    # Each VAT id's taxable amount must be what its lines add up to.
    if lines:
        for tax_id, f in tax_fields.items():
            if abs(tax_base[tax_id] - line_base[tax_id]) > CENT:
                r.fail(
                    f"{f}.taxableAmount",
                    "NF-VAT-BASE",
                    f"taxable amount {tax_base[tax_id]} for VAT id {tax_id!r} differs from "
                    f"its lines' total {line_base[tax_id]}",
                )
    grouped: dict[tuple[VatCategory, Decimal], list[Decimal]] = {}
    reasons: dict[tuple[VatCategory, Decimal], str | None] = {}
    for tax_id, rate in tax_rates.items():
        category, reason = _category(tax_id, rate)
        key = (category, rate if category is VatCategory.STANDARD else Decimal(0))
        sums = grouped.setdefault(key, [Decimal(0), Decimal(0)])
        sums[0] += tax_base[tax_id]
        sums[1] += tax_amount[tax_id]
        if category is not VatCategory.STANDARD and category is not VatCategory.ZERO:
            reasons.setdefault(key, reason or tax_names.get(tax_id))

    line_total = sum((line.net_amount for line in lines), Decimal(0))
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
        _credited_invoice(r, doc, _obj(event.related.get("credited_invoice")), issue_date)
        if credit
        else None
    )
    currency_rate = (
        _checked(r, doc, "exchangeRate", f"{DOC}.exchangeRate", None)
        if _present(doc, "exchangeRate")
        else None
    )
    booked_vat = (
        _amount(r, doc, "vatTotal", f"{DOC}.vatTotal", in_currency=False) * sign
        if _present(doc, "vatTotal") and _present(doc, "vatTotalInCurrency")
        else None
    )
    vat_currency, vat_accounting, exchange_rate = vat_in_accounting_currency(
        r,
        currency=currency,
        accounting=accounting_currency(seller_country) or DEFAULT_CURRENCY.get(seller_country),
        vat_total=vat_total,
        rate=currency_rate,
        rate_field=f"{DOC}.exchangeRate",
        booked=booked_vat,
    )

    customer = _obj(doc.get("customer"))
    customer_number = _opt(customer.get("number")) or _opt(card.get("number"))
    card_number = _opt(card.get("number"))
    if card_number and _opt(customer.get("number")) and card_number != customer_number:
        r.fail(
            f"{DOC}.customer.number",
            "NF-CUSTOMER",
            f"the invoice's customer {customer_number!r} is not the card fetched ({card_number!r})",
        )
    buyer_name = _opt(customer.get("name")) or _opt(card.get("name"))
    if buyer_name is None:
        r.fail(f"{DOC}.customer.name", "NF-REQUIRED", f"{DOC}.customer.name is required")
    seller_name = r.text(seller_profile, "name", "seller.name", required=True)
    if r.issues:
        return r.issues

    address = _obj(card.get("invoiceAddress")) or _obj(card.get("mainAddress"))
    buyer_address = _address(address, seller_country)
    corporate_id = _opt(card.get("corporateId"))
    gln = _opt(card.get("gln"))
    electronic_address = None
    if gln:
        electronic_address = ElectronicAddress(scheme="0088", value=gln)
    elif corporate_id and buyer_address.country_code == "NO":
        digits = "".join(ch for ch in corporate_id if ch.isdigit())
        if len(digits) == 9:
            electronic_address = ElectronicAddress(scheme="0192", value=digits)
    email = _opt(_obj(card.get("invoiceContact")).get("email")) or _opt(
        _obj(card.get("mainContact")).get("email")
    )
    kid = "".join((_opt(doc.get("paymentReference")) or "").split()) or None
    bankgiro = _opt(seller_profile.get("bankgiro")) if seller_country == "SE" else None
    payment_method = doc.get("paymentMethod")
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
                company_id=_opt(seller_profile.get("organisation_number")),
                vat_id=_opt(seller_profile.get("vat_number")),
                address=Address(
                    lines=tuple(x for x in [_opt(seller_profile.get("address1"))] if x),
                    city=_opt(seller_profile.get("city")),
                    postal_code=_opt(seller_profile.get("zip_code")),
                    country_code=seller_country,
                ),
                email=_opt(seller_profile.get("email")),
            ),
            buyer=Party(
                name=str(buyer_name),
                company_id=corporate_id,
                vat_id=_opt(card.get("vatRegistrationId")),
                electronic_address=electronic_address,
                address=buyer_address,
                email=email,
                customer_number=customer_number,
            ),
            lines=tuple(lines),
            vat_breakdown=tuple(
                VatBreakdown(
                    category=category,
                    rate=rate,
                    taxable_amount=base,
                    tax_amount=vat,
                    exemption_reason=reasons.get((category, rate)),
                )
                for (category, rate), (base, vat) in sorted(grouped.items())
            ),
            totals=Totals(
                line_extension=line_total,
                tax_exclusive=line_total,
                tax_total=vat_total,
                tax_inclusive=line_total + vat_total,
                rounding=rounding,
                payable=payable,
            ),
            payment=PaymentInstructions(
                payment_reference=kid,
                account_id=bankgiro,
                account_scheme="SE:BANKGIRO" if bankgiro else None,
                terms=_opt(_obj(doc.get("creditTerms")).get("id")),
            ),
            order_reference=_opt(doc.get("customerRefNumber")),
            preceding_invoice=preceding,
            vat_accounting_currency=vat_currency,
            vat_total_accounting_currency=vat_accounting,
            exchange_rate=exchange_rate,
            note=_opt(doc.get("invoiceText")),
            payment_method=_opt(_obj(payment_method).get("id"))
            if isinstance(payment_method, dict)
            else _opt(payment_method),
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
    return invoice
