"""Validation rules that report every problem at once, each naming its field and rule.

The rule ids are EN 16931's where the rule is EN 16931's (BR-*, BR-CO-*, BR-DEC-*, BR-CL-*,
and the VAT category rules BR-S/Z/E/AE/IC/G/O-*; texts from the CEN schematron that
distribution-router also runs), SE-R-* for the Swedish PEPPOL rules, and NF-* for Nordflow's
own. ``validate_invoice`` never raises: any canonical invoice gives a list (empty = valid).

What the canonical model already guarantees is not checked again: a seller and buyer postal
address with a country code (BR-08..BR-11: ``Address.country_code`` is required and two
capital letters), at least one line (BR-16) and one VAT breakdown. The model has no delivery
date (BT-72) and no deliver-to country (BT-80), so BR-IC-11 and BR-IC-12 cannot be checked
here yet.

A foreign-currency invoice states its VAT total in the seller's VAT accounting currency too
(BT-6, BT-111): EN 16931 BR-53, BR-DEC-15 and BR-CL-05, the PEPPOL rules R005 and R055 that
distribution-router's schematron also runs, and NF-CURRENCY-RATE, which asks for them whenever
the invoice currency is not the national currency of the seller's country (the currency its
VAT return is made in) and checks BT-111 against the exchange rate the source used.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from nordflow_references import (
    KidAlgorithm,
    OcrControl,
    ReferenceKind,
    ReferencePolicy,
    check_kid,
    check_ocr,
)
from nordflow_references import validate as validate_reference
from nordflow_schemas.events import ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice, PartyType, VatCategory
from nordflow_schemas.money import CENT
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.no import fodselsnummer as no_personal
from stdnum.no import mva as no_mva
from stdnum.no import orgnr as no_orgnr
from stdnum.se import orgnr as se_orgnr
from stdnum.se import personnummer as se_personal
from stdnum.se import vat as se_vat

from .reader import AMOUNT_LIMIT

SWEDISH_VAT_RATES = frozenset({Decimal(25), Decimal(12), Decimal(6)})
REFERENCE_FIELD = "payment.payment_reference"

# Code lists as the CEN EN 16931 schematron (CEN-EN16931-UBL.xsl, BR-CL-04 and BR-CL-14)
# lists them; 1A (Kosovo) and EL (Greece, VAT prefix) are in its country list on purpose.
_CURRENCIES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA
    MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP
    PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP
    SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VES VND VUV WST XAF
    XAG XAU XBA XBB XBC XBD XCD XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWL"""
_COUNTRIES = """
    1A AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH EL ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP
    KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS
    MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS
    PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC
    TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XI
    YE YT ZA ZM ZW"""
ISO_4217 = frozenset(_CURRENCIES.split())
ISO_3166 = frozenset(_COUNTRIES.split())

_EURO_COUNTRIES = "AT BE CY DE EE ES FI FR GR HR IE IT LT LU LV MT NL PT SI SK"
# The national currency a seller of each country accounts for VAT in (BT-6 when it is not the
# invoice currency). Countries not listed are not checked by NF-CURRENCY-RATE.
ACCOUNTING_CURRENCIES: dict[str, str] = {
    **dict.fromkeys(_EURO_COUNTRIES.split(), "EUR"),
    "SE": "SEK",
    "NO": "NOK",
    "DK": "DKK",
    "IS": "ISK",
    "GB": "GBP",
    "PL": "PLN",
    "CZ": "CZK",
    "HU": "HUF",
    "RO": "RON",
    "CH": "CHF",
}

# EN 16931 rule prefix per VAT category (BR-S-*, BR-Z-*, ...).
CATEGORY_RULES = {
    VatCategory.STANDARD: "BR-S",
    VatCategory.ZERO: "BR-Z",
    VatCategory.EXEMPT: "BR-E",
    VatCategory.REVERSE_CHARGE: "BR-AE",
    VatCategory.INTRA_COMMUNITY: "BR-IC",
    VatCategory.EXPORT: "BR-G",
    VatCategory.NOT_SUBJECT: "BR-O",
}
ZERO_RATED = frozenset(CATEGORY_RULES) - {VatCategory.STANDARD}
"""Every category but S has VAT rate 0 and tax amount 0 (BR-*-05..07, BR-*-09)."""
NEEDS_EXEMPTION_REASON = frozenset(
    {
        VatCategory.EXEMPT,
        VatCategory.REVERSE_CHARGE,
        VatCategory.INTRA_COMMUNITY,
        VatCategory.EXPORT,
        VatCategory.NOT_SUBJECT,
    }
)
"""BR-E/AE/IC/G/O-10; a zero-rated (Z) breakdown must have none (BR-Z-10)."""


