"""Visma eAccounting v2 → canonical invoice (payloads shaped like the sandbox's API answers)."""

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.domain.validation import validate_invoice
from mapper.service import map_document
from mapper.sources.visma_eaccounting import map_visma_eaccounting
from mapper.testing import fetched as fetched_document
from mapper.testing import json_values
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice, PartyType, VatCategory

INVOICE_ID = "3f2b8c1e-7a4d-4e0b-9f6a-1c2d3e4f5a6b"
CUSTOMER = {
    "Id": "9a8b7c6d-0000-4000-8000-000000000001",
    "CustomerNumber": "7",
    "Name": "Kund AB",
    "CorporateIdentityNumber": "556036-0793",
    "VatNumber": "SE556036079301",
    "EmailAddress": "faktura@kund.se",
    "InvoiceAddress1": "Kundvägen 2",
    "InvoiceCity": "Uppsala",
    "InvoicePostalCode": "75320",
    "InvoiceCountryCode": "SE",
    "IsPrivatePerson": False,
    "ReverseChargeOnConstructionServices": False,
    "ElectronicAddress": "0007:5560360793",
    "TermsOfPayment": {"Name": "30 dagar netto", "NumberOfDays": 30},
}


def row(
    line: int, quantity: Any, price: Any, rate: Any, amount: Any, **extra: Any
) -> dict[str, Any]:
    return {
        "Id": f"00000000-0000-4000-8000-00000000000{line}",
        "LineNumber": line,
        "ArticleId": "11111111-0000-4000-8000-000000000001",
        "ArticleNumber": f"A{line}",
        "IsTextRow": False,
        "Text": f"Artikel {line}",
        "UnitPrice": price,
        "DiscountPercentage": 0,
        "Quantity": quantity,
        "IsVatFree": False,
        "VatRate": rate,
        "PercentVat": rate,
        "AmountNoVat": amount,
        "Amount": amount,
        "UnitAbbreviation": "st",
        **extra,
    }


def text_row(line: int) -> dict[str, Any]:
    return {
        "LineNumber": line,
        "ArticleId": None,
        "IsTextRow": True,
        "Text": "Tack för beställningen",
        "UnitPrice": 0,
        "DiscountPercentage": 0,
        "Quantity": 0,
        "VatRate": None,
        "PercentVat": 0,
        "AmountNoVat": 0,
        "Amount": 0,
    }


def visma_invoice(**overrides: Any) -> dict[str, Any]:
    """3 x 33.33 at 25 %, 1.5 x 10.01 less 10 % at 12 %, 0.05 at 6 %, and a text row."""
    doc: dict[str, Any] = {
        "Id": INVOICE_ID,
        "InvoiceNumber": 133,
        "CustomerId": CUSTOMER["Id"],
        "CustomerNumber": "7",
        "CustomerName": "Kund AB",
        "InvoiceCustomerName": "Kund AB",
        "CustomerEmail": "faktura@kund.se",
        "CustomerIsPrivatePerson": False,
        "IsCreditInvoice": False,
        "CurrencyCode": "SEK",
        "CurrencyRate": 1,
        "InvoiceDate": "2025-03-01T00:00:00",
        "DueDate": "2025-03-31T00:00:00",
        "YourReference": "Anna",
        "BuyersOrderReference": "PO-42",
        "InvoiceAddress1": "Kundvägen 2",
        "InvoicePostalCode": "75320",
        "InvoiceCity": "Uppsala",
        "InvoiceCountryCode": "SE",
        "EuThirdParty": False,
        "ElectronicAddress": "0007:5560360793",
        "Rows": [
            row(0, 3, 33.33, 0.25, 99.99),
            row(1, 1.5, 10.01, 0.12, 13.51, DiscountPercentage=0.1),
            row(2, 1, 0.05, 0.06, 0.05),
            text_row(3),
        ],
        "VatSpecification": [
            {"AmountInvoiceCurrency": 0.05, "VatAmountInvoiceCurrency": 0, "VatPercent": 0.06},
            {"AmountInvoiceCurrency": 13.51, "VatAmountInvoiceCurrency": 1.62, "VatPercent": 0.12},
            {"AmountInvoiceCurrency": 99.99, "VatAmountInvoiceCurrency": 25, "VatPercent": 0.25},
        ],
        "TotalAmount": 140.17,
        "TotalVatAmount": 26.62,
        "TotalRoundings": 0,
        "TotalAmountInvoiceCurrency": 140.17,
        "TotalVatAmountInvoiceCurrency": 26.62,
        "RemainingAmount": 140.17,
        "RemainingAmountInvoiceCurrency": 140.17,
        "PaymentReferenceNumber": "133",
        "PaymentStatus": 1,
        "ModifiedUtc": "2025-03-01T08:00:00Z",
    }
    doc.update(overrides)
    return doc


