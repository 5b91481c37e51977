"""domain.eligibility: every reason an invoice is not transferred, and the boundaries."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import pytest
from factoring_gateway.domain import Agreement, eligibility
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import AgreementKind
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    Invoice,
    InvoiceLine,
    Party,
    Totals,
    VatBreakdown,
    VatCategory,
)

TODAY = dt.date(2025, 3, 10)


def make_invoice(
    *,
    document_type: DocumentType = DocumentType.INVOICE,
    issue_date: dt.date = TODAY,
    currency: str = "SEK",
    outstanding_amount: Decimal | None = Decimal("1250.00"),
    payment_method: str | None = None,
) -> Invoice:
    """A valid canonical invoice: one line of 1000.00 at 25 % VAT, 1250.00 payable."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    return Invoice(
        invoice_id=f"inv_{uuid.uuid4().hex}",
        tenant_id=tenant,
        source=SourceRef(
            system=SourceSystem.FORTNOX, connection_id="c1", document_id="1", document_number="1"
        ),
        document_type=document_type,
        number="1",
        issue_date=issue_date,
        due_date=issue_date + dt.timedelta(days=30),
        currency=currency,
        seller=Party(name="Säljare AB", address=Address(country_code="SE")),
        buyer=Party(name="Köpare AB", address=Address(country_code="SE", city="Malmö")),
        lines=(
            InvoiceLine(
                line_id="1",
                description="Konsult",
                quantity=Decimal(10),
                unit_price=Decimal(100),
                net_amount=Decimal("1000.00"),
                vat_category=VatCategory.STANDARD,
                vat_rate=Decimal(25),
            ),
        ),
        vat_breakdown=(
            VatBreakdown(
                category=VatCategory.STANDARD,
                rate=Decimal(25),
                taxable_amount=Decimal("1000.00"),
                tax_amount=Decimal("250.00"),
            ),
        ),
        totals=Totals(
            line_extension=Decimal("1000.00"),
            tax_exclusive=Decimal("1000.00"),
            tax_total=Decimal("250.00"),
            tax_inclusive=Decimal("1250.00"),
            payable=Decimal("1250.00"),
        ),
        payment_method=payment_method,
        outstanding_amount=outstanding_amount,
    )


def agreement(**changes: object) -> Agreement:
    base = Agreement(tenant_id="t", provider="Factor AB", kind=AgreementKind.FACTORING)
    return dataclasses.replace(base, **changes)


def test_an_ordinary_invoice_is_eligible() -> None:
    assert eligibility(agreement(), make_invoice(), TODAY) is None


def test_no_agreement() -> None:
    assert eligibility(None, make_invoice(), TODAY) == "tenant has no factoring agreement"


def test_disabled_agreement() -> None:
    assert eligibility(agreement(enabled=False), make_invoice(), TODAY) == "agreement is disabled"


def test_credit_notes_excluded_by_the_agreement() -> None:
    credit = make_invoice(
        document_type=DocumentType.CREDIT_NOTE, outstanding_amount=Decimal("-1250.00")
    )
    assert (
        eligibility(agreement(include_credit_notes=False), credit, TODAY)
        == "credit notes are not transferred under this agreement"
    )
    assert eligibility(agreement(include_credit_notes=True), credit, TODAY) is None


def test_credit_note_exclusion_does_not_touch_invoices() -> None:
    assert eligibility(agreement(include_credit_notes=False), make_invoice(), TODAY) is None


@pytest.mark.parametrize(
    ("age_days", "max_age_days", "eligible"),
    [(30, 30, True), (31, 30, False), (0, 1, True), (2, 1, False), (90, 120, True)],
)
def test_older_than_max_age_days(age_days: int, max_age_days: int, eligible: bool) -> None:
    invoice = make_invoice(issue_date=TODAY - dt.timedelta(days=age_days))
    reason = eligibility(agreement(max_age_days=max_age_days), invoice, TODAY)
    if eligible:
        assert reason is None
    else:
        assert reason == f"invoice date is more than {max_age_days} days back"


