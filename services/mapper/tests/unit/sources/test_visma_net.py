"""Visma.net CustomerInvoice → canonical invoice, and rejections that name the source field."""

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.domain.validation import validate_invoice
from mapper.service import map_document
from mapper.sources.visma_net import map_visma_net
from mapper.testing import NORWEGIAN_SELLER, json_values
from mapper.testing import fetched as fetched_document
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice, VatCategory

ADDRESS = {
    "addressLine1": "Kundeveien 2",
    "addressLine2": None,
    "postalCode": "5003",
    "city": "Bergen",
    "country": {"id": "NO"},
}
CUSTOMER = {
    "internalId": 1,
    "number": "10001",
    "name": "Kunde AS",
    "status": "Active",
    "mainAddress": ADDRESS,
    "mainContact": {"name": "Kunde AS", "email": "post@kunde.no"},
    "invoiceAddress": ADDRESS,
    "invoiceContact": {"name": "Kunde AS", "email": "faktura@kunde.no"},
    "creditTerms": {"id": "14", "description": "14"},
    "currencyId": "NOK",
    "vatRegistrationId": "NO923609016MVA",
    "corporateId": "923609016",
    "gln": None,
    "timeStamp": "AAAAAAAAAAE=",
}


def line(number: int, qty: Any, price: Any, amount: Any, code: str, **extra: Any) -> dict[str, Any]:
    rate_names = {"3": "Output VAT, high rate", "31": "Output VAT, medium rate"}
    return {
        "lineNumber": number,
        "inventoryNumber": None,
        "description": f"Line {number}",
        "quantity": qty,
        "unitPrice": price,
        "unitPriceInCurrency": price,
        "amount": amount,
        "amountInCurrency": amount,
        "account": {"type": "Income", "number": "3000"},
        "vatCode": {"id": code, "description": rate_names.get(code, code)},
        "uom": "STK",
        "discountPercent": 0,
        "discountAmount": 0,
        "discountAmountInCurrency": 0,
        "note": None,
        **extra,
    }


def tax(record: int, code: str, rate: Any, base: Any, vat: Any) -> dict[str, Any]:
    return {
        "taxId": {"id": code, "description": code},
        "recordId": record,
        "vatRate": rate,
        "taxableAmount": base,
        "vatAmount": vat,
    }


def visma_invoice(**overrides: Any) -> dict[str, Any]:
    """A CustomerInvoiceDto as the sandbox serialises it: 25 % and 15 % lines, KID."""
    doc = {
        "referenceNumber": "100001",
        "documentType": "Invoice",
        "status": "Open",
        "hold": False,
        "customer": {"number": "10001", "name": "Kunde AS"},
        "documentDate": "2026-11-20T00:00:00",
        "origInvoiceDate": "2026-11-20T00:00:00",
        "documentDueDate": "2026-12-04T00:00:00",
        "creditTerms": {"id": "14", "description": "14"},
        "currencyId": "NOK",
        "exchangeRate": 1,
        "amount": 14649.99,
        "amountInCurrency": 14649.99,
        "balance": 14649.99,
        "balanceInCurrency": 14649.99,
        "detailTotal": 11799.99,
        "detailTotalInCurrency": 11799.99,
        "vatTaxableTotal": 11799.99,
        "vatExemptTotal": 0,
        "vatTotal": 2850,
        "vatTotalInCurrency": 2850,
        "roundingDiff": 0,
        "paymentReference": "1000017",
        "externalReference": None,
        "customerRefNumber": "PO-77",
        "invoiceText": "November",
        "invoiceLines": [
            line(1, 10, 1200, 10800, "3", discountPercent=10, discountAmount=1200,
                 discountAmountInCurrency=1200),
            line(2, 3, 333.33, 999.99, "31"),
        ],
        "taxDetails": [
            tax(1, "3", 25, 10800, 2700),
            tax(2, "31", 15, 999.99, 150),
        ],
        "timeStamp": "AAAAAAAAAAI=",
    }  # fmt: skip
    doc.update(overrides)
    return doc


def fetched(
    doc: dict[str, Any],
    kind: DocumentKind = DocumentKind.INVOICE,
    customer: dict[str, Any] | None = None,
) -> ErpDocumentFetched:
    number = str(doc.get("referenceNumber") or "x")
    return fetched_document(
        SourceSystem.VISMA_NET,
        doc,
        kind=kind,
        profile=NORWEGIAN_SELLER,
        related={"customer": CUSTOMER if customer is None else customer},
        document_id=number,
        document_number=number,
    )