def fetched(
    doc: dict[str, Any],
    kind: DocumentKind = DocumentKind.INVOICE,
    customer: dict[str, Any] | None = None,
) -> ErpDocumentFetched:
    return fetched_document(
        SourceSystem.VISMA_EACCOUNTING,
        doc,
        kind=kind,
        related={"customer": CUSTOMER if customer is None else customer},
        document_id=INVOICE_ID,
        document_number="133",
    )


def test_maps_a_swedish_multi_rate_invoice_exactly() -> None:
    result = map_document(fetched(visma_invoice()))
    assert isinstance(result, Invoice), result
    assert result.document_type is DocumentType.INVOICE
    assert result.number == "133"
    assert result.issue_date == dt.date(2025, 3, 1)
    assert result.due_date == dt.date(2025, 3, 31)
    assert result.currency == "SEK"
    assert len(result.lines) == 3  # the text row is not a line
    discounted = result.lines[1]
    assert (discounted.quantity, discounted.unit_price) == (Decimal("1.5"), Decimal("10.01"))
    assert discounted.allowance_amount == Decimal("1.51")  # 15.015 - 13.51, rounded
    assert discounted.net_amount == Decimal("13.51")
    assert discounted.vat_rate == Decimal(12)
    assert result.lines[0].unit_code == "H87"
    assert [(b.category, b.rate, b.taxable_amount, b.tax_amount) for b in result.vat_breakdown] == [
        (VatCategory.STANDARD, Decimal(6), Decimal("0.05"), Decimal("0.00")),
        (VatCategory.STANDARD, Decimal(12), Decimal("13.51"), Decimal("1.62")),
        (VatCategory.STANDARD, Decimal(25), Decimal("99.99"), Decimal("25.00")),
    ]
    t = result.totals
    assert t.line_extension == t.tax_exclusive == Decimal("113.55")
    assert t.tax_total == Decimal("26.62")
    assert t.tax_inclusive == Decimal("140.17")
    assert t.rounding == Decimal(0)
    assert t.payable == Decimal("140.17")
    assert result.outstanding_amount == Decimal("140.17")
    assert result.payment.payment_reference == "133"
    assert result.payment.terms == "30 dagar netto"
    assert result.buyer.name == "Kund AB"
    assert result.buyer.party_type is PartyType.COMPANY
    assert result.buyer.company_id == "556036-0793"
    assert result.buyer.vat_id == "SE556036079301"
    assert result.buyer.email == "faktura@kund.se"
    assert result.buyer.electronic_address is not None
    assert result.buyer.electronic_address.scheme == "0007"
    assert result.buyer.electronic_address.value == "5560360793"
    assert result.buyer.address.lines == ("Kundvägen 2",)
    assert (result.buyer.address.postal_code, result.buyer.address.city) == ("75320", "Uppsala")
    assert result.buyer_reference == "Anna"
    assert result.order_reference == "PO-42"