NEGATIVE_INVOICE_RULE = "NF-NEGATIVE-INVOICE"


def _issue(field: str, rule: str, message: str) -> ValidationIssue:
    return ValidationIssue(field=field, rule=rule, message=message)


def accounting_currency(country: str) -> str | None:
    """The currency a seller in this country keeps its VAT accounts in, if known."""
    return ACCOUNTING_CURRENCIES.get(country)


def check_org_number(country: str, number: str | None, field: str) -> list[ValidationIssue]:
    """Swedish (Luhn, SE-R-013) and Norwegian (MOD11) organisation numbers."""
    if not number:
        return []
    problem = _org_number_problem(country, number)
    if problem is not None:
        return [
            _issue(field, "NF-ORGNR", f"{number!r} is not a valid {country} org. no.: {problem}")
        ]
    return []


# A company's numbers come back on invoice after invoice (the seller's on every one of its
# tenant's), and python-stdnum's checks were ~13 % of mapping one (docs/performance.md,
# change 26): each number's answer is kept, for companies' public numbers only.
_COMPANY_NUMBERS = 4096


@functools.lru_cache(maxsize=_COMPANY_NUMBERS)
def _org_number_problem(country: str, number: str) -> str | None:
    """Why ``number`` is not a valid organisation number of ``country``; None if it is (or
    the country's numbers are not checked)."""
    try:
        if country == "SE":
            se_orgnr.validate(number)
        elif country == "NO":
            no_orgnr.validate(number)
    except StdnumError as exc:
        return str(exc)
    return None


def check_personal_number(country: str, number: str | None, field: str) -> list[ValidationIssue]:
    """A consumer's Swedish personnummer or Norwegian fødselsnummer (the legal id of a private
    buyer, and the key of the banks' e-invoice registries)."""
    if not number:
        return []
    try:
        if country == "SE":
            se_personal.validate(number)
        elif country == "NO":
            no_personal.validate(number)
    except StdnumError as exc:
        return [
            _issue(
                field, "NF-PERSONNR", f"{number!r} is not a valid {country} personal number: {exc}"
            )
        ]
    return []


def reference_rule(policy: ReferencePolicy | None, country: str) -> str:
    """NF-OCR for Swedish OCR references, NF-KID for Norwegian and factors' KIDs."""
    if policy is not None and policy.kind is not ReferenceKind.NONE:
        return "NF-OCR" if policy.kind is ReferenceKind.SE_OCR else "NF-KID"
    return "NF-KID" if country == "NO" else "NF-OCR"


def check_payment_reference(
    reference: str | None,
    country: str,
    field: str = REFERENCE_FIELD,
    policy: ReferencePolicy | None = None,
) -> list[ValidationIssue]:
    """The payment reference under the tenant's policy, else the seller country's default.

    A tenant's policy (its bank's OCR control level, its KID agreement or its factor's KID
    layout, see references.py) decides when it has one of kind OCR, KID or factor layout.
    Without one: a Swedish OCR must pass hard control (Luhn) and a Norwegian KID MOD10 or
    MOD11, the checks every bank in the country applies. A missing reference is only a
    problem under a policy, and the mapper generates one before validating.
    """
    if policy is not None and policy.kind is not ReferenceKind.NONE:
        rule = reference_rule(policy, country)
        return [_issue(field, rule, p) for p in validate_reference(policy, reference)]
    if not reference:
        return []
    if country == "NO":
        problems = check_kid(reference, KidAlgorithm.MOD10)
        if problems and not check_kid(reference, KidAlgorithm.MOD11, allow_dash=True):
            problems = []
        return [_issue(field, "NF-KID", f"KID {reference!r}: {p}") for p in problems]
    return [
        _issue(field, "NF-OCR", f"OCR {reference!r}: {p}")
        for p in check_ocr(reference, OcrControl.HARD)
    ]