def test_maps_a_norwegian_25_and_15_percent_invoice_exactly() -> None:
    result = map_document(fetched(visma_invoice()))
    assert isinstance(result, Invoice), result
    assert result.document_type is DocumentType.INVOICE
    assert result.number == "100001"
    assert result.issue_date == dt.date(2026, 11, 20)
    assert result.due_date == dt.date(2026, 12, 4)
    assert result.currency == "NOK"
    t = result.totals
    assert (t.line_extension, t.tax_exclusive) == (Decimal("11799.99"), Decimal("11799.99"))
    assert (t.tax_total, t.tax_inclusive) == (Decimal(2850), Decimal("14649.99"))
    assert (t.rounding, t.payable) == (Decimal(0), Decimal("14649.99"))
    assert result.outstanding_amount == Decimal("14649.99")
    assert [(b.category, b.rate, b.taxable_amount, b.tax_amount) for b in result.vat_breakdown] == [
        (VatCategory.STANDARD, Decimal(15), Decimal("999.99"), Decimal(150)),
        (VatCategory.STANDARD, Decimal(25), Decimal(10800), Decimal(2700)),
    ]
    first, second = result.lines
    assert (first.quantity, first.unit_price, first.allowance_amount, first.net_amount) == (
        Decimal(10),
        Decimal(1200),
        Decimal(1200),
        Decimal(10800),
    )
    assert (first.vat_rate, second.vat_rate) == (Decimal(25), Decimal(15))
    assert (first.unit_code, first.account_number) == ("H87", "3000")
    assert result.payment.payment_reference == "1000017"  # MOD10 KID, checked for NO sellers
    assert result.payment.terms == "14"
    assert result.order_reference == "PO-77"
    assert result.seller.address.country_code == "NO"
    assert result.seller.company_id == "974760673"
    buyer = result.buyer
    assert (buyer.name, buyer.customer_number, buyer.company_id) == (
        "Kunde AS",
        "10001",
        "923609016",
    )
    assert buyer.vat_id == "NO923609016MVA"
    assert buyer.email == "faktura@kunde.no"
    assert buyer.address.lines == ("Kundeveien 2",)
    assert (buyer.address.postal_code, buyer.address.city) == ("5003", "Bergen")
    assert buyer.electronic_address is not None
    assert (buyer.electronic_address.scheme, buyer.electronic_address.value) == (
        "0192",
        "923609016",
    )


def test_a_kid_with_a_wrong_check_digit_is_rejected_by_validation() -> None:
    issues = map_document(fetched(visma_invoice(paymentReference="1000018")))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("payment.payment_reference", "NF-KID")]


def eur_invoice(**overrides: Any) -> dict[str, Any]:
    """The invoice in EUR at 11.5 NOK: base fields in NOK, ``...InCurrency`` in EUR."""
    return visma_invoice(
        currencyId="EUR",
        exchangeRate=11.5,
        amount=168474.89,
        balance=168474.89,
        detailTotal=135699.89,
        vatTotal=32775,
        **overrides,
    )


def test_amounts_in_the_document_currency_win_over_base_amounts() -> None:
    result = map_document(fetched(eur_invoice()))
    assert isinstance(result, Invoice), result
    assert result.currency == "EUR"
    assert result.totals.payable == Decimal("14649.99")


def test_a_eur_invoice_states_its_vat_in_nok_as_the_base_vat_total() -> None:
    result = map_document(fetched(eur_invoice()))
    assert isinstance(result, Invoice), result
    assert result.vat_accounting_currency == "NOK"
    assert result.vat_total_accounting_currency == Decimal(32775)
    assert result.exchange_rate == Decimal("11.5")
    assert result.totals.tax_total == Decimal(2850)


def test_a_nok_invoice_has_no_accounting_currency() -> None:
    result = map_document(fetched(visma_invoice()))
    assert isinstance(result, Invoice), result
    assert (result.vat_accounting_currency, result.vat_total_accounting_currency) == (None, None)
    assert result.exchange_rate is None


