"""Validation rules that report every problem at once, each naming its field and rule."""

from __future__ import annotations

from decimal import Decimal

from nordflow_references import KidAlgorithm, OcrControl, check_kid, check_ocr
from nordflow_schemas.events import ValidationIssue
from nordflow_schemas.invoice import Invoice, VatCategory
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.no import orgnr as no_orgnr
from stdnum.se import orgnr as se_orgnr

CENT = Decimal("0.01")
SWEDISH_VAT_RATES = frozenset({Decimal(25), Decimal(12), Decimal(6)})


def _issue(field: str, rule: str, message: str) -> ValidationIssue:
    return ValidationIssue(field=field, rule=rule, message=message)


def check_org_number(country: str, number: str | None, field: str) -> list[ValidationIssue]:
    """Swedish (Luhn, SE-R-013) and Norwegian (MOD11) organisation numbers."""
    if not number:
        return []
    try:
        if country == "SE":
            se_orgnr.validate(number)
        elif country == "NO":
            no_orgnr.validate(number)
    except StdnumError as exc:
        return [_issue(field, "NF-ORGNR", f"{number!r} is not a valid {country} org. no.: {exc}")]
    return []


def check_payment_reference(
    reference: str | None, country: str, field: str
) -> list[ValidationIssue]:
    """A Swedish OCR must pass hard control (Luhn); a Norwegian KID MOD10 or MOD11.

    Which control a tenant's bank agreed (and a factor's KID layout) is the tenant's reference
    policy; without one, these are the checks every bank in the country applies.
    """
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


def validate_invoice(invoice: Invoice) -> list[ValidationIssue]:
    """EN 16931 arithmetic (BR-CO-*) and Nordic rules for a mapped invoice."""
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
    for role, party in (("seller", invoice.seller), ("buyer", invoice.buyer)):
        issues += check_org_number(
            party.address.country_code, party.company_id, f"{role}.company_id"
        )
    issues += check_payment_reference(
        invoice.payment.payment_reference,
        invoice.seller.address.country_code,
        "payment.payment_reference",
    )
    if invoice.due_date is not None and invoice.due_date < invoice.issue_date:
        issues.append(_issue("due_date", "NF-DUE-DATE", "due date is before the invoice date"))
    return issues