def check_arithmetic(invoice: Invoice) -> list[ValidationIssue]:
    """EN 16931 totals: BR-CO-10, -13, -14, -15, -16 and -17."""
    issues: list[ValidationIssue] = []
    t = invoice.totals
    line_sum = sum((line.net_amount for line in invoice.lines), Decimal(0))
    if line_sum.quantize(CENT) != t.line_extension.quantize(CENT):
        issues.append(
            _issue(
                "totals.line_extension",
                "BR-CO-10",
                f"sum of line net amounts {line_sum} differs from line total {t.line_extension}",
            )
        )
    expected_excl = t.line_extension - t.allowance_total + t.charge_total
    if expected_excl.quantize(CENT) != t.tax_exclusive.quantize(CENT):
        issues.append(
            _issue(
                "totals.tax_exclusive",
                "BR-CO-13",
                f"total without VAT {t.tax_exclusive} should be {expected_excl}",
            )
        )
    vat_sum = sum((b.tax_amount for b in invoice.vat_breakdown), Decimal(0))
    if vat_sum.quantize(CENT) != t.tax_total.quantize(CENT):
        issues.append(
            _issue(
                "totals.tax_total",
                "BR-CO-14",
                f"VAT total {t.tax_total} differs from the sum of the breakdown {vat_sum}",
            )
        )
    if (t.tax_exclusive + t.tax_total).quantize(CENT) != t.tax_inclusive.quantize(CENT):
        issues.append(
            _issue(
                "totals.tax_inclusive",
                "BR-CO-15",
                f"total with VAT {t.tax_inclusive} is not {t.tax_exclusive} + {t.tax_total}",
            )
        )
    payable = t.tax_inclusive - t.prepaid + t.rounding
    if payable.quantize(CENT) != t.payable.quantize(CENT):
        issues.append(
            _issue("totals.payable", "BR-CO-16", f"amount due {t.payable} should be {payable}")
        )
    for i, b in enumerate(invoice.vat_breakdown):
        expected = (b.taxable_amount * b.rate / 100).quantize(CENT)
        if abs(expected - b.tax_amount) > CENT:
            issues.append(
                _issue(
                    f"vat_breakdown[{i}].tax_amount",
                    "BR-CO-17",
                    f"VAT {b.tax_amount} at {b.rate}% of {b.taxable_amount} should be {expected}",
                )
            )
    return issues


def _amounts(invoice: Invoice) -> Iterable[tuple[str, Decimal, str | None]]:
    """Every amount with its field and, for those EN 16931 limits to 2 decimals, the rule."""
    t = invoice.totals
    yield from (
        ("totals.line_extension", t.line_extension, "BR-DEC-09"),
        ("totals.allowance_total", t.allowance_total, "BR-DEC-10"),
        ("totals.charge_total", t.charge_total, "BR-DEC-11"),
        ("totals.tax_exclusive", t.tax_exclusive, "BR-DEC-12"),
        ("totals.tax_total", t.tax_total, "BR-DEC-13"),
        ("totals.tax_inclusive", t.tax_inclusive, "BR-DEC-14"),
        ("totals.prepaid", t.prepaid, "BR-DEC-16"),
        ("totals.rounding", t.rounding, "BR-DEC-17"),
        ("totals.payable", t.payable, "BR-DEC-18"),
    )
    for i, b in enumerate(invoice.vat_breakdown):
        yield f"vat_breakdown[{i}].taxable_amount", b.taxable_amount, "BR-DEC-19"
        yield f"vat_breakdown[{i}].tax_amount", b.tax_amount, "BR-DEC-20"
    for i, line in enumerate(invoice.lines):
        yield f"lines[{i}].net_amount", line.net_amount, "BR-DEC-23"
        yield f"lines[{i}].allowance_amount", line.allowance_amount, "BR-DEC-24"
        yield f"lines[{i}].quantity", line.quantity, None
        yield f"lines[{i}].unit_price", line.unit_price, None
        yield f"lines[{i}].vat_rate", line.vat_rate, None
    for i, b in enumerate(invoice.vat_breakdown):
        yield f"vat_breakdown[{i}].rate", b.rate, None
    for i, ac in enumerate(invoice.allowances_charges):
        rule = "BR-DEC-05" if ac.is_charge else "BR-DEC-01"
        yield f"allowances_charges[{i}].amount", ac.amount, rule
        yield f"allowances_charges[{i}].vat_rate", ac.vat_rate, None
    if invoice.outstanding_amount is not None:
        yield "outstanding_amount", invoice.outstanding_amount, None
    if invoice.vat_total_accounting_currency is not None:
        yield "vat_total_accounting_currency", invoice.vat_total_accounting_currency, "BR-DEC-15"
    if invoice.exchange_rate is not None:
        yield "exchange_rate", invoice.exchange_rate, None