def test_rounding_and_open_balance_are_carried() -> None:
    doc = visma_invoice(
        RoundingsAmount=-0.17,
        TotalAmount=140,
        TotalAmountInvoiceCurrency=140,
        RemainingAmount=40,
        RemainingAmountInvoiceCurrency=40,
    )
    result = map_document(fetched(doc))
    assert isinstance(result, Invoice), result
    assert result.totals.rounding == Decimal("-0.17")
    assert result.totals.payable == Decimal(140)
    assert result.outstanding_amount == Decimal(40)


def test_credit_invoice_amounts_become_positive() -> None:
    doc = visma_invoice(
        IsCreditInvoice=True,
        Rows=[row(0, -1, 100, 0.25, -100), row(1, -2, 50, 0.12, -100)],
        VatSpecification=[
            {"AmountInvoiceCurrency": -100, "VatAmountInvoiceCurrency": -12, "VatPercent": 0.12},
            {"AmountInvoiceCurrency": -100, "VatAmountInvoiceCurrency": -25, "VatPercent": 0.25},
        ],
        TotalAmount=-237,
        TotalVatAmount=-37,
        TotalAmountInvoiceCurrency=-237,
        TotalVatAmountInvoiceCurrency=-37,
        RemainingAmount=-237,
        RemainingAmountInvoiceCurrency=-237,
        PaymentReferenceNumber="141",
    )
    result = map_visma_eaccounting(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(result, Invoice), result
    assert result.document_type is DocumentType.CREDIT_NOTE
    # The source names no credited invoice, so validation asks for it (and nothing else).
    assert [(i.field, i.rule) for i in validate_invoice(result)] == [
        ("preceding_invoice", "NF-CREDIT-REF")
    ]
    assert [(line.quantity, line.unit_price, line.net_amount) for line in result.lines] == [
        (Decimal(1), Decimal(100), Decimal(100)),
        (Decimal(2), Decimal(50), Decimal(100)),
    ]
    assert result.totals.tax_total == Decimal(37)
    assert result.totals.payable == Decimal(237)
    assert result.outstanding_amount == Decimal(237)
    assert {(b.rate, b.tax_amount) for b in result.vat_breakdown} == {
        (Decimal(12), Decimal(12)),
        (Decimal(25), Decimal(25)),
    }


def zero_vat_invoice(**overrides: Any) -> dict[str, Any]:
    doc = visma_invoice(
        Rows=[row(0, 10, 1000, 0, 10000)],
        VatSpecification=[
            {"AmountInvoiceCurrency": 10000, "VatAmountInvoiceCurrency": 0, "VatPercent": 0}
        ],
        TotalAmount=10000,
        TotalVatAmount=0,
        TotalAmountInvoiceCurrency=10000,
        TotalVatAmountInvoiceCurrency=0,
        RemainingAmount=10000,
        RemainingAmountInvoiceCurrency=10000,
    )
    doc.update(overrides)
    return doc


def test_construction_reverse_charge_gets_category_ae() -> None:
    customer = {**CUSTOMER, "ReverseChargeOnConstructionServices": True}
    result = map_document(fetched(zero_vat_invoice(), customer=customer))
    assert isinstance(result, Invoice), result
    [breakdown] = result.vat_breakdown
    assert breakdown.category is VatCategory.REVERSE_CHARGE
    assert breakdown.exemption_reason == "Reverse charge"
    assert (breakdown.taxable_amount, breakdown.tax_amount) == (Decimal(10000), Decimal(0))
    assert result.lines[0].vat_category is VatCategory.REVERSE_CHARGE


def test_zero_rated_sales_abroad_are_intra_community_or_export() -> None:
    german = {**CUSTOMER, "InvoiceCountryCode": "DE", "VatNumber": "DE123456789"}
    german.pop("CorporateIdentityNumber")
    eu = map_document(fetched(zero_vat_invoice(InvoiceCountryCode="DE"), customer=german))
    assert isinstance(eu, Invoice), eu
    assert eu.vat_breakdown[0].category is VatCategory.INTRA_COMMUNITY
    norwegian = {**german, "InvoiceCountryCode": "NO", "VatNumber": None}
    export = map_document(fetched(zero_vat_invoice(InvoiceCountryCode="NO"), customer=norwegian))
    assert isinstance(export, Invoice), export
    assert export.vat_breakdown[0].category is VatCategory.EXPORT
    assert export.buyer.address.country_code == "NO"


def test_private_buyer_with_a_gln_and_no_organisation_number() -> None:
    customer = {
        **CUSTOMER,
        "IsPrivatePerson": True,
        "CorporateIdentityNumber": "19121212-1212",
        "ElectronicAddress": None,
        "EdiGlnNumber": "7300009012345",
    }
    doc = visma_invoice(CustomerIsPrivatePerson=True, ElectronicAddress=None)
    result = map_document(fetched(doc, customer=customer))
    assert isinstance(result, Invoice), result
    assert result.buyer.party_type is PartyType.PRIVATE
    assert result.buyer.company_id is None
    assert result.buyer.electronic_address is not None
    assert result.buyer.electronic_address.scheme == "0088"


def test_foreign_currency_uses_invoice_currency_amounts() -> None:
    doc = zero_vat_invoice(
        CurrencyCode="EUR",
        CurrencyRate=11.5,
        TotalAmount=115000,
        RemainingAmount=115000,
    )
    result = map_document(fetched(doc, customer={**CUSTOMER, "InvoiceCountryCode": "SE"}))
    assert isinstance(result, Invoice), result
    assert result.currency == "EUR"
    assert result.totals.payable == Decimal(10000)
    del doc["TotalAmountInvoiceCurrency"]
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    assert [i.field for i in issues] == ["Invoice.TotalAmountInvoiceCurrency"]


def test_rejection_names_every_problem_with_its_source_field() -> None:
    doc = visma_invoice(InvoiceNumber=None, InvoiceDate="01/03/2025", ElectronicAddress="kund")
    del doc["TotalAmount"], doc["TotalAmountInvoiceCurrency"]
    doc["Rows"][0]["DiscountPercentage"] = 10
    doc["Rows"][2]["UnitPrice"] = "abc"
    doc["Rows"].append("not a row")
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    found = {(i.field, i.rule) for i in issues}
    assert {
        ("Invoice.InvoiceNumber", "NF-REQUIRED"),
        ("Invoice.InvoiceDate", "NF-DATE"),
        ("Invoice.ElectronicAddress", "NF-EADDRESS"),
        ("Invoice.TotalAmount", "NF-REQUIRED"),
        ("Invoice.Rows[0].DiscountPercentage", "NF-RANGE"),
        ("Invoice.Rows[2].UnitPrice", "NF-NUMBER"),
        ("Invoice.Rows[4]", "NF-ROW"),
    } <= found
    assert all(i.message for i in issues)


def test_inconsistent_source_amounts_are_named() -> None:
    doc = visma_invoice(Id="someone-else")
    doc["Rows"][0]["AmountNoVat"] = 90
    doc["VatSpecification"][2]["VatPercent"] = 25  # a percent where a fraction belongs
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    found = {(i.field, i.rule) for i in issues}
    assert ("Invoice.Id", "NF-SOURCE-ID") in found
    assert ("Invoice.Rows[0].AmountNoVat", "NF-ROW-AMOUNT") in found
    assert ("Invoice.VatSpecification[2].VatPercent", "NF-RANGE") in found


def test_validation_catches_totals_that_do_not_add_up() -> None:
    issues = map_document(fetched(visma_invoice(TotalAmountInvoiceCurrency=150)))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("totals.payable", "BR-CO-16")]


