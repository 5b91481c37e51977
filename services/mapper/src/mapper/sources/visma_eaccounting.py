"""Read a Visma eAccounting v2 customer invoice (with its customer card) into the builder.

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

import re
from collections import defaultdict
from decimal import Decimal
from typing import Any

from nordflow_schemas.events import ErpDocumentFetched
from nordflow_schemas.invoice import ElectronicAddress, InvoiceReference, VatCategory
from nordflow_schemas.money import CENT, money

from ..domain.builder import InvoiceBuilder, Mapped, never_raises, totals
from ..domain.reader import Reader, country_code, optional_text

HUNDRED = Decimal(100)
EU_COUNTRIES = frozenset(
    {
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
    }
)
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


def _fraction(r: Reader, data: dict[str, Any], key: str, field: str) -> Decimal:
    """A VAT rate as eAccounting writes it: a fraction (0.25 is 25 %); 0 if it is not one."""
    fraction = r.decimal(data, key, field)
    if not 0 <= fraction < 1:
        r.fail(field, "NF-RANGE", f"{field} is a fraction (0.25 is 25 %), got {fraction}")
        return Decimal(0)
    return fraction


def credited_invoice(
    b: InvoiceBuilder, doc: dict[str, Any], credited: dict[str, Any]
) -> InvoiceReference | None:
    """BG-3 of a credit invoice: the invoice ``ReferringInvoiceId`` names, as fetched.

    None when the credit invoice names no invoice (validation reports NF-CREDIT-REF then).
    """
    r = b.r
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
    issue_date = r.date(credited, "InvoiceDate", "credited_invoice.InvoiceDate", with_time=True)
    if number is None:
        return None
    return b.credited(number, issue_date=issue_date)


def _rows(
    b: InvoiceBuilder,
    doc: dict[str, Any],
    sign: Decimal,
    *,
    reverse_charge: bool,
    eu_third_party: bool,
    buyer_country: str,
) -> dict[Decimal, Decimal]:
    """Each row with an amount as a line; the rows' nets per VAT rate (percent)."""
    r = b.r
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
        text_row = r.flag(row, "IsTextRow", f"{f}.IsTextRow")
        if text_row or (text_row is None and not row.get("Quantity") and not row.get("UnitPrice")):
            continue  # text rows carry no amount
        quantity = r.decimal(row, "Quantity", f"{f}.Quantity") * sign
        price = r.decimal(row, "UnitPrice", f"{f}.UnitPrice")
        if price < 0:  # EN 16931 prices are never negative (BR-27): the sign goes to quantity
            price, quantity = -price, -quantity
        discount = r.decimal(
            row, "DiscountPercentage", f"{f}.DiscountPercentage", default=Decimal(0)
        )
        if not 0 <= discount <= 1:
            r.fail(
                f"{f}.DiscountPercentage",
                "NF-RANGE",
                f"{f}.DiscountPercentage is a fraction between 0 and 1, got {discount}",
            )
            discount = Decimal(0)
        vat_free = bool(r.flag(row, "IsVatFree", f"{f}.IsVatFree"))
        rate_key = _first_key(row, "VatRate", "PercentVat")
        fraction = _fraction(r, row, rate_key, f"{f}.{rate_key}")
        rate = Decimal(0) if vat_free else percent(fraction)
        gross = quantity * price
        expected = money(gross * (1 - discount))
        if row.get("AmountNoVat") not in (None, ""):
            net = r.decimal(row, "AmountNoVat", f"{f}.AmountNoVat") * sign
            if abs(net - expected) > CENT:
                r.fail(
                    f"{f}.AmountNoVat",
                    "NF-ROW-AMOUNT",
                    f"{f}.AmountNoVat {net} is not quantity x unit price less discount "
                    f"({expected})",
                )
        else:
            net = expected
        by_rate[rate] += net
        unit = optional_text(row.get("UnitAbbreviation")) or ""
        b.add_line(
            f,
            description=optional_text(row.get("Text")) or optional_text(row.get("ArticleNumber")),
            article_number=optional_text(row.get("ArticleNumber")),
            quantity=quantity,
            unit_code=UNIT_CODES.get(unit.lower(), "C62"),
            unit_price=price,
            allowance=money(gross - net),
            net=net,
            category=_category(
                rate, vat_free, reverse_charge, eu_third_party, buyer_country, b.seller_country
            ),
            rate=rate,
            account=optional_text(row.get("AccountNumber")),
        )
    return by_rate


def _vat_specification(
    r: Reader, doc: dict[str, Any], sign: Decimal, by_rate: dict[Decimal, Decimal]
) -> dict[Decimal, Decimal]:
    """eAccounting's VAT per rate (rounded per rate); the rows' nets must agree with it."""
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
        fraction = r.decimal(entry, "VatPercent", f"{f}.VatPercent")
        if not 0 <= fraction < 1:
            r.fail(
                f"{f}.VatPercent",
                "NF-RANGE",
                f"{f}.VatPercent is a fraction (0.25 is 25 %), got {fraction}",
            )
        rate = percent(fraction)
        base = r.decimal(entry, "AmountInvoiceCurrency", f"{f}.AmountInvoiceCurrency") * sign
        vat = r.decimal(entry, "VatAmountInvoiceCurrency", f"{f}.VatAmountInvoiceCurrency") * sign
        if rate in by_rate and abs(base - by_rate[rate]) > CENT:
            r.fail(
                f"{f}.AmountInvoiceCurrency",
                "NF-VAT-SPEC",
                f"{base} at {rate} % differs from the rows' {by_rate[rate]}",
            )
        spec_vat[rate] = spec_vat.get(rate, Decimal(0)) + vat
    return spec_vat