def check_amounts(invoice: Invoice) -> list[ValidationIssue]:
    """Amounts within range (NF-RANGE) and with at most 2 decimals where EN 16931 says so."""
    issues: list[ValidationIssue] = []
    for field, amount, decimals_rule in _amounts(invoice):
        if abs(amount) >= AMOUNT_LIMIT:  # no invoice's, and beyond exact öre arithmetic
            issues.append(_issue(field, "NF-RANGE", f"{field} {amount} is out of range"))
        elif decimals_rule is not None and amount != amount.quantize(CENT):
            issues.append(
                _issue(field, decimals_rule, f"{field} {amount} has more than 2 decimals")
            )
    return issues


def check_parties(invoice: Invoice) -> list[ValidationIssue]:
    """Names (BR-06, BR-07), country codes (BR-CL-14) and a postal address to print on.

    When the buyer has neither an electronic address nor an e-mail address, paper is the only
    channel distribution-router can use, so street, postcode and city must be there
    (NF-POSTAL-ADDRESS). EN 16931 itself only requires the country (BR-11).
    """
    issues: list[ValidationIssue] = []
    for role, rule, party in (
        ("seller", "BR-06", invoice.seller),
        ("buyer", "BR-07", invoice.buyer),
    ):
        if not party.name.strip():
            issues.append(_issue(f"{role}.name", rule, f"the {role} needs a name"))
        country = party.address.country_code
        if country not in ISO_3166:
            issues.append(
                _issue(
                    f"{role}.address.country_code",
                    "BR-CL-14",
                    f"{country!r} is not an ISO 3166-1 country code",
                )
            )
    buyer = invoice.buyer
    if buyer.electronic_address is None and not buyer.email:
        address = buyer.address
        needed = (
            ("lines", "street address", any(line.strip() for line in address.lines)),
            ("postal_code", "postcode", bool(address.postal_code and address.postal_code.strip())),
            ("city", "city", bool(address.city and address.city.strip())),
        )
        for name, label, present in needed:
            if not present:
                issues.append(
                    _issue(
                        f"buyer.address.{name}",
                        "NF-POSTAL-ADDRESS",
                        f"the buyer has no electronic or e-mail address, so the invoice goes "
                        f"on paper and needs the buyer's {label}",
                    )
                )
    for role, party in (("seller", invoice.seller), ("buyer", invoice.buyer)):
        check = check_personal_number if party.party_type is PartyType.PRIVATE else check_org_number
        issues += check(party.address.country_code, party.company_id, f"{role}.company_id")
        issues += check_vat_number(party.vat_id, f"{role}.vat_id")
    return issues


def check_vat_number(number: str | None, field: str) -> list[ValidationIssue]:
    """A VAT identifier starts with its country's code (BR-CO-09); Swedish (SE + org. no.
    + 01) and Norwegian (NO + org. no. + MVA) ones are checked in full, check digit included."""
    if not number:
        return []
    compact = number.replace(" ", "").upper()
    prefix = compact[:2]
    if not (prefix.isalpha() and prefix.isascii()):
        return [_issue(field, "BR-CO-09", f"{number!r} must start with the ISO 3166 country code")]
    problem = _vat_number_problem(compact)
    if problem is not None:
        return [
            _issue(field, "NF-VATNR", f"{number!r} is not a valid {prefix} VAT number: {problem}")
        ]
    return []