json_scalars = json_values()
TOP_KEYS = [
    "Id",
    "InvoiceNumber",
    "IsCreditInvoice",
    "InvoiceDate",
    "DueDate",
    "CurrencyCode",
    "CurrencyRate",
    "InvoiceCustomerName",
    "CustomerName",
    "CustomerIsPrivatePerson",
    "InvoiceCountryCode",
    "ElectronicAddress",
    "EuThirdParty",
    "Rows",
    "VatSpecification",
    "TotalAmount",
    "TotalVatAmount",
    "TotalAmountInvoiceCurrency",
    "TotalVatAmountInvoiceCurrency",
    "TotalRoundings",
    "RoundingsAmount",
    "RemainingAmount",
    "RemainingAmountInvoiceCurrency",
    "PaymentReferenceNumber",
]
ROW_KEYS = [
    "IsTextRow",
    "Quantity",
    "UnitPrice",
    "DiscountPercentage",
    "VatRate",
    "PercentVat",
    "IsVatFree",
    "AmountNoVat",
    "Text",
    "UnitAbbreviation",
]


@settings(max_examples=300, deadline=None)
@given(
    overrides=st.dictionaries(st.sampled_from(TOP_KEYS), json_scalars),
    removed=st.sets(st.sampled_from(TOP_KEYS)),
    row_changes=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(ROW_KEYS), json_scalars), max_size=6
    ),
    customer_changes=st.dictionaries(
        st.sampled_from(
            [
                "IsPrivatePerson",
                "ReverseChargeOnConstructionServices",
                "ElectronicAddress",
                "EdiGlnNumber",
                "InvoiceCountryCode",
                "TermsOfPayment",
                "Name",
            ]
        ),
        json_scalars,
    ),
    kind=st.sampled_from(DocumentKind),
)
def test_any_mutation_yields_an_invoice_or_a_clear_rejection(
    overrides: dict[str, Any],
    removed: set[str],
    row_changes: list[tuple[int, str, Any]],
    customer_changes: dict[str, Any],
    kind: DocumentKind,
) -> None:
    doc = copy.deepcopy(visma_invoice())
    for key in removed:
        doc.pop(key, None)
    for index, key, value in row_changes:
        rows = doc.get("Rows")
        if isinstance(rows, list) and index < len(rows) and isinstance(rows[index], dict):
            rows[index][key] = value
    doc.update(overrides)
    result = map_document(fetched(doc, kind=kind, customer={**CUSTOMER, **customer_changes}))
    if isinstance(result, list):
        assert result
        assert all(isinstance(i, ValidationIssue) and i.field and i.message for i in result)
    else:
        assert isinstance(result, Invoice)