def test_a_eur_invoice_without_base_vat_gets_it_at_the_exchange_rate() -> None:
    doc = eur_invoice()
    del doc["vatTotalInCurrency"]
    doc["vatTotal"] = 2850  # the only VAT total: read as the document currency's
    result = map_document(fetched(doc))
    assert isinstance(result, Invoice), result
    assert result.vat_total_accounting_currency == Decimal("32775.00")


def test_a_eur_invoice_without_exchange_rate_or_base_vat_names_the_rate() -> None:
    doc = eur_invoice()
    del doc["vatTotalInCurrency"], doc["exchangeRate"]
    doc["vatTotal"] = 2850
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("CustomerInvoice.exchangeRate", "NF-REQUIRED")]


def credit_note(**overrides: Any) -> dict[str, Any]:
    """A credit note of 1 000 + 25 % VAT, as the sandbox serialises one."""
    fields: dict[str, Any] = {
        "documentType": "CreditNote",
        "referenceNumber": "100002",
        "paymentReference": "1000025",
        "documentDate": "2026-11-25T00:00:00",
        "origInvoiceDate": "2026-11-25T00:00:00",
        "documentDueDate": "2026-11-25T00:00:00",
        "amount": 1250,
        "amountInCurrency": 1250,
        "balance": 0,
        "balanceInCurrency": 0,
        "detailTotal": 1000,
        "detailTotalInCurrency": 1000,
        "vatTotal": 250,
        "vatTotalInCurrency": 250,
        "invoiceLines": [line(1, 2, 500, 1000, "3")],
        "taxDetails": [tax(1, "3", 25, 1000, 250)],
    }
    return visma_invoice(**{**fields, **overrides})


def application(ref: str, doc_type: str = "Invoice", amount: Any = 1250) -> dict[str, Any]:
    """An ArAdjustDto of a credit note: the document it was applied to."""
    return {
        "docType": doc_type,
        "customerCd": "10001",
        "refNbr": ref,
        "amountPaid": amount,
        "cashDiscountTaken": 0,
        "released": True,
        "hold": False,
        "voided": False,
        "paymentRef": None,
        "status": "Closed",
        "applicationDate": "2026-11-25T00:00:00",
        "applicationPeriod": "112026",
        "invoiceText": None,
    }


