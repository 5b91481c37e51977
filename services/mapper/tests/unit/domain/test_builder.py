"""The invoice builder: the seller and the payment account from the tenant's profile, the VAT
breakdown and totals, and every problem as an issue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from mapper.domain.builder import AccountingVat, InvoiceBuilder, never_raises, totals
from mapper.domain.reader import Reader
from mapper.testing import NORWEGIAN_SELLER, SWEDISH_SELLER, fetched, seller_profile
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import RELATED_TENANT, ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import Invoice, VatCategory
from nordflow_schemas.tenant import AccountScheme, BankAccount, TenantProfile
from nordflow_schemas.testing import TODAY


def builder(profile: TenantProfile | None = SWEDISH_SELLER, **related: Any) -> InvoiceBuilder:
    event = fetched(SourceSystem.WINNER, {}, profile=profile, related=related or None)
    return InvoiceBuilder(Reader(), event)


def one_line(b: InvoiceBuilder, currency: str = "SEK", **build: Any) -> Invoice:
    """A 1000 + 25 % VAT invoice from the builder."""
    b.add_line(
        "row",
        description="Konsult",
        quantity=Decimal(1),
        unit_price=Decimal(1000),
        net=Decimal(1000),
        category=VatCategory.STANDARD,
        rate=Decimal(25),
    )
    vat = b.vat_breakdown()
    result = b.build(
        credit=False,
        number="1",
        issue_date=TODAY,
        currency=currency,
        buyer=b.buyer("Kund AB", address=b.address(("Gatan 1",), city="Lund", postal_code="22100")),
        vat=vat,
        totals=totals(Decimal(1000), vat[0].tax_amount),
        **build,
    )
    assert isinstance(result, Invoice), result
    return result


IBAN = BankAccount(scheme=AccountScheme.IBAN, account_id="SE4550000000058398257466", currency="EUR")


def test_the_seller_is_the_tenants_and_the_account_the_one_for_the_currency() -> None:
    profile = seller_profile("SE", name="Demo AB", bankgiro="5050-1055", accounts=(IBAN,))
    sek = one_line(builder(profile))
    assert sek.seller == profile.seller
    assert (sek.payment.account_id, sek.payment.account_scheme) == ("5050-1055", "SE:BANKGIRO")
    eur = one_line(
        builder(profile), "EUR", accounting=AccountingVat("SEK", Decimal(2875), Decimal("11.5"))
    )
    assert (eur.payment.account_id, eur.payment.account_scheme) == (IBAN.account_id, "IBAN")
    assert one_line(builder(NORWEGIAN_SELLER), "NOK").payment.account_id is None


def test_an_account_the_document_states_wins() -> None:
    invoice = one_line(builder(), account_id="NO9386011117947", account_scheme="IBAN")
    assert (invoice.payment.account_id, invoice.payment.account_scheme) == (
        "NO9386011117947",
        "IBAN",
    )


@pytest.mark.parametrize(
    ("related", "says"),
    [
        ({}, "came without the tenant's profile"),
        ({RELATED_TENANT: {"legal_name": "Demo AB"}}, "country: Field required"),
        (
            {RELATED_TENANT: {**SWEDISH_SELLER.model_dump(mode="json"), "time_zone": "Mars/Base"}},
            "unknown time zone",
        ),
    ],
)
def test_a_document_without_a_valid_profile_is_rejected_on_field_tenant(
    related: dict[str, Any], says: str
) -> None:
    b = builder(None, **related)
    assert b.profile is None
    b.add_line(
        "row",
        description=None,
        quantity=Decimal(1),
        unit_price=Decimal(1),
        net=Decimal(1),
        category=VatCategory.STANDARD,
        rate=Decimal(25),
    )
    result = b.build(
        credit=False,
        number="1",
        issue_date=TODAY,
        currency="SEK",
        buyer=b.buyer("Kund AB", address=b.address()),
        vat=b.vat_breakdown(),
        totals=totals(Decimal(1), Decimal("0.25")),
    )
    assert isinstance(result, list)
    [issue] = result
    assert (issue.field, issue.rule) == ("tenant", "NF-TENANT-PROFILE")
    assert says in issue.message
    assert "PUT /api/v1/profile" in issue.message


def test_vat_is_computed_per_category_and_rate_unless_the_source_booked_it() -> None:
    b = builder()
    for rate, net in (
        (Decimal(25), Decimal("0.10")),
        (Decimal(25), Decimal("0.10")),
        (Decimal(12), Decimal("10.05")),
    ):
        b.add_line("row", description="x", quantity=Decimal(1), unit_price=net, net=net,
                   category=VatCategory.STANDARD, rate=rate)  # fmt: skip
    b.add_line(
        "row",
        description="export",
        quantity=Decimal(1),
        unit_price=Decimal(5),
        net=Decimal(5),
        category=VatCategory.EXPORT,
        rate=Decimal(0),
    )
    computed = [(v.category, v.rate, v.taxable_amount, v.tax_amount, v.exemption_reason)
                for v in b.vat_breakdown()]  # fmt: skip
    assert computed == [
        (VatCategory.EXPORT, Decimal(0), Decimal(5), Decimal("0.00"), "Export outside the EU"),
        (VatCategory.STANDARD, Decimal(12), Decimal("10.05"), Decimal("1.21"), None),
        (VatCategory.STANDARD, Decimal(25), Decimal("0.20"), Decimal("0.05"), None),
    ]
    booked = b.vat_breakdown(booked={Decimal(12): Decimal("1.20")})
    assert [v.tax_amount for v in booked] == [Decimal("0.00"), Decimal("1.20"), Decimal("0.05")]
    assert b.line_total == Decimal("15.25")


def test_totals_take_rounding_from_the_amount_due_or_the_other_way_round() -> None:
    due = totals(Decimal("100.00"), Decimal("25.00"), payable=Decimal("125.40"))
    assert (due.tax_inclusive, due.rounding, due.payable) == (
        Decimal("125.00"),
        Decimal("125.40") - Decimal("125.00"),
        Decimal("125.40"),
    )
    rounded = totals(Decimal("100.00"), Decimal("25.00"), rounding=Decimal("-0.40"))
    assert rounded.payable == Decimal("124.60")


def test_a_foreign_currency_needs_its_rate_in_the_sellers_accounting_currency() -> None:
    b = builder()
    assert b.accounting_vat(currency="SEK", vat_total=Decimal(25), rate=None, rate_field="r") == (
        AccountingVat()
    )
    assert b.accounting_vat(
        currency="EUR", vat_total=Decimal(25), rate=Decimal("11.45"), rate_field="r"
    ) == AccountingVat("SEK", Decimal("286.25"), Decimal("11.45"))
    b.accounting_vat(currency="EUR", vat_total=Decimal(25), rate=None, rate_field="Rate")
    b.accounting_vat(currency="EUR", vat_total=Decimal(25), rate=Decimal(0), rate_field="Rate")
    assert [(i.field, i.rule) for i in b.r.issues] == [
        ("Rate", "NF-REQUIRED"),
        ("Rate", "NF-CURRENCY-RATE"),
    ]
    # A seller in a country without a known national currency: the profile's currency.
    us = seller_profile("US", name="Demo Inc")
    assert builder(us).accounting_currency == us.accounting_currency == "EUR"


def test_a_bad_electronic_address_is_an_issue_on_its_field() -> None:
    b = builder()
    assert b.endpoint("GLN", "7365567000003", "Invoice.buyer.electronic_address") is None
    assert [(i.field, i.rule) for i in b.r.issues] == [
        ("Invoice.buyer.electronic_address.scheme", "NF-SCHEMA")
    ]


def test_a_credit_note_names_the_credited_document_by_its_canonical_id() -> None:
    b = builder()
    reference = b.credited("1000", document_id="INV-1000")
    assert reference.number == "1000"
    assert reference.invoice_id is not None
    assert reference.invoice_id.startswith("inv_")
    assert b.credited("1000").invoice_id is None


def test_an_arithmetic_error_becomes_an_issue_not_a_crash() -> None:
    @never_raises("Order")
    def overflowing(event: ErpDocumentFetched) -> list[ValidationIssue]:
        raise ArithmeticError("too many digits")

    assert overflowing(fetched(SourceSystem.WINNER, {})) == [
        ValidationIssue(field="Order", rule="NF-NUMBER", message="too many digits")
    ]