# ------------------------------------------------------ credited invoice and currency

ORIGINAL_ID = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"


def credit_invoice(**overrides: Any) -> dict[str, Any]:
    """A full credit of a 100 + 25 % invoice, as the sandbox's credit action serialises it."""
    fields: dict[str, Any] = {
        "InvoiceNumber": 134,
        "IsCreditInvoice": True,
        "InvoiceDate": "2025-03-05T00:00:00",
        "DueDate": "2025-03-05T00:00:00",
        "Rows": [row(0, -1, 100, 0.25, -100)],
        "VatSpecification": [
            {"AmountInvoiceCurrency": -100, "VatAmountInvoiceCurrency": -25, "VatPercent": 0.25}
        ],
        "TotalAmount": -125,
        "TotalVatAmount": -25,
        "TotalAmountInvoiceCurrency": -125,
        "TotalVatAmountInvoiceCurrency": -25,
        "RemainingAmount": -125,
        "RemainingAmountInvoiceCurrency": -125,
        "PaymentReferenceNumber": "1347",
        "ReferringInvoiceId": ORIGINAL_ID,
    }
    return visma_invoice(**{**fields, **overrides})


def with_credited(event: ErpDocumentFetched, credited: dict[str, Any]) -> ErpDocumentFetched:
    return event.model_copy(update={"related": {**event.related, "credited_invoice": credited}})


def original() -> dict[str, Any]:
    return visma_invoice(Id=ORIGINAL_ID, InvoiceNumber=133, InvoiceDate="2025-03-01T00:00:00")


