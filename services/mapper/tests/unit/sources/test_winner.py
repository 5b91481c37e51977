"""Winner orders (payment-calendar parts of a kitchen quote) → canonical invoices."""

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.domain.validation import validate_invoice
from mapper.sources.winner import map_winner
from mapper.testing import fetched, json_values, seller_profile
from nordflow_schemas.common import SourceSystem, canonical_invoice_id
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice, PartyType, ProjectReference
from nordflow_schemas.tenant import TenantProfile

KOKSBOLAGET = seller_profile(
    name="Köksbolaget AB",
    company_id="556036-0793",
    vat_id="SE556036079301",
    bankgiro="5050-1055",
)


def order(**overrides: Any) -> dict[str, Any]:
    """As erp-poller's ingest splits a quote: part 1 of 2 (20 %), two product groups."""
    doc: dict[str, Any] = {
        "order_id": "Q1001-1",
        "quote_number": "Q1001",
        "part": 1,
        "parts": 2,
        "part_label": "Förskott",
        "percent": "20",
        "order_date": "2025-03-10",
        "due_date": "2025-03-20",
        "currency": "SEK",
        "prices_include_vat": False,
        "customer": {
            "customer_number": "K17",
            "name": "Anna Andersson",
            "type": "private",
            "email": "anna@example.se",
            "address": {"lines": ["Storgatan 1"], "postal_code": "11122", "city": "Stockholm"},
        },
        "project": {"number": "P-2025-17", "name": "Kök Andersson"},
        "lines": [
            {
                "line_id": "1",
                "article_number": "SKAP",
                "product_group": "Skåp",
                "description": "Skåp och stommar",
                "quantity": "1",
                "unit_price": "8000.00",
                "amount": "8000.00",
                "vat_rate": "25",
            },
            {
                "line_id": "2",
                "article_number": "BANK",
                "product_group": "Bänkskivor",
                "description": "Bänkskiva ek",
                "quantity": "1",
                "unit_price": "1600.00",
                "amount": "1600.00",
                "vat_rate": "25",
            },
        ],
        "reference": "Anna",
        "note": None,
        "credited_order_id": None,
    }
    doc.update(overrides)
    return doc


def event(
    payload: dict[str, Any], profile: TenantProfile | None = KOKSBOLAGET
) -> ErpDocumentFetched:
    number = str(payload.get("order_id") or "x")
    return fetched(
        SourceSystem.WINNER,
        payload,
        kind=DocumentKind.ORDER,
        profile=profile,
        tenant_id="kok",
        invoice_id=canonical_invoice_id("kok", "winner", "w1", str(payload.get("order_id"))),
        connection_id="w1",
        document_id=number,
        document_number=number,
    )


def test_an_order_part_becomes_an_invoice_with_project_and_quote() -> None:
    invoice = map_winner(event(order()))
    assert isinstance(invoice, Invoice), invoice
    assert validate_invoice(invoice) == []
    assert invoice.document_type is DocumentType.INVOICE
    assert invoice.number == "Q1001-1"
    assert invoice.due_date == dt.date(2025, 3, 20)
    assert invoice.order_reference == "Q1001"
    assert invoice.buyer.party_type is PartyType.PRIVATE
    assert invoice.buyer.customer_number == "K17"
    assert invoice.note is not None
    assert "P-2025-17 Kök Andersson" in invoice.note
    assert invoice.project == ProjectReference(number="P-2025-17", name="Kök Andersson")
    assert [line.article_number for line in invoice.lines] == ["SKAP", "BANK"]
    assert invoice.totals.tax_exclusive == Decimal("9600.00")
    assert invoice.totals.tax_total == Decimal("2400.00")
    assert invoice.totals.payable == Decimal("12000.00")
    assert invoice.payment.account_id == "5050-1055"


def test_prices_including_vat_are_split_into_net_and_vat() -> None:
    doc = order(prices_include_vat=True)
    doc["lines"] = [{**doc["lines"][0], "amount": "10000.00", "unit_price": "10000.00"}]
    invoice = map_winner(event(doc))
    assert isinstance(invoice, Invoice), invoice
    assert validate_invoice(invoice) == []
    assert invoice.totals.tax_exclusive == Decimal("8000.00")
    assert invoice.totals.payable == Decimal("10000.00")


def test_vat_inclusive_lines_add_up_to_the_quoted_total_to_the_ore() -> None:
    doc = order(prices_include_vat=True)
    line = {**doc["lines"][0], "amount": "99.99", "unit_price": "99.99"}
    doc["lines"] = [{**line, "line_id": str(i)} for i in (1, 2, 3)]
    invoice = map_winner(event(doc))
    assert isinstance(invoice, Invoice), invoice
    assert validate_invoice(invoice) == []
    assert invoice.totals.payable == Decimal("299.97")  # what the quote said
    assert invoice.totals.rounding == Decimal("0.01")  # the öre per-rate VAT leaves


def test_a_credit_order_links_the_order_it_credits() -> None:
    invoice = map_winner(event(order(order_id="Q1001-3", credited_order_id="Q1001-1")))
    assert isinstance(invoice, Invoice), invoice
    assert invoice.document_type is DocumentType.CREDIT_NOTE
    assert invoice.preceding_invoice is not None
    assert invoice.preceding_invoice.number == "Q1001-1"
    assert invoice.preceding_invoice.invoice_id == canonical_invoice_id(
        "kok", "winner", "w1", "Q1001-1"
    )
    assert invoice.totals.payable > 0


def test_every_problem_is_named() -> None:
    doc = order(order_date="10/3/2025", currency="kronor")
    doc["customer"] = {"customer_number": "K17"}
    doc["lines"][1]["amount"] = "many"
    doc["lines"][0]["vat_rate"] = "140"
    issues = map_winner(event(doc, profile=None))
    assert isinstance(issues, list)
    fields = {i.field for i in issues}
    assert fields >= {
        "tenant",
        "Order.order_date",
        "Order.currency",
        "Order.customer.name",
        "Order.lines[1].amount",
        "Order.lines[0].vat_rate",
    }


values = json_values(
    "2025-03-10", "1e999", "-5", "NaN", "25", "company", keys=("name", "lines", "city")
)


@settings(max_examples=300, deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "order_id",
                "order_date",
                "due_date",
                "currency",
                "customer",
                "project",
                "lines",
                "prices_include_vat",
                "credited_order_id",
                "parts",
                "note",
            ]
        ),
        values,
    ),
    line=st.dictionaries(
        st.sampled_from(["amount", "vat_rate", "quantity", "description"]), values
    ),
)
def test_any_order_maps_or_is_rejected_never_raises(
    overrides: dict[str, Any], line: dict[str, Any]
) -> None:
    doc = copy.deepcopy(order())
    doc["lines"][0].update(line)
    doc.update(overrides)
    result = map_winner(event(doc))
    if isinstance(result, Invoice):
        validate_invoice(result)
    else:
        assert result
        assert all(isinstance(i, ValidationIssue) for i in result)