@never_raises("Invoice")
def map_visma_eaccounting(event: ErpDocumentFetched) -> Mapped:
    """The canonical invoice, or every problem found (never an exception)."""
    r = Reader()
    b = InvoiceBuilder(r, event)
    doc = event.payload
    customer = event.related.get("customer", {})

    document_id = r.text(doc, "Id", "Invoice.Id", required=True)
    if document_id is not None and document_id != event.source.document_id:
        r.fail(
            "Invoice.Id",
            "NF-SOURCE-ID",
            f"Invoice.Id {document_id!r} is not the fetched document {event.source.document_id!r}",
        )
    number = r.text(doc, "InvoiceNumber", "Invoice.InvoiceNumber", required=True)
    is_credit = r.flag(doc, "IsCreditInvoice", "Invoice.IsCreditInvoice")
    credit = is_credit if is_credit is not None else event.kind.value == "credit_note"
    sign = Decimal(-1) if credit else Decimal(1)
    issue_date = r.date(doc, "InvoiceDate", "Invoice.InvoiceDate", required=True, with_time=True)
    due_date = r.date(doc, "DueDate", "Invoice.DueDate", with_time=True)
    currency = (r.text(doc, "CurrencyCode", "Invoice.CurrencyCode") or b.currency or "SEK").upper()
    if not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("Invoice.CurrencyCode", "NF-CURRENCY", f"{currency!r} is not an ISO 4217 code")

    buyer_country = country_code(
        doc.get("InvoiceCountryCode") or customer.get("InvoiceCountryCode"), b.seller_country
    )
    by_rate = _rows(
        b,
        doc,
        sign,
        reverse_charge=bool(
            r.flag(
                doc,
                "ReverseChargeOnConstructionServices",
                "Invoice.ReverseChargeOnConstructionServices",
            )
            or r.flag(
                customer,
                "ReverseChargeOnConstructionServices",
                "customer.ReverseChargeOnConstructionServices",
            )
        ),
        eu_third_party=bool(r.flag(doc, "EuThirdParty", "Invoice.EuThirdParty")),
        buyer_country=buyer_country,
    )
    breakdown = b.vat_breakdown(booked=_vat_specification(r, doc, sign, by_rate))

    foreign = doc.get("CurrencyRate") not in (None, "", 1, "1", 1.0)
    amounts: dict[str, Decimal] = {}
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
        amounts[name] = r.decimal(doc, key, f"Invoice.{key}") * sign
    rounding_key = _first_key(
        doc, "RoundingsAmountInvoiceCurrency", "RoundingsAmount", "TotalRoundings"
    )
    rounding = (
        r.decimal(doc, rounding_key, f"Invoice.{rounding_key}", default=Decimal(0)) * sign + 0
    )
    remaining_key = _first_key(doc, "RemainingAmountInvoiceCurrency", "RemainingAmount")
    outstanding = (
        r.decimal(doc, remaining_key, f"Invoice.{remaining_key}") * sign
        if doc.get(remaining_key) not in (None, "")
        else None
    )
    preceding = (
        credited_invoice(b, doc, event.related.get("credited_invoice") or {}) if credit else None
    )
    currency_rate = (
        r.decimal(doc, "CurrencyRate", "Invoice.CurrencyRate")
        if doc.get("CurrencyRate") not in (None, "")
        else None
    )
    booked_vat = (
        r.decimal(doc, "TotalVatAmount", "Invoice.TotalVatAmount") * sign
        if doc.get("TotalVatAmount") not in (None, "")
        and doc.get("TotalVatAmountInvoiceCurrency") not in (None, "")
        else None
    )
    accounting = b.accounting_vat(
        currency=currency,
        vat_total=amounts["vat"],
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
        r.flag(doc, "CustomerIsPrivatePerson", "Invoice.CustomerIsPrivatePerson")
        or r.flag(customer, "IsPrivatePerson", "customer.IsPrivatePerson")
    )
    buyer = b.buyer(
        buyer_name,
        private=private,
        # a private person's CorporateIdentityNumber is a personal identity number
        company_id=None if private else customer.get("CorporateIdentityNumber"),
        vat_id=customer.get("VatNumber"),
        electronic_address=electronic_address(r, doc, customer, buyer_country),
        address=b.address(
            (
                doc.get("InvoiceAddress1") or customer.get("InvoiceAddress1"),
                doc.get("InvoiceAddress2") or customer.get("InvoiceAddress2"),
            ),
            city=doc.get("InvoiceCity") or customer.get("InvoiceCity"),
            postal_code=doc.get("InvoicePostalCode") or customer.get("InvoicePostalCode"),
            country=buyer_country,
        ),
        email=doc.get("CustomerEmail") or customer.get("EmailAddress"),
        customer_number=doc.get("CustomerNumber") or customer.get("CustomerNumber"),
    )
    terms = customer.get("TermsOfPayment")
    return b.build(
        credit=credit,
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        buyer=buyer,
        vat=breakdown,
        totals=totals(b.line_total, amounts["vat"], rounding=rounding, payable=amounts["total"]),
        payment_reference=optional_text(doc.get("PaymentReferenceNumber")),
        terms=optional_text(terms.get("Name")) if isinstance(terms, dict) else None,
        buyer_reference=optional_text(doc.get("ElectronicReference"))
        or optional_text(doc.get("YourReference")),
        order_reference=optional_text(doc.get("BuyersOrderReference")),
        preceding=preceding,
        outstanding=outstanding,
        accounting=accounting,
    )