def test_a_credit_invoice_names_the_invoice_referring_invoice_id_points_to() -> None:
    event = with_credited(fetched(credit_invoice(), DocumentKind.CREDIT_NOTE), original())
    result = map_document(event)
    assert isinstance(result, Invoice), result
    assert result.document_type is DocumentType.CREDIT_NOTE
    assert result.preceding_invoice is not None
    assert (result.preceding_invoice.number, result.preceding_invoice.issue_date) == (
        "133",
        dt.date(2025, 3, 1),
    )
    assert result.totals.payable == Decimal(125)


def test_a_credit_invoice_whose_original_was_not_fetched_names_referring_invoice_id() -> None:
    issues = map_document(fetched(credit_invoice(), DocumentKind.CREDIT_NOTE))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("Invoice.ReferringInvoiceId", "NF-CREDIT-REF")]
    assert ORIGINAL_ID in issues[0].message


def test_a_credited_invoice_that_is_another_invoice_is_refused() -> None:
    other = {**original(), "Id": "00000000-0000-4000-8000-0000000000ff"}
    event = with_credited(fetched(credit_invoice(), DocumentKind.CREDIT_NOTE), other)
    issues = map_document(event)
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("Invoice.ReferringInvoiceId", "NF-CREDIT-REF")]


def test_an_ordinary_invoice_ignores_a_credited_invoice() -> None:
    result = map_document(with_credited(fetched(visma_invoice()), original()))
    assert isinstance(result, Invoice), result
    assert result.preceding_invoice is None


def eur_invoice(**overrides: Any) -> dict[str, Any]:
    """100 EUR + 25 % at 11.4563 SEK: base amounts in SEK, as eAccounting books them."""
    fields: dict[str, Any] = {
        "CurrencyCode": "EUR",
        "CurrencyRate": 11.4563,
        "Rows": [row(0, 1, 100, 0.25, 100)],
        "VatSpecification": [
            {"AmountInvoiceCurrency": 100, "VatAmountInvoiceCurrency": 25, "VatPercent": 0.25}
        ],
        "TotalAmount": 1432.04,
        "TotalVatAmount": 286.41,
        "TotalAmountInvoiceCurrency": 125,
        "TotalVatAmountInvoiceCurrency": 25,
        "RemainingAmount": 1432.04,
        "RemainingAmountInvoiceCurrency": 125,
    }
    return visma_invoice(**{**fields, **overrides})


def test_a_eur_invoice_of_a_swedish_company_states_its_vat_in_sek() -> None:
    result = map_document(fetched(eur_invoice()))
    assert isinstance(result, Invoice), result
    assert (result.currency, result.totals.tax_total) == ("EUR", Decimal(25))
    assert result.vat_accounting_currency == "SEK"
    assert result.vat_total_accounting_currency == Decimal("286.41")
    assert result.exchange_rate == Decimal("11.4563")


def test_a_sek_invoice_has_no_accounting_currency() -> None:
    result = map_document(fetched(visma_invoice()))
    assert isinstance(result, Invoice), result
    assert result.vat_accounting_currency is None
    assert result.vat_total_accounting_currency is None


def test_a_eur_invoice_without_currency_rate_names_it() -> None:
    doc = eur_invoice()
    del doc["CurrencyRate"]
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("Invoice.CurrencyRate", "NF-REQUIRED")]


def test_a_eur_credit_invoice_has_a_positive_vat_total_in_sek() -> None:
    doc = credit_invoice(
        CurrencyCode="EUR",
        CurrencyRate=11.4563,
        TotalAmount=-1432.04,
        TotalVatAmount=-286.41,
        RemainingAmount=-1432.04,
    )
    credited = {**eur_invoice(), "Id": ORIGINAL_ID}
    result = map_document(with_credited(fetched(doc, DocumentKind.CREDIT_NOTE), credited))
    assert isinstance(result, Invoice), result
    assert result.vat_total_accounting_currency == Decimal("286.41")
    assert result.preceding_invoice is not None
