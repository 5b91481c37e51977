"""Sirvoy (hotel bookings) → canonical invoice: VAT-inclusive rows, credits, cash receipts."""

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.domain.validation import validate_invoice
from mapper.sources.sirvoy import map_sirvoy
from mapper.testing import fetched as fetched_document
from mapper.testing import json_values, seller_profile
from nordflow_schemas.common import SourceSystem, canonical_invoice_id
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice, PartyType, VatCategory

HOTEL = seller_profile(
    name="Hotell Demo AB",
    company_id="556036-0793",
    vat_id="SE556036079301",
    street="Strandvägen 1",
    postal_code="11122",
    city="Stockholm",
    bankgiro="5050-1055",
)
BOOKING = {"bookingId": 77, "guestReference": "Konferens Q4", "guest": {"email": "g@example.se"}}


def sirvoy_invoice(**overrides: Any) -> dict[str, Any]:
    """As the sandbox serialises it: 3 nights, 2 breakfasts (12 %), a minibar (25 %)."""
    doc: dict[str, Any] = {
        "invoiceId": 501,
        "invoiceNumber": 1001,
        "bookingId": 77,
        "type": "invoice",
        "isCreditInvoice": False,
        "creditedInvoiceId": None,
        "creditedInvoiceNumber": None,
        "invoiceDate": "2026-11-20",
        "dueDate": "2026-12-20",
        "currency": "SEK",
        "recipient": {
            "name": "Anna Gäst",
            "businessName": None,
            "organisationNumber": None,
            "address": "Gästgatan 3",
            "postcode": "41101",
            "city": "Göteborg",
            "country": "SE",
            "email": "anna@example.se",
        },
        "rows": [
            {
                "description": "Dubbelrum, 3 nätter",
                "quantity": 3,
                "unitPrice": 1195,
                "vatRate": 12,
                "accountCode": "3011",
                "amount": 3585,
                "vatAmount": 384.11,
            },
            {
                "description": "Frukost",
                "quantity": 2,
                "unitPrice": 139,
                "vatRate": 12,
                "accountCode": "3012",
                "amount": 278,
                "vatAmount": 29.79,
            },
            {
                "description": "Minibar",
                "quantity": 1,
                "unitPrice": 76,
                "vatRate": 25,
                "accountCode": "3013",
                "amount": 76,
                "vatAmount": 15.2,
            },
        ],
        "totalAmount": 3939,
        "totalVat": 429.1,
        "paidAmount": 0,
        "balance": 3939,
        "payments": [],
        "modifiedAt": "2026-11-20T10:00:00.000000+00:00",
    }
    doc.update(overrides)
    return doc


def fetched(doc: dict[str, Any], kind: DocumentKind = DocumentKind.INVOICE) -> ErpDocumentFetched:
    return fetched_document(
        SourceSystem.SIRVOY,
        doc,
        kind=kind,
        profile=HOTEL,
        related={"booking": BOOKING},
        document_id="501",
        document_number="1001",
    )


def mapped(doc: dict[str, Any], **kwargs: Any) -> Invoice:
    result = map_sirvoy(fetched(doc, **kwargs))
    assert isinstance(result, Invoice), result
    assert validate_invoice(result) == []
    return result


