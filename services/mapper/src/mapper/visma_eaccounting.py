"""Map a Visma eAccounting v2 customer invoice (with its customer card and the seller profile).

eAccounting conventions this relies on (CustomerInvoiceApi / CustomerInvoiceRowApi):

* dates are date-times at midnight without a zone (``"2025-03-01T00:00:00"``);
* ``VatRate`` / ``PercentVat`` on a row, ``VatPercent`` in ``VatSpecification`` and
  ``DiscountPercentage`` are fractions (``0.25`` is 25 %, ``0.1`` is a 10 % discount);
* a credit invoice (``IsCreditInvoice``) carries negative quantities and negative totals;
  the canonical credit note is positive, so every amount is multiplied by -1;
* amounts exist in the company's base currency (``TotalAmount``) and in the invoice currency
  (``TotalAmountInvoiceCurrency``); the canonical invoice is in the invoice currency, so the
  ``…InvoiceCurrency`` fields are preferred;
* text rows (``IsTextRow``) carry no amount and are not invoice lines;
* ``ElectronicAddress`` is ``"<ICD>:<identifier>"`` (``"0007:5566778899"``), ``EdiGlnNumber`` /
  ``GLN`` on the customer a GLN (ICD 0088);
* a credit invoice names the invoice it credits only by id, in the read-only
  ``ReferringInvoiceId``; its number and date (BT-25, BT-26) come from that invoice as the
  source fetched it, ``related["credited_invoice"]`` (a CustomerInvoiceApi like the payload);
* ``CurrencyRate`` is base-currency units per invoice-currency unit, and ``TotalVatAmount`` the
  VAT total in the company's base currency, which for a foreign-currency invoice is BT-111.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
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

from .fortnox import Reader, vat_in_accounting_currency
from .validation import accounting_currency

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
# No amount, quantity or price on an invoice is this large; it keeps Decimal arithmetic exact.
LIMIT = Decimal(10) ** 12
EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)
EXEMPTION_REASONS = {
    VatCategory.REVERSE_CHARGE: "Reverse charge",
    VatCategory.INTRA_COMMUNITY: "Intra-community supply",
    VatCategory.EXPORT: "Export outside the EU",
    VatCategory.EXEMPT: "Exempt from VAT",
}
# eAccounting unit abbreviations (Swedish) → UN/ECE Recommendation 20.
UNIT_CODES = {
    "st": "H87",
    "styck": "H87",
    "pcs": "H87",
    "tim": "HUR",
    "h": "HUR",
    "timme": "HUR",
    "dag": "DAY",
    "dagar": "DAY",
    "mån": "MON",
    "kg": "KGM",
    "g": "GRM",
    "m": "MTR",
    "km": "KMT",
    "l": "LTR",
    "m2": "MTK",
    "m3": "MTQ",
}
_ICD_ADDRESS = re.compile(r"^(\d{4}):(\S.*)$")
_SE_ORGNR = re.compile(r"^\d{6}-?\d{4}$")


def money(value: Decimal) -> Decimal:
    """Round to öre, half away from zero, as eAccounting does."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def amount(
    r: Reader, data: dict[str, Any], key: str, field: str, *, default: Decimal | None = None
) -> Decimal:
    """A finite decimal of sane size (shared helper: any mapper may use it)."""
    value = r.decimal(data, key, field, default=default)
    if abs(value) >= LIMIT:
        r.fail(field, "NF-RANGE", f"{field} is out of range: {value}")
        return Decimal(0)
    return value


def date_of(
    r: Reader, data: dict[str, Any], key: str, field: str, *, required: bool = False
) -> dt.date | None:
    """An ISO date or a date-time (eAccounting sends ``YYYY-MM-DDT00:00:00``)."""
    value = r.text(data, key, field, required=required)
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        r.fail(field, "NF-DATE", f"{field} must be a date (YYYY-MM-DD), got {value!r}")
        return None


def flag(r: Reader, data: dict[str, Any], key: str, field: str) -> bool | None:
    """A JSON boolean (or "true"/"false"); None when absent, an issue when malformed."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    r.fail(field, "NF-BOOLEAN", f"{field} must be true or false, got {value!r}")
    return None


def optional_text(value: Any) -> str | None:
    """A scalar as stripped text, None when empty or not a scalar."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value).strip()
    return text or None