def test_a_credit_note_names_the_invoice_of_its_application() -> None:
    doc = credit_note(applications=[application("100001")], origInvoiceDate="2026-11-20T00:00:00")
    result = map_document(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(result, Invoice), result
    assert result.document_type is DocumentType.CREDIT_NOTE
    assert result.preceding_invoice is not None
    assert result.preceding_invoice.number == "100001"
    assert result.preceding_invoice.issue_date == dt.date(2026, 11, 20)


def test_the_default_original_date_is_not_taken_for_the_originals() -> None:
    doc = credit_note(applications=[application("100001")])  # origInvoiceDate = documentDate
    result = map_document(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(result, Invoice), result
    assert result.preceding_invoice is not None
    assert (result.preceding_invoice.number, result.preceding_invoice.issue_date) == (
        "100001",
        None,
    )


def test_the_credited_invoice_as_fetched_gives_the_original_date() -> None:
    event = fetched(credit_note(applications=[application("100001")]), DocumentKind.CREDIT_NOTE)
    event = event.model_copy(
        update={"related": {**event.related, "credited_invoice": visma_invoice()}}
    )
    result = map_document(event)
    assert isinstance(result, Invoice), result
    assert result.preceding_invoice is not None
    assert result.preceding_invoice.issue_date == dt.date(2026, 11, 20)


def test_payments_among_the_applications_are_not_the_credited_invoice() -> None:
    doc = credit_note(applications=[application("P1", "Payment"), application("100001")])
    result = map_document(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(result, Invoice), result
    assert result.preceding_invoice is not None
    assert result.preceding_invoice.number == "100001"


def test_an_original_dated_after_the_credit_note_is_rejected() -> None:
    doc = credit_note(applications=[application("100001")], origInvoiceDate="2026-12-01")
    issues = map_document(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [
        ("CustomerInvoice.applications[0]", "NF-CREDIT-REF")
    ]


def test_a_credit_note_applied_to_nothing_is_rejected_with_nf_credit_ref() -> None:
    issues = map_document(fetched(credit_note(applications=[]), DocumentKind.CREDIT_NOTE))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("preceding_invoice", "NF-CREDIT-REF")]


def test_a_eur_credit_note_has_a_positive_vat_total_in_nok() -> None:
    doc = credit_note(
        applications=[application("100001")],
        currencyId="EUR",
        exchangeRate=11.5,
        amount=-14375,
        amountInCurrency=-1250,
        detailTotal=-11500,
        detailTotalInCurrency=-1000,
        vatTotal=-2875,
        vatTotalInCurrency=-250,
        balanceInCurrency=0,
        invoiceLines=[line(1, -2, 500, -1000, "3")],
        taxDetails=[tax(1, "3", 25, -1000, -250)],
    )
    result = map_document(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(result, Invoice), result
    assert result.totals.tax_total == Decimal(250)
    assert result.vat_total_accounting_currency == Decimal(2875)


@pytest.mark.parametrize("factor", [1, -1], ids=["positive", "negative"])
def test_credit_note_becomes_positive(factor: int) -> None:
    def signed(value: Any) -> Any:
        return value * factor

    doc = visma_invoice(
        documentType="CreditNote",
        referenceNumber="100002",
        paymentReference="1000025",
        amount=signed(1250),
        amountInCurrency=signed(1250),
        balance=signed(1250),
        balanceInCurrency=signed(1250),
        detailTotal=signed(1000),
        detailTotalInCurrency=signed(1000),
        vatTotal=signed(250),
        vatTotalInCurrency=signed(250),
        invoiceLines=[line(1, signed(2), 500, signed(1000), "3")],
        taxDetails=[tax(1, "3", 25, signed(1000), signed(250))],
    )
    result = map_visma_net(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(result, Invoice), result
    assert result.document_type is DocumentType.CREDIT_NOTE
    # The source names no credited invoice, so validation asks for it (and nothing else).
    assert [(i.field, i.rule) for i in validate_invoice(result)] == [
        ("preceding_invoice", "NF-CREDIT-REF")
    ]
    assert result.totals.payable == Decimal(1250)
    assert result.totals.tax_total == Decimal(250)
    assert result.outstanding_amount == Decimal(1250)
    assert result.lines[0].quantity == Decimal(2)
    assert result.lines[0].net_amount == Decimal(1000)
    assert result.vat_breakdown[0].taxable_amount == Decimal(1000)
    assert result.vat_breakdown[0].tax_amount == Decimal(250)


def test_zero_rate_codes_get_their_category_and_reason() -> None:
    doc = visma_invoice(
        amount=1000,
        amountInCurrency=1000,
        balance=1000,
        balanceInCurrency=1000,
        detailTotal=1000,
        detailTotalInCurrency=1000,
        vatTotal=0,
        vatTotalInCurrency=0,
        invoiceLines=[line(1, 1, 600, 600, "6"), line(2, 1, 400, 400, "52")],
        taxDetails=[tax(1, "6", 0, 600, 0), tax(2, "52", 0, 400, 0)],
    )
    result = map_document(fetched(doc))
    assert isinstance(result, Invoice), result
    assert {(b.category, b.taxable_amount) for b in result.vat_breakdown} == {
        (VatCategory.EXEMPT, Decimal(600)),
        (VatCategory.EXPORT, Decimal(400)),
    }
    assert all(b.exemption_reason for b in result.vat_breakdown)


def test_rejection_lists_every_problem_with_its_source_field() -> None:
    doc = visma_invoice(referenceNumber="", documentDate="2026-13-01T00:00:00", vatTotal="x")
    doc.pop("vatTotalInCurrency")
    doc["customer"] = {"number": "10001"}
    doc["invoiceLines"][1]["unitPrice"] = "abc"
    doc["invoiceLines"][0]["vatCode"] = {"id": "99"}
    issues = map_document(fetched(doc, customer={**CUSTOMER, "name": None}))
    assert isinstance(issues, list)
    fields = {(i.field, i.rule) for i in issues}
    assert {
        ("CustomerInvoice.referenceNumber", "NF-REQUIRED"),
        ("CustomerInvoice.documentDate", "NF-DATE"),
        ("CustomerInvoice.vatTotal", "NF-NUMBER"),
        ("CustomerInvoice.customer.name", "NF-REQUIRED"),
        ("CustomerInvoice.invoiceLines[1].unitPrice", "NF-NUMBER"),
        ("CustomerInvoice.invoiceLines[0].vatCode.id", "NF-VAT-CODE"),
    } <= fields
    assert all(i.message for i in issues)


def test_missing_lines_tax_details_and_unknown_document_type_are_named() -> None:
    doc = visma_invoice(documentType="Prepayment", invoiceLines=[], taxDetails=None)
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    assert {"CustomerInvoice.documentType", "CustomerInvoice.invoiceLines",
            "CustomerInvoice.taxDetails"} <= {i.field for i in issues}  # fmt: skip


def test_tax_details_that_disagree_with_the_lines_are_named() -> None:
    doc = visma_invoice()
    doc["taxDetails"][1]["taxableAmount"] = 900
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    assert ("CustomerInvoice.taxDetails[1].taxableAmount", "NF-VAT-BASE") in {
        (i.field, i.rule) for i in issues
    }


def test_the_sandbox_serialisation_maps() -> None:
    from nordflow_sandboxes.visma_net import domain, serialize

    now = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    lines = [
        domain.InvoiceLine(1, "A1", "Konsulent", Decimal(10), Decimal(1200), Decimal(10), "3",
                           "3000", "HOUR", None),
        domain.InvoiceLine(2, None, "Mat", Decimal(3), Decimal("333.33"), Decimal(0), "31",
                           "3000", None, None),
    ]  # fmt: skip
    record = domain.Invoice(
        "100001", "10001", "Kunde AS", dt.date(2026, 11, 20), dt.date(2026, 12, 4), "NOK", "14",
        "Open", lines, "1000017", None, "PO-77", "November", None, now, now, 2,
        balance=Decimal("14649.99"),
    )  # fmt: skip
    company = domain.Company("c1", "Demo AS", now)
    company.invoices[record.reference_number] = record
    doc = serialize.invoice(record, company, dt.UTC)
    result = map_document(fetched(doc))
    assert isinstance(result, Invoice), result
    assert result.totals.payable == Decimal("14649.99")
    assert result.lines[0].unit_code == "HUR"
    assert {(b.rate, b.tax_amount) for b in result.vat_breakdown} == {
        (Decimal(25), Decimal(2700)),
        (Decimal(15), Decimal(150)),
    }


junk = json_values(
    "1E+40", "-0", "2026-02-30", "2026-11-20T25:00:00", "NOK", "CreditNote", keys=("id",)
)
TOP_KEYS = [
    "referenceNumber", "documentType", "documentDate", "documentDueDate", "currencyId",
    "amount", "amountInCurrency", "vatTotal", "vatTotalInCurrency", "detailTotal", "balance",
    "balanceInCurrency", "roundingDiff", "paymentReference", "customer", "creditTerms",
    "invoiceLines", "taxDetails",
]  # fmt: skip
LINE_KEYS = [
    "quantity", "unitPrice", "unitPriceInCurrency", "amount", "amountInCurrency",
    "discountAmount", "vatCode", "description", "uom", "account", "lineNumber",
]  # fmt: skip
TAX_KEYS = ["taxId", "vatRate", "taxableAmount", "vatAmount"]


@settings(max_examples=250, deadline=None)
@given(
    top=st.dictionaries(st.sampled_from(TOP_KEYS), junk, max_size=4),
    line_changes=st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from(LINE_KEYS), junk), max_size=4
    ),
    tax_changes=st.lists(st.tuples(st.integers(0, 1), st.sampled_from(TAX_KEYS), junk), max_size=3),
    customer=st.dictionaries(
        st.sampled_from(["number", "name", "corporateId", "invoiceAddress", "gln"]), junk
    ),
    kind=st.sampled_from(DocumentKind),
)
def test_any_mutation_yields_an_invoice_or_named_issues(
    top: dict[str, Any],
    line_changes: list[tuple[int, str, Any]],
    tax_changes: list[tuple[int, str, Any]],
    customer: dict[str, Any],
    kind: DocumentKind,
) -> None:
    doc = copy.deepcopy(visma_invoice())
    for index, key, value in line_changes:
        doc["invoiceLines"][index][key] = value
    for index, key, value in tax_changes:
        doc["taxDetails"][index][key] = value
    doc.update(top)
    result = map_document(fetched(doc, kind=kind, customer={**CUSTOMER, **customer}))
    if isinstance(result, list):
        assert result
        assert all(isinstance(i, ValidationIssue) and i.field and i.message for i in result)
    else:
        assert isinstance(result, Invoice)