@functools.lru_cache(maxsize=_COMPANY_NUMBERS)
def _vat_number_problem(compact: str) -> str | None:
    """Why a compacted Swedish or Norwegian VAT number is not valid; None if it is (or it
    is another country's)."""
    try:
        if compact.startswith("SE"):
            se_vat.validate(compact)
        elif compact.startswith("NO"):
            no_mva.validate(compact)
    except StdnumError as exc:
        return str(exc)
    return None


def check_vat_categories(invoice: Invoice) -> list[ValidationIssue]:
    """The EN 16931 rules of each VAT category used (S, Z, E, AE, K, G, O)."""
    issues: list[ValidationIssue] = []
    seller, buyer = invoice.seller, invoice.buyer
    # (category, rate) → sum of line nets - allowances + charges, for BR-*-08 / BR-S-08.
    expected: dict[tuple[VatCategory, Decimal], Decimal] = defaultdict(Decimal)
    used: set[VatCategory] = set()
    # (field, category, rate, amount, rule number: 05 line, 06 allowance, 07 charge)
    items: list[tuple[str, VatCategory, Decimal, Decimal, str]] = [
        (f"lines[{i}]", line.vat_category, line.vat_rate, line.net_amount, "05")
        for i, line in enumerate(invoice.lines)
    ] + [
        (
            f"allowances_charges[{i}]",
            ac.vat_category,
            ac.vat_rate,
            ac.amount if ac.is_charge else -ac.amount,
            "07" if ac.is_charge else "06",
        )
        for i, ac in enumerate(invoice.allowances_charges)
    ]
    for path, category, rate, amount, step in items:
        used.add(category)
        prefix = CATEGORY_RULES[category]
        if category is VatCategory.STANDARD and rate <= 0:
            issues.append(
                _issue(
                    f"{path}.vat_rate",
                    f"{prefix}-{step}",
                    f"a standard-rated (S) item needs a VAT rate above 0, not {rate} %",
                )
            )
        elif category in ZERO_RATED and rate != 0:
            issues.append(
                _issue(
                    f"{path}.vat_rate",
                    f"{prefix}-{step}",
                    f"VAT category {category.value} has VAT rate 0, not {rate} %",
                )
            )
        key_rate = rate if category is VatCategory.STANDARD else Decimal(0)
        expected[(category, key_rate)] += amount

    breakdown_categories: dict[VatCategory, list[int]] = defaultdict(list)
    for i, b in enumerate(invoice.vat_breakdown):
        breakdown_categories[b.category].append(i)
        prefix = CATEGORY_RULES[b.category]
        field = f"vat_breakdown[{i}]"
        if b.category in ZERO_RATED and b.tax_amount != 0:
            issues.append(
                _issue(
                    f"{field}.tax_amount",
                    f"{prefix}-09",
                    f"VAT category {b.category.value} has VAT amount 0, not {b.tax_amount}",
                )
            )
        reason = (b.exemption_reason or "").strip()
        if b.category in NEEDS_EXEMPTION_REASON and not reason:
            issues.append(
                _issue(
                    f"{field}.exemption_reason",
                    f"{prefix}-10",
                    f"VAT category {b.category.value} needs a VAT exemption reason (BT-120)",
                )
            )
        if b.category is VatCategory.ZERO and reason:
            issues.append(
                _issue(
                    f"{field}.exemption_reason",
                    "BR-Z-10",
                    "a zero-rated (Z) breakdown has no VAT exemption reason",
                )
            )
        key_rate = b.rate if b.category is VatCategory.STANDARD else Decimal(0)
        want = expected.get((b.category, key_rate))
        if want is not None and want.quantize(CENT) != b.taxable_amount.quantize(CENT):
            issues.append(
                _issue(
                    f"{field}.taxable_amount",
                    f"{prefix}-08",
                    f"taxable amount {b.taxable_amount} for {b.category.value} {b.rate} % "
                    f"should be {want} (the lines and allowances/charges of that category)",
                )
            )

    for category in sorted(used, key=lambda c: c.value):
        prefix = CATEGORY_RULES[category]
        count = len(breakdown_categories.get(category, []))
        if count == 0 or (count > 1 and category is not VatCategory.STANDARD):
            issues.append(
                _issue(
                    "vat_breakdown",
                    f"{prefix}-01",
                    f"items of VAT category {category.value} need "
                    + ("a" if category is VatCategory.STANDARD else "exactly one")
                    + f" VAT breakdown of that category, found {count}",
                )
            )
        if category is VatCategory.NOT_SUBJECT:
            continue
        if not seller.vat_id:
            issues.append(
                _issue(
                    "seller.vat_id",
                    f"{prefix}-02",
                    f"an invoice with VAT category {category.value} needs the seller's VAT id",
                )
            )
        if category is VatCategory.REVERSE_CHARGE and not (buyer.vat_id or buyer.company_id):
            issues.append(
                _issue(
                    "buyer.vat_id",
                    "BR-AE-02",
                    "a reverse-charge invoice needs the buyer's VAT id or legal registration "
                    "(organisation number)",
                )
            )
        if category is VatCategory.INTRA_COMMUNITY and not buyer.vat_id:
            issues.append(
                _issue(
                    "buyer.vat_id",
                    "BR-IC-02",
                    "an intra-community supply needs the buyer's VAT id",
                )
            )
    if invoice.seller.address.country_code == "SE":
        for i, line in enumerate(invoice.lines):
            if line.vat_category is VatCategory.STANDARD and line.vat_rate not in SWEDISH_VAT_RATES:
                issues.append(
                    _issue(
                        f"lines[{i}].vat_rate",
                        "SE-R-006",
                        f"Swedish VAT rate must be 25, 12 or 6 %, not {line.vat_rate} %",
                    )
                )
    return issues