def country(value: Any, default: str) -> str:
    """An ISO 3166 alpha-2 code, or the default."""
    code = (optional_text(value) or "").upper()
    return code if len(code) == 2 and code.isalpha() and code.isascii() else default


def electronic_address(
    r: Reader, doc: dict[str, Any], customer: dict[str, Any], buyer_country: str
) -> ElectronicAddress | None:
    """``ElectronicAddress`` ("0007:5566778899") or a GLN (``EdiGlnNumber`` / ``GLN``)."""
    for source, key in (
        (doc, "ElectronicAddress"),
        (customer, "ElectronicAddress"),
        (customer, "EdiGlnNumber"),
        (customer, "GLN"),
    ):
        raw = optional_text(source.get(key))
        if raw is None:
            continue
        field = f"{'Invoice' if source is doc else 'customer'}.{key}"
        compact = raw.replace(" ", "")
        match = _ICD_ADDRESS.match(compact)
        if match:
            return ElectronicAddress(scheme=match.group(1), value=match.group(2))
        digits = compact.replace("-", "")
        if digits.isdigit() and len(digits) == 13:
            return ElectronicAddress(scheme="0088", value=digits)  # GLN
        if key == "ElectronicAddress" and _SE_ORGNR.match(compact) and buyer_country == "SE":
            return ElectronicAddress(scheme="0007", value=digits)  # Swedish org. no.
        nine_digits = digits.isdigit() and len(digits) == 9
        if key == "ElectronicAddress" and nine_digits and buyer_country == "NO":
            return ElectronicAddress(scheme="0192", value=digits)  # Norwegian org. no.
        r.fail(
            field,
            "NF-EADDRESS",
            f"{field} {raw!r} is neither '<ICD>:<identifier>' nor a 13-digit GLN",
        )
        return None
    return None


def _category(
    rate: Decimal,
    vat_free: bool,
    reverse_charge: bool,
    eu_third_party: bool,
    buyer: str,
    seller: str,
) -> VatCategory:
    """The VAT category of a row with this rate (percent) for this buyer."""
    if rate > 0:
        return VatCategory.STANDARD
    if reverse_charge:
        return VatCategory.REVERSE_CHARGE
    within_eu = seller in EU_COUNTRIES and buyer in EU_COUNTRIES
    if eu_third_party or (buyer != seller and within_eu):
        return VatCategory.INTRA_COMMUNITY
    if buyer != seller:
        return VatCategory.EXPORT
    return VatCategory.EXEMPT if vat_free else VatCategory.ZERO


def percent(fraction: Decimal) -> Decimal:
    """A fraction (0.25) as a percent (25), integral when it is."""
    value = fraction * HUNDRED
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _first_key(doc: dict[str, Any], *keys: str) -> str:
    """The first key present in the document (else the last one, to name in an issue)."""
    for key in keys:
        if doc.get(key) not in (None, ""):
            return key
    return keys[-1]


def credited_invoice(
    r: Reader, doc: dict[str, Any], credited: dict[str, Any]
) -> InvoiceReference | None:
    """BG-3 of a credit invoice: the invoice ``ReferringInvoiceId`` names, as fetched.

    None when the credit invoice names no invoice (validation reports NF-CREDIT-REF then).
    """
    referring = optional_text(doc.get("ReferringInvoiceId"))
    if referring is None:
        return None
    field = "Invoice.ReferringInvoiceId"
    if not credited:
        r.fail(
            field,
            "NF-CREDIT-REF",
            f"the credited invoice {referring} was not fetched with the credit invoice, so its "
            "number is unknown",
        )
        return None
    if optional_text(credited.get("Id")) != referring:
        r.fail(
            field,
            "NF-CREDIT-REF",
            f"the invoice fetched as credited ({credited.get('Id')!r}) is not {referring}",
        )
        return None
    number = r.text(credited, "InvoiceNumber", "credited_invoice.InvoiceNumber", required=True)
    issue_date = date_of(r, credited, "InvoiceDate", "credited_invoice.InvoiceDate")
    if number is None:
        return None
    return InvoiceReference(number=number, issue_date=issue_date)