def negated_credit(original: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(original)
    for row in doc["rows"]:
        row["quantity"] = -row["quantity"]
        row["amount"] = -row["amount"]
        row["vatAmount"] = -row["vatAmount"]
    doc.update(
        invoiceId=502,
        invoiceNumber=1002,
        isCreditInvoice=True,
        creditedInvoiceId=501,
        creditedInvoiceNumber=1001,
        invoiceDate="2026-11-22",
        dueDate="2026-11-22",
        totalAmount=-3939,
        totalVat=-429.1,
        balance=-3939,
    )
    return doc


def test_vat_inclusive_rows_become_net_with_oere_rounding_and_consistent_totals() -> None:
    invoice = mapped(sirvoy_invoice())
    assert invoice.document_type is DocumentType.INVOICE
    assert invoice.number == "1001"
    assert invoice.issue_date == dt.date(2026, 11, 20)
    assert invoice.due_date == dt.date(2026, 12, 20)
    # 3585 / 1.12 = 3200.892… → 3200.89; 278 / 1.12 = 248.214… → 248.21; 76 / 1.25 = 60.80
    assert [line.net_amount for line in invoice.lines] == [
        Decimal("3200.89"),
        Decimal("248.21"),
        Decimal("60.80"),
    ]
    assert [line.vat_rate for line in invoice.lines] == [Decimal(12), Decimal(12), Decimal(25)]
    assert invoice.lines[0].unit_price == Decimal("1066.9633")
    assert invoice.lines[0].account_number == "3011"
    breakdown = {
        (b.category, b.rate, b.taxable_amount, b.tax_amount) for b in invoice.vat_breakdown
    }
    assert breakdown == {
        (VatCategory.STANDARD, Decimal(12), Decimal("3449.10"), Decimal("413.89")),
        (VatCategory.STANDARD, Decimal(25), Decimal("60.80"), Decimal("15.20")),
    }
    t = invoice.totals
    assert (t.line_extension, t.tax_exclusive) == (Decimal("3509.90"), Decimal("3509.90"))
    assert (t.tax_total, t.tax_inclusive) == (Decimal("429.09"), Decimal("3938.99"))
    assert (t.rounding, t.payable) == (Decimal("0.01"), Decimal("3939"))
    assert invoice.outstanding_amount == Decimal("3939")
    assert invoice.buyer.party_type is PartyType.PRIVATE
    assert invoice.buyer.name == "Anna Gäst"
    assert invoice.buyer.address.country_code == "SE"
    assert invoice.order_reference == "77"
    assert invoice.buyer_reference == "Konferens Q4"
    assert invoice.payment.account_scheme == "SE:BANKGIRO"


def test_recipient_with_organisation_number_is_a_company_and_ocr_is_kept() -> None:
    doc = sirvoy_invoice(
        recipient={
            "name": "Bo Bokare",
            "businessName": "Kund AB",
            "organisationNumber": "556036-0793",
            "country": "Sverige",
        },
        paymentReference="10017",
    )
    invoice = mapped(doc)
    assert invoice.buyer.party_type is PartyType.COMPANY
    assert invoice.buyer.name == "Kund AB"
    assert invoice.buyer.company_id == "556036-0793"
    assert invoice.payment.payment_reference == "10017"


def test_credit_invoice_is_a_positive_credit_note_linked_to_its_original() -> None:
    invoice = mapped(negated_credit(sirvoy_invoice()))
    assert invoice.document_type is DocumentType.CREDIT_NOTE
    assert invoice.number == "1002"
    assert invoice.totals.payable == Decimal("3939")
    assert invoice.totals.tax_total == Decimal("429.09")
    assert invoice.lines[0].quantity == Decimal(3)
    assert invoice.lines[0].net_amount == Decimal("3200.89")
    assert invoice.outstanding_amount == Decimal("3939")
    assert invoice.preceding_invoice is not None
    assert invoice.preceding_invoice.number == "1001"
    assert invoice.preceding_invoice.invoice_id == canonical_invoice_id(
        "acme", "sirvoy", "c1", "501"
    )


def test_credit_invoice_without_its_original_is_rejected() -> None:
    doc = negated_credit(sirvoy_invoice())
    doc["creditedInvoiceNumber"] = None
    issues = map_sirvoy(fetched(doc))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [
        ("Invoice.creditedInvoiceNumber", "NF-CREDIT-REF")
    ]


def test_stripe_paid_cash_receipt_is_a_settled_invoice_nothing_payable() -> None:
    doc = sirvoy_invoice(
        type="cashReceipt",
        dueDate=None,
        paidAmount=3939,
        balance=0,
        payments=[
            {
                "paymentId": 9,
                "amount": 3939,
                "method": "card",
                "provider": "stripe",
                "providerReference": "pi_123",
            }
        ],
    )
    invoice = mapped(doc)
    assert invoice.settled_by == "stripe"
    assert invoice.totals.prepaid == invoice.totals.tax_inclusive + invoice.totals.rounding
    assert invoice.totals.payable == 0
    assert invoice.outstanding_amount == 0


def test_cash_receipt_paid_in_cash_is_mapped_as_paid() -> None:
    doc = sirvoy_invoice(
        type="cashReceipt",
        dueDate=None,
        paidAmount=3939,
        balance=0,
        payments=[{"paymentId": 10, "amount": 3939, "method": "cash", "provider": None}],
    )
    invoice = mapped(doc)
    assert invoice.document_type is DocumentType.INVOICE
    assert invoice.due_date is None
    assert invoice.outstanding_amount == Decimal(0)
    assert invoice.payment_method == "cash"
    assert invoice.totals.payable == Decimal("3939")


def test_a_voided_stripe_payment_does_not_skip_the_cash_receipt() -> None:
    doc = sirvoy_invoice(
        type="cashReceipt",
        dueDate=None,
        payments=[{"paymentId": 11, "amount": 0, "method": "card", "provider": "stripe"}],
    )
    assert isinstance(map_sirvoy(fetched(doc)), Invoice)


def test_rejection_lists_every_problem_with_its_source_field() -> None:
    doc = sirvoy_invoice(invoiceNumber="", invoiceDate="20/11/2026", currency="kronor")
    doc["recipient"] = {"name": None}
    doc["rows"][0]["unitPrice"] = "abc"
    doc["rows"][1]["vatRate"] = None
    doc["rows"][2]["vatRate"] = -100
    issues = map_sirvoy(fetched(doc))
    assert isinstance(issues, list)
    fields = {(i.field, i.rule) for i in issues}
    assert {
        ("Invoice.invoiceNumber", "NF-REQUIRED"),
        ("Invoice.invoiceDate", "NF-DATE"),
        ("Invoice.currency", "NF-CURRENCY"),
        ("Invoice.rows[0].unitPrice", "NF-NUMBER"),
        ("Invoice.rows[1].vatRate", "NF-REQUIRED"),
        ("Invoice.rows[2].vatRate", "NF-VAT-RATE"),
        ("Invoice.recipient.name", "NF-REQUIRED"),
    } <= fields
    assert all(i.message for i in issues)


def test_malformed_structures_are_named_at_their_own_index() -> None:
    doc = sirvoy_invoice(rows=["Dubbelrum", {"description": "Frukost", "quantity": 2}])
    issues = map_sirvoy(fetched(doc))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [
        ("Invoice.rows[0]", "NF-TYPE"),
        ("Invoice.rows[1].unitPrice", "NF-REQUIRED"),
        ("Invoice.rows[1].vatRate", "NF-REQUIRED"),
    ]


def test_totals_that_do_not_match_the_rows_are_named() -> None:
    issues = map_sirvoy(fetched(sirvoy_invoice(totalAmount=4000, totalVat=500)))
    assert isinstance(issues, list)
    assert {(i.field, i.rule) for i in issues} == {
        ("Invoice.totalAmount", "NF-TOTAL"),
        ("Invoice.totalVat", "NF-VAT-TOTAL"),
    }


def test_a_non_swedish_rate_is_left_to_validation() -> None:
    doc = sirvoy_invoice()
    doc["rows"][2].update(vatRate=20, vatAmount=12.67)
    doc["totalVat"] = 426.57
    result = map_sirvoy(fetched(doc))
    assert isinstance(result, Invoice), result
    assert [(i.field, i.rule) for i in validate_invoice(result)] == [
        ("lines[2].vat_rate", "SE-R-006")
    ]


values = json_values(
    "invoice", "cashReceipt", "stripe", "2026-11-20", "1e999", "-100", "NaN",
    keys=("name", "provider", "amount"),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "invoiceId",
                "invoiceNumber",
                "type",
                "isCreditInvoice",
                "creditedInvoiceNumber",
                "invoiceDate",
                "dueDate",
                "currency",
                "recipient",
                "rows",
                "totalAmount",
                "totalVat",
                "balance",
                "payments",
                "paymentReference",
            ]
        ),
        values,
    ),
    rows=st.none()
    | st.lists(
        st.dictionaries(
            st.sampled_from(["quantity", "unitPrice", "vatRate", "amount", "description"]),
            values,
        ),
        max_size=4,
    ),
    payments=st.lists(
        st.dictionaries(st.sampled_from(["amount", "method", "provider"]), values),
        max_size=2,
    ),
    kind=st.sampled_from(DocumentKind),
)
def test_any_payload_yields_an_invoice_or_named_issues(
    overrides: dict[str, Any],
    rows: list[dict[str, Any]] | None,
    payments: list[dict[str, Any]],
    kind: DocumentKind,
) -> None:
    doc = sirvoy_invoice(payments=payments)
    if rows is not None:
        for original, change in zip(doc["rows"], rows, strict=False):
            original.update(change)
    doc.update(overrides)
    result = map_sirvoy(fetched(doc, kind=kind))
    if isinstance(result, list):
        assert result
        assert all(isinstance(i, ValidationIssue) and i.field and i.message for i in result)
    else:
        assert isinstance(result, Invoice)
        assert all(isinstance(i, ValidationIssue) for i in validate_invoice(result))