def check_document(invoice: Invoice) -> list[ValidationIssue]:
    """Currency code, the credited invoice of a credit note, due date after issue date."""
    issues: list[ValidationIssue] = []
    if invoice.currency not in ISO_4217:
        issues.append(
            _issue("currency", "BR-CL-04", f"{invoice.currency!r} is not an ISO 4217 currency")
        )
    if invoice.document_type is DocumentType.CREDIT_NOTE and (
        invoice.preceding_invoice is None or not invoice.preceding_invoice.number.strip()
    ):
        # Swedish and Norwegian VAT law: a credit note refers unambiguously to the invoice it
        # changes (EN 16931 BG-3 carries it).
        issues.append(
            _issue(
                "preceding_invoice",
                "NF-CREDIT-REF",
                "a credit note must name the invoice it credits",
            )
        )
    if invoice.due_date is not None and invoice.due_date < invoice.issue_date:
        issues.append(_issue("due_date", "NF-DUE-DATE", "due date is before the invoice date"))
    if invoice.document_type is DocumentType.INVOICE and invoice.totals.payable < 0:
        # A negative amount due is money owed to the buyer: a credit note says so (and names
        # the invoice it credits); sent as an invoice it asks the buyer to pay a negative sum.
        issues.append(
            _issue(
                "totals.payable",
                NEGATIVE_INVOICE_RULE,
                f"an invoice's amount due must not be negative ({invoice.totals.payable}): "
                "make it a credit note of the invoice it corrects",
            )
        )
    return issues