def map_visma_eaccounting(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    """The canonical invoice, or every problem found (never an exception)."""
    r = Reader()
    doc = event.payload
    customer = event.related.get("customer", {})
    seller_profile = event.related.get("seller", {})
    seller_country = country(seller_profile.get("country_code"), "SE")

    document_id = r.text(doc, "Id", "Invoice.Id", required=True)
    if document_id is not None and document_id != event.source.document_id:
        r.fail(
            "Invoice.Id",
            "NF-SOURCE-ID",
            f"Invoice.Id {document_id!r} is not the fetched document {event.source.document_id!r}",
        )
    number = r.text(doc, "InvoiceNumber", "Invoice.InvoiceNumber", required=True)
    is_credit = flag(r, doc, "IsCreditInvoice", "Invoice.IsCreditInvoice")
    credit = is_credit if is_credit is not None else event.kind.value == "credit_note"
    sign = Decimal(-1) if credit else Decimal(1)
    issue_date = date_of(r, doc, "InvoiceDate", "Invoice.InvoiceDate", required=True)
    due_date = date_of(r, doc, "DueDate", "Invoice.DueDate")
    currency = (
        r.text(doc, "CurrencyCode", "Invoice.CurrencyCode")
        or optional_text(seller_profile.get("currency"))
        or "SEK"
    ).upper()
    if not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("Invoice.CurrencyCode", "NF-CURRENCY", f"{currency!r} is not an ISO 4217 code")

    buyer_country = country(
        doc.get("InvoiceCountryCode") or customer.get("InvoiceCountryCode"), seller_country
    )
    reverse_charge = bool(
        flag(
            r,
            doc,
            "ReverseChargeOnConstructionServices",
            "Invoice.ReverseChargeOnConstructionServices",
        )
        or flag(
            r,
            customer,
            "ReverseChargeOnConstructionServices",
            "customer.ReverseChargeOnConstructionServices",
        )
    )
    eu_third_party = bool(flag(r, doc, "EuThirdParty", "Invoice.EuThirdParty"))

    lines: list[InvoiceLine] = []
    taxable: dict[tuple[VatCategory, Decimal], Decimal] = defaultdict(Decimal)
    by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
    rows = doc.get("Rows")
    if not isinstance(rows, list) or not rows:
        r.fail("Invoice.Rows", "BR-16", "an invoice needs at least one row")
        rows = []
    for i, row in enumerate(rows):
        f = f"Invoice.Rows[{i}]"
        if not isinstance(row, dict):
            r.fail(f, "NF-ROW", f"{f} must be an object")
            continue
        text_row = flag(r, row, "IsTextRow", f"{f}.IsTextRow")
        if text_row or (text_row is None and not row.get("Quantity") and not row.get("UnitPrice")):
            continue  # text rows carry no amount
        quantity = amount(r, row, "Quantity", f"{f}.Quantity") * sign
        price = amount(r, row, "UnitPrice", f"{f}.UnitPrice")
        if price < 0:  # EN 16931 prices are never negative (BR-27): the sign goes to quantity
            price, quantity = -price, -quantity
        discount = amount(
            r, row, "DiscountPercentage", f"{f}.DiscountPercentage", default=Decimal(0)
        )
        if not 0 <= discount <= 1:
            r.fail(
                f"{f}.DiscountPercentage",
                "NF-RANGE",
                f"{f}.DiscountPercentage is a fraction between 0 and 1, got {discount}",
            )
            discount = Decimal(0)
        vat_free = bool(flag(r, row, "IsVatFree", f"{f}.IsVatFree"))
        rate_key = _first_key(row, "VatRate", "PercentVat")
        fraction = amount(r, row, rate_key, f"{f}.{rate_key}")
        if not 0 <= fraction < 1:
            r.fail(
                f"{f}.{rate_key}",
                "NF-RANGE",
                f"{f}.{rate_key} is a fraction (0.25 is 25 %), got {fraction}",
            )
            fraction = Decimal(0)
        rate = Decimal(0) if vat_free else percent(fraction)
        gross = quantity * price
        expected = money(gross * (1 - discount))
        if row.get("AmountNoVat") not in (None, ""):
            net = amount(r, row, "AmountNoVat", f"{f}.AmountNoVat") * sign
            if abs(net - expected) > CENT:
                r.fail(
                    f"{f}.AmountNoVat",
                    "NF-ROW-AMOUNT",
                    f"{f}.AmountNoVat {net} is not quantity x unit price less discount "
                    f"({expected})",
                )
        else:
            net = expected
        category = _category(
            rate, vat_free, reverse_charge, eu_third_party, buyer_country, seller_country
        )
        taxable[(category, rate)] += net
        by_rate[rate] += net
        unit = optional_text(row.get("UnitAbbreviation")) or ""
        try:
            lines.append(
                InvoiceLine(
                    line_id=str(len(lines) + 1),
                    description=optional_text(row.get("Text"))
                    or optional_text(row.get("ArticleNumber"))
                    or "(no description)",
                    article_number=optional_text(row.get("ArticleNumber")),
                    quantity=quantity,
                    unit_code=UNIT_CODES.get(unit.lower(), "C62"),
                    unit_price=price,
                    allowance_amount=money(gross - net),
                    net_amount=net,
                    vat_category=category,
                    vat_rate=rate,
                    account_number=optional_text(row.get("AccountNumber")),
                )
            )
        except ValidationError as exc:
            r.fail_model(f, "NF-ROW", exc)

    # eAccounting's VAT per rate (rounded per rate); our line sums must agree with it.
    spec_vat: dict[Decimal, Decimal] = {}
    spec = doc.get("VatSpecification")
    if spec is not None and not isinstance(spec, list):
        r.fail("Invoice.VatSpecification", "NF-VAT-SPEC", "VatSpecification must be a list")
        spec = []
    for i, entry in enumerate(spec or []):
        f = f"Invoice.VatSpecification[{i}]"
        if not isinstance(entry, dict):
            r.fail(f, "NF-VAT-SPEC", f"{f} must be an object")
            continue
        fraction = amount(r, entry, "VatPercent", f"{f}.VatPercent")
        if not 0 <= fraction < 1:
            r.fail(
                f"{f}.VatPercent",
                "NF-RANGE",
                f"{f}.VatPercent is a fraction (0.25 is 25 %), got {fraction}",
            )
        rate = percent(fraction)
        base = amount(r, entry, "AmountInvoiceCurrency", f"{f}.AmountInvoiceCurrency") * sign
        vat = amount(r, entry, "VatAmountInvoiceCurrency", f"{f}.VatAmountInvoiceCurrency") * sign
        if rate in by_rate and abs(base - by_rate[rate]) > CENT:
            r.fail(
                f"{f}.AmountInvoiceCurrency",
                "NF-VAT-SPEC",
                f"{base} at {rate} % differs from the rows' {by_rate[rate]}",
            )
        spec_vat[rate] = spec_vat.get(rate, Decimal(0)) + vat

    breakdown = tuple(
        VatBreakdown(
            category=category,
            rate=rate,
            taxable_amount=base,
            tax_amount=(
                spec_vat.get(rate, money(base * rate / HUNDRED))
                if category is VatCategory.STANDARD
                else Decimal(0)
            ),
            exemption_reason=EXEMPTION_REASONS.get(category),
        )
        for (category, rate), base in sorted(taxable.items())
    )

    foreign = doc.get("CurrencyRate") not in (None, "", 1, "1", 1.0)
    totals: dict[str, Decimal] = {}
    for name, keys in {
        "total": ("TotalAmountInvoiceCurrency", "TotalAmount"),
        "vat": ("TotalVatAmountInvoiceCurrency", "TotalVatAmount"),
    }.items():
        key = _first_key(doc, *keys)
        if foreign and key == keys[-1]:
            r.fail(
                f"Invoice.{keys[0]}",
                "NF-REQUIRED",
                f"Invoice.{keys[0]} is required for an invoice in a foreign currency",
            )
        totals[name] = amount(r, doc, key, f"Invoice.{key}") * sign
    rounding_key = _first_key(
        doc, "RoundingsAmountInvoiceCurrency", "RoundingsAmount", "TotalRoundings"
    )
    rounding = (
        amount(r, doc, rounding_key, f"Invoice.{rounding_key}", default=Decimal(0)) * sign + 0
    )
    remaining_key = _first_key(doc, "RemainingAmountInvoiceCurrency", "RemainingAmount")
    outstanding = (
        amount(r, doc, remaining_key, f"Invoice.{remaining_key}") * sign
        if doc.get(remaining_key) not in (None, "")
        else None
    )
    line_total = sum((line.net_amount for line in lines), Decimal(0))
    preceding = (
        credited_invoice(r, doc, event.related.get("credited_invoice") or {}) if credit else None
    )
    currency_rate = (
        amount(r, doc, "CurrencyRate", "Invoice.CurrencyRate")
        if doc.get("CurrencyRate") not in (None, "")
        else None
    )
    booked_vat = (
        amount(r, doc, "TotalVatAmount", "Invoice.TotalVatAmount") * sign
        if doc.get("TotalVatAmount") not in (None, "")
        and doc.get("TotalVatAmountInvoiceCurrency") not in (None, "")
        else None
    )
    vat_currency, vat_accounting, exchange_rate = vat_in_accounting_currency(
        r,
        currency=currency,
        accounting=accounting_currency(seller_country)
        or optional_text(seller_profile.get("currency")),
        vat_total=totals["vat"],
        rate=currency_rate,
        rate_field="Invoice.CurrencyRate",
        booked=booked_vat,
    )

    buyer_key = _first_key(doc, "InvoiceCustomerName", "CustomerName")
    buyer_name = r.text(doc, buyer_key, f"Invoice.{buyer_key}") or optional_text(
        customer.get("Name")
    )
    if buyer_name is None:
        r.fail("Invoice.CustomerName", "NF-REQUIRED", "Invoice.CustomerName is required")
    private = bool(
        flag(r, doc, "CustomerIsPrivatePerson", "Invoice.CustomerIsPrivatePerson")
        or flag(r, customer, "IsPrivatePerson", "customer.IsPrivatePerson")
    )
    e_address = electronic_address(r, doc, customer, buyer_country)
    seller_name = r.text(seller_profile, "name", "seller.name", required=True)
    if r.issues:
        return r.issues
    terms = customer.get("TermsOfPayment")
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
                company_id=optional_text(seller_profile.get("organisation_number")),
                vat_id=optional_text(seller_profile.get("vat_number")),
                address=Address(
                    lines=tuple(x for x in [optional_text(seller_profile.get("address1"))] if x),
                    city=optional_text(seller_profile.get("city")),
                    postal_code=optional_text(seller_profile.get("zip_code")),
                    country_code=seller_country,
                ),
                email=optional_text(seller_profile.get("email")),
            ),
            buyer=Party(
                name=str(buyer_name),
                party_type=PartyType.PRIVATE if private else PartyType.COMPANY,
                # a private person's CorporateIdentityNumber is a personal identity number
                company_id=None
                if private
                else optional_text(customer.get("CorporateIdentityNumber")),
                vat_id=optional_text(customer.get("VatNumber")),
                electronic_address=e_address,
                address=Address(
                    lines=tuple(
                        x
                        for x in (
                            optional_text(
                                doc.get("InvoiceAddress1") or customer.get("InvoiceAddress1")
                            ),
                            optional_text(
                                doc.get("InvoiceAddress2") or customer.get("InvoiceAddress2")
                            ),
                        )
                        if x
                    ),
                    city=optional_text(doc.get("InvoiceCity") or customer.get("InvoiceCity")),
                    postal_code=optional_text(
                        doc.get("InvoicePostalCode") or customer.get("InvoicePostalCode")
                    ),
                    country_code=buyer_country,
                ),
                email=optional_text(doc.get("CustomerEmail") or customer.get("EmailAddress")),
                customer_number=optional_text(
                    doc.get("CustomerNumber") or customer.get("CustomerNumber")
                ),
            ),
            lines=tuple(lines),
            vat_breakdown=breakdown,
            totals=Totals(
                line_extension=line_total,
                tax_exclusive=line_total,
                tax_total=totals["vat"],
                tax_inclusive=line_total + totals["vat"],
                rounding=rounding,
                payable=totals["total"],
            ),
            payment=PaymentInstructions(
                payment_reference=optional_text(doc.get("PaymentReferenceNumber")),
                account_id=optional_text(seller_profile.get("bankgiro")),
                account_scheme="SE:BANKGIRO" if seller_profile.get("bankgiro") else None,
                terms=optional_text(terms.get("Name")) if isinstance(terms, dict) else None,
            ),
            buyer_reference=optional_text(doc.get("ElectronicReference"))
            or optional_text(doc.get("YourReference")),
            order_reference=optional_text(doc.get("BuyersOrderReference")),
            preceding_invoice=preceding,
            outstanding_amount=outstanding,
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