def test_an_invoice_dated_in_the_future_is_not_too_old() -> None:
    invoice = make_invoice(issue_date=TODAY + dt.timedelta(days=3))
    assert eligibility(agreement(), invoice, TODAY) is None


@pytest.mark.parametrize("currency", ["USD", "DKK", "GBP"])
def test_currency_not_covered(currency: str) -> None:
    reason = eligibility(agreement(), make_invoice(currency=currency), TODAY)
    assert reason == f"currency {currency} is not covered by the agreement"


@pytest.mark.parametrize("currency", ["SEK", "NOK", "EUR"])
def test_default_currencies_are_covered(currency: str) -> None:
    assert eligibility(agreement(), make_invoice(currency=currency), TODAY) is None


def test_agreement_currencies_replace_the_default() -> None:
    only_dkk = agreement(currencies=frozenset({"DKK"}))
    assert eligibility(only_dkk, make_invoice(currency="DKK"), TODAY) is None
    assert eligibility(only_dkk, make_invoice(currency="SEK"), TODAY) == (
        "currency SEK is not covered by the agreement"
    )


@pytest.mark.parametrize("zero", [Decimal(0), Decimal("0.00"), Decimal("-0")])
def test_nothing_outstanding(zero: Decimal) -> None:
    reason = eligibility(agreement(), make_invoice(outstanding_amount=zero), TODAY)
    assert reason == "invoice is not open (nothing outstanding)"


@pytest.mark.parametrize("open_amount", [None, Decimal("0.01"), Decimal("1250.00")])
def test_an_unknown_or_open_balance_is_eligible(open_amount: Decimal | None) -> None:
    assert eligibility(agreement(), make_invoice(outstanding_amount=open_amount), TODAY) is None


def test_payment_method_filter() -> None:
    only_bankgiro = agreement(payment_methods=frozenset({"BG", "PG"}))
    assert eligibility(only_bankgiro, make_invoice(payment_method="BG"), TODAY) is None
    assert eligibility(only_bankgiro, make_invoice(payment_method="PG"), TODAY) is None
    assert eligibility(only_bankgiro, make_invoice(payment_method="KONT"), TODAY) == (
        "payment method 'KONT' is not a factoring one"
    )
    assert eligibility(only_bankgiro, make_invoice(payment_method=None), TODAY) == (
        "payment method None is not a factoring one"
    )


def test_without_a_payment_method_filter_any_method_passes() -> None:
    for method in (None, "KONT", "BG"):
        assert eligibility(agreement(), make_invoice(payment_method=method), TODAY) is None


def test_the_first_failing_rule_wins() -> None:
    hopeless = make_invoice(
        document_type=DocumentType.CREDIT_NOTE,
        issue_date=TODAY - dt.timedelta(days=400),
        currency="USD",
        outstanding_amount=Decimal(0),
        payment_method="KONT",
    )
    strict = agreement(include_credit_notes=False, payment_methods=frozenset({"BG"}))
    reasons = [
        eligibility(dataclasses.replace(strict, enabled=False), hopeless, TODAY),
        eligibility(strict, hopeless, TODAY),
        eligibility(strict, make_invoice(issue_date=hopeless.issue_date, currency="USD"), TODAY),
        eligibility(strict, make_invoice(currency="USD"), TODAY),
        eligibility(strict, make_invoice(outstanding_amount=Decimal(0)), TODAY),
        eligibility(strict, make_invoice(payment_method="KONT"), TODAY),
    ]
    assert reasons == [
        "agreement is disabled",
        "credit notes are not transferred under this agreement",
        "invoice date is more than 30 days back",
        "currency USD is not covered by the agreement",
        "invoice is not open (nothing outstanding)",
        "payment method 'KONT' is not a factoring one",
    ]