def check_vat_accounting_currency(invoice: Invoice) -> list[ValidationIssue]:
    """BT-6 and BT-111: BR-53, BR-CL-05, PEPPOL-EN16931-R005 and -R055, NF-CURRENCY-RATE.

    A seller whose country's currency is known and differs from the invoice currency must give
    both; whoever gives one gives the other, in a valid currency other than the invoice's, and
    BT-111 has the sign of the VAT total (BT-110).
    """
    issues: list[ValidationIssue] = []
    code = invoice.vat_accounting_currency
    vat = invoice.vat_total_accounting_currency
    rate = invoice.exchange_rate
    national = accounting_currency(invoice.seller.address.country_code)
    if code is None:
        if national is not None and invoice.currency != national:
            issues.append(
                _issue(
                    "vat_accounting_currency",
                    "NF-CURRENCY-RATE",
                    f"an invoice in {invoice.currency} from a seller accounting in {national} "
                    f"needs the VAT accounting currency {national} (BT-6)",
                )
            )
            if vat is None:
                issues.append(
                    _issue(
                        "vat_total_accounting_currency",
                        "NF-CURRENCY-RATE",
                        f"an invoice in {invoice.currency} from a seller accounting in "
                        f"{national} needs its VAT total in {national} (BT-111)",
                    )
                )
        elif vat is not None:
            issues.append(
                _issue(
                    "vat_accounting_currency",
                    "NF-CURRENCY-RATE",
                    "a VAT total in accounting currency (BT-111) needs the currency it is in "
                    "(BT-6)",
                )
            )
    else:
        if code not in ISO_4217:
            issues.append(
                _issue(
                    "vat_accounting_currency",
                    "BR-CL-05",
                    f"{code!r} is not an ISO 4217 currency",
                )
            )
        if code == invoice.currency:
            issues.append(
                _issue(
                    "vat_accounting_currency",
                    "PEPPOL-EN16931-R005",
                    f"the VAT accounting currency must differ from the invoice currency {code}",
                )
            )
        elif national is not None and code != national:
            issues.append(
                _issue(
                    "vat_accounting_currency",
                    "NF-CURRENCY-RATE",
                    f"a seller in {invoice.seller.address.country_code} accounts for VAT in "
                    f"{national}, not {code}",
                )
            )
        if vat is None:
            issues.append(
                _issue(
                    "vat_total_accounting_currency",
                    "BR-53",
                    f"with a VAT accounting currency ({code}, BT-6) the invoice needs its VAT "
                    "total in that currency (BT-111)",
                )
            )
    tax_total = invoice.totals.tax_total
    if vat is not None and ((vat < 0 < tax_total) or (tax_total < 0 < vat)):
        issues.append(
            _issue(
                "vat_total_accounting_currency",
                "PEPPOL-EN16931-R055",
                f"VAT total in accounting currency {vat} and VAT total {invoice.totals.tax_total} "
                "must have the same sign",
            )
        )
    if rate is not None and rate <= 0:
        issues.append(
            _issue("exchange_rate", "NF-CURRENCY-RATE", f"exchange rate {rate} must be positive")
        )
    return issues


def check_exchange_rate(invoice: Invoice) -> list[ValidationIssue]:
    """BT-111 is the VAT total (BT-110) at the source's exchange rate (NF-CURRENCY-RATE).

    ERPs round VAT per rate or per line in the accounting currency, so each VAT breakdown may
    differ by an öre (and one more for the product's own rounding).
    """
    vat = invoice.vat_total_accounting_currency
    rate = invoice.exchange_rate
    if vat is None or rate is None or rate <= 0:
        return []
    expected = (invoice.totals.tax_total * rate).quantize(CENT)
    tolerance = CENT * (len(invoice.vat_breakdown) + 1)
    if abs(expected - vat) <= tolerance:
        return []
    return [
        _issue(
            "vat_total_accounting_currency",
            "NF-CURRENCY-RATE",
            f"VAT total in accounting currency {vat} is not the VAT total "
            f"{invoice.totals.tax_total} at exchange rate {rate} ({expected})",
        )
    ]


def validate_invoice(
    invoice: Invoice, policy: ReferencePolicy | None = None
) -> list[ValidationIssue]:
    """Every problem of a mapped invoice (EN 16931 and Nordic rules); [] means valid.

    `policy` is the tenant's payment-reference policy (None: the seller country's default).
    """
    issues = check_parties(invoice)
    issues += check_document(invoice)
    issues += check_vat_accounting_currency(invoice)
    amount_issues = check_amounts(invoice)
    issues += amount_issues
    if not any(i.rule == "NF-RANGE" for i in amount_issues):
        # Sums and products of out-of-range amounts are meaningless (and may not fit in
        # Decimal's 28 digits): the range issues are the whole story then.
        issues += check_arithmetic(invoice)
        issues += check_vat_categories(invoice)
        issues += check_exchange_rate(invoice)
    issues += check_payment_reference(
        invoice.payment.payment_reference,
        invoice.seller.address.country_code,
        REFERENCE_FIELD,
        policy,
    )
    return issues
