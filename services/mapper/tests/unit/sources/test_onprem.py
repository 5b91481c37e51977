"""On-premise documents → canonical invoices: JSON batch invoices and SIE 4i vouchers."""

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.domain.validation import validate_invoice
from mapper.sources.onprem import map_on_premise
from mapper.testing import fetched, json_values, seller_profile
from nordflow_schemas.common import SourceSystem, canonical_invoice_id
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice, PartyType, VatCategory

KOKSBOLAGET = seller_profile(
    name="Köksbolaget AB",
    company_id="556036-0793",
    vat_id="SE556036079301",
    bankgiro="5050-1055",
)


def json_invoice(**overrides: Any) -> dict[str, Any]:
    """A JSON batch invoice as INGESTION.md documents it."""
    doc: dict[str, Any] = {
        "issue_date": "2025-03-10",
        "due_date": "2025-04-09",
        "currency": "SEK",
        "buyer": {
            "name": "Kund AB",
            "company_id": "556677-8899",
            "customer_number": "17",
            "electronic_address": {"scheme": "0007", "value": "5566778899"},
            "address": {"lines": ["Hamngatan 2"], "postal_code": "21122", "city": "Malmö"},
        },
        "lines": [
            {"description": "Konsult", "quantity": "2", "unit_price": 500, "vat_rate": 25},
            {"description": "Bok", "quantity": 1, "unit_price": "100.00", "vat_rate": "6"},
        ],
        "totals": {"net": "1100.00", "vat": "256.00", "payable": "1356.00"},
        "payment": {"reference": "1234567897", "terms": "30 dagar", "method": "FACT"},
        "order_reference": "PO-9",
    }
    doc.update(overrides)
    return doc


def voucher(**overrides: Any) -> dict[str, Any]:
    """A SIE voucher as erp-poller's reader serialises it: 25 % and 12 % rows, rounding."""
    doc: dict[str, Any] = {
        "series": "F",
        "number": "1001",
        "date": "2025-03-10",
        "text": "Faktura 1001",
        "registered_on": None,
        "signature": None,
        "currency": "SEK",
        "transactions": [
            trans(
                "1510",
                "1370.00",
                objects=[{"dimension": "8", "object": "K17", "name": "Åsa Öberg"}],
            ),
            trans("3001", "-1000.00", text="Montering"),
            trans("3002", "-100.00", name="Försäljning 12 %"),
            trans("2611", "-250.00"),
            trans("2621", "-12.00"),
            trans("3740", "-8.00"),
        ],
        "company": {"organisation_number": "556036-0793", "name": "Köksbolaget AB"},
    }
    doc.update(overrides)
    return doc


def trans(account: str, amount: str, *, text: str | None = None, name: str | None = None,
          objects: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "account": account,
        "account_name": name,
        "objects": objects or [],
        "amount": amount,
        "date": None,
        "text": text,
        "quantity": None,
    }


def event(
    payload: dict[str, Any],
    kind: DocumentKind = DocumentKind.INVOICE,
    number: str = "1001",
    customer: dict[str, Any] | None = None,
) -> ErpDocumentFetched:
    related: dict[str, dict[str, Any]] = {"batch": {"batch_id": "b1", "format": "json"}}
    if customer is not None:
        related["customer"] = customer
    return fetched(
        SourceSystem.ON_PREMISE,
        payload,
        kind=kind,
        profile=KOKSBOLAGET,
        related=related,
        tenant_id="kok",
        invoice_id=canonical_invoice_id("kok", "on-premise", "op1", f"F-{number}"),
        connection_id="op1",
        document_id=f"F-{number}",
        document_number=number,
    )


# --------------------------------------------------------------------------------- JSON


def test_a_json_invoice_maps_close_to_one_to_one() -> None:
    invoice = map_on_premise(event(json_invoice()))
    assert isinstance(invoice, Invoice), invoice
    assert validate_invoice(invoice) == []
    assert invoice.number == "1001"
    assert invoice.buyer.electronic_address is not None
    assert invoice.buyer.electronic_address.scheme == "0007"
    assert [(b.rate, b.tax_amount) for b in invoice.vat_breakdown] == [
        (Decimal(6), Decimal("6.00")),
        (Decimal(25), Decimal("250.00")),
    ]
    assert invoice.totals.payable == Decimal("1356.00")
    assert invoice.payment.payment_reference == "1234567897"
    assert invoice.payment_method == "FACT"


def test_a_json_credit_note_links_its_original() -> None:
    doc = json_invoice(preceding_invoice={"number": "1000", "document_id": "INV-1000"})
    credit = map_on_premise(event(doc, DocumentKind.CREDIT_NOTE, "CN-1"))
    assert isinstance(credit, Invoice), credit
    assert credit.document_type is DocumentType.CREDIT_NOTE
    assert credit.preceding_invoice is not None
    assert credit.preceding_invoice.number == "1000"
    assert credit.preceding_invoice.invoice_id == canonical_invoice_id(
        "kok", "on-premise", "op1", "INV-1000"
    )
    missing = map_on_premise(event(json_invoice(), DocumentKind.CREDIT_NOTE))
    assert isinstance(missing, list)
    assert {i.field for i in missing} == {"Invoice.preceding_invoice.number"}


def test_json_totals_that_disagree_with_the_lines_are_named() -> None:
    doc = json_invoice(totals={"net": "1000", "vat": "1.00", "payable": "5"})
    doc["lines"][0]["vat_category"] = "AE"
    issues = map_on_premise(event(doc))
    assert isinstance(issues, list)
    assert {i.field for i in issues} == {
        "Invoice.totals.net",
        "Invoice.totals.vat",
        "Invoice.totals.payable",
        "Invoice.lines[0].vat_rate",
    }


def test_the_payment_account_is_the_documents_own_else_the_tenants() -> None:
    stated = {"reference": "1234567897", "account_id": "SE4550000000058398257466"}
    own = map_on_premise(event(json_invoice(payment={**stated, "account_scheme": "IBAN"})))
    assert isinstance(own, Invoice), own
    assert (own.payment.account_id, own.payment.account_scheme) == (
        "SE4550000000058398257466",
        "IBAN",
    )
    default = map_on_premise(event(json_invoice()))
    assert isinstance(default, Invoice), default
    assert (default.payment.account_id, default.payment.account_scheme) == (
        "5050-1055",
        "SE:BANKGIRO",
    )
    assert default.seller == KOKSBOLAGET.seller


# ---------------------------------------------------------------------------------- SIE


def test_a_sie_voucher_derives_lines_from_revenue_and_vat_from_vat_accounts() -> None:
    invoice = map_on_premise(event(voucher()))
    assert isinstance(invoice, Invoice), invoice
    # SIE 4 has no customer register: without an address the invoice cannot go on paper.
    assert {i.rule for i in validate_invoice(invoice)} == {"NF-POSTAL-ADDRESS"}
    assert invoice.buyer.name == "Åsa Öberg"
    assert invoice.buyer.customer_number == "K17"
    assert [(line.description, line.net_amount, line.vat_rate) for line in invoice.lines] == [
        ("Montering", Decimal("1000.00"), Decimal(25)),
        ("Försäljning 12 %", Decimal("100.00"), Decimal(12)),
    ]
    assert invoice.totals.tax_total == Decimal("262.00")
    assert invoice.totals.rounding == Decimal("8.00")
    assert invoice.totals.payable == Decimal("1370.00")
    assert invoice.issue_date == dt.date(2025, 3, 10)


def test_a_sie_credit_note_is_positive() -> None:
    doc = voucher(
        transactions=[
            trans("1510", "-125.00", objects=[{"dimension": "8", "object": "K17", "name": "Åsa"}]),
            trans("3001", "100.00"),
            trans("2611", "25.00"),
        ]
    )
    credit = map_on_premise(event(doc, DocumentKind.CREDIT_NOTE))
    assert isinstance(credit, Invoice), credit
    assert credit.document_type is DocumentType.CREDIT_NOTE
    assert credit.totals.payable == Decimal("125.00")
    assert credit.lines[0].net_amount == Decimal("100.00")


def test_norwegian_vat_rate_comes_from_the_ratio_and_no_vat_is_zero_rated() -> None:
    customer = [{"dimension": "8", "object": "K1", "name": "Kunde AS"}]
    norwegian = voucher(
        transactions=[
            trans("1500", "1150.00", objects=customer),
            trans("3000", "-1000.00"),
            trans("2700", "-150.00"),
        ],
        company={},
    )
    invoice = map_on_premise(event(norwegian))
    assert isinstance(invoice, Invoice), invoice
    assert invoice.lines[0].vat_rate == Decimal(15)
    exempt = voucher(transactions=[trans("1510", "100", objects=customer), trans("3004", "-100")])
    zero = map_on_premise(event(exempt))
    assert isinstance(zero, Invoice), zero
    assert zero.lines[0].vat_category is VatCategory.ZERO


def test_what_a_voucher_cannot_say_is_named() -> None:
    doc = voucher()
    doc["transactions"][2]["account"] = "3050"  # which of 25 / 12 %? the account does not say
    doc["transactions"][0]["objects"] = []
    doc["transactions"].append(trans("1930", "0"))
    doc["company"] = {"organisation_number": "559999-9999"}
    issues = map_on_premise(event(doc))
    assert isinstance(issues, list)
    by_rule = {i.rule: i.field for i in issues}
    assert by_rule["NF-SIE-VAT-RATE"] == "voucher.transactions[2].account"
    assert by_rule["NF-SIE-ACCOUNT"] == "voucher.transactions[6].account"
    assert by_rule["NF-SIE-CUSTOMER"] == "voucher.transactions.objects"
    assert by_rule["NF-SIE-COMPANY"] == "voucher.company.organisation_number"

    wrong_vat = voucher()
    wrong_vat["transactions"][3]["amount"] = "-200.00"
    wrong_vat["transactions"][0]["amount"] = "1320.00"
    assert {i.rule for i in map_on_premise(event(wrong_vat))} == {"NF-SIE-VAT"}  # type: ignore[union-attr]


# ------------------------------------------------------------- SIE with the customer register


def registered(**overrides: Any) -> dict[str, Any]:
    """A customer register entry as erp-poller puts it in related["customer"]."""
    card: dict[str, Any] = {
        "customer_number": "K17",
        "name": "Öberg Kök AB",
        "type": "company",
        "organisation_number": "556677-8899",
        "vat_number": "SE556677889901",
        "email": None,
        "gln": "7365567000003",
        "address": {
            "lines": ["Hamngatan 2"],
            "postal_code": "21122",
            "city": "Malmö",
            "country_code": "SE",
        },
    }
    card.update(overrides)
    return card


def test_a_registered_customer_makes_the_sie_invoice_valid_and_deliverable() -> None:
    invoice = map_on_premise(event(voucher(), customer=registered()))
    assert isinstance(invoice, Invoice), invoice
    assert validate_invoice(invoice) == []
    buyer = invoice.buyer
    assert (buyer.name, buyer.customer_number) == ("Öberg Kök AB", "K17")
    assert buyer.party_type is PartyType.COMPANY
    assert (buyer.company_id, buyer.vat_id) == ("556677-8899", "SE556677889901")
    assert buyer.electronic_address is not None
    assert (buyer.electronic_address.scheme, buyer.electronic_address.value) == (
        "0088",
        "7365567000003",
    )
    assert buyer.address.lines == ("Hamngatan 2",)
    assert (buyer.address.postal_code, buyer.address.city) == ("21122", "Malmö")
    # The amounts still come from the voucher alone.
    assert invoice.totals.payable == Decimal("1370.00")


def test_a_registered_private_customer_on_paper_or_by_e_mail_validates() -> None:
    paper = registered(
        name="Åsa Öberg", type="private", organisation_number=None, vat_number=None, gln=None
    )
    invoice = map_on_premise(event(voucher(), customer=paper))
    assert isinstance(invoice, Invoice), invoice
    assert validate_invoice(invoice) == []
    assert invoice.buyer.party_type is PartyType.PRIVATE
    assert invoice.buyer.electronic_address is None

    mail = {**paper, "email": "asa@example.se", "address": {"lines": []}}
    by_mail = map_on_premise(event(voucher(), customer=mail))
    assert isinstance(by_mail, Invoice), by_mail
    assert validate_invoice(by_mail) == []
    assert by_mail.buyer.email == "asa@example.se"
    assert by_mail.buyer.address.country_code == "SE"  # the seller's country when none is given

    # Without an e-mail, a GLN or a full address, the paper rule still names what is missing.
    unreachable = {**paper, "address": {"lines": ["Storgatan 1"], "city": "Malmö"}}
    incomplete = map_on_premise(event(voucher(), customer=unreachable))
    assert isinstance(incomplete, Invoice), incomplete
    assert [(i.field, i.rule) for i in validate_invoice(incomplete)] == [
        ("buyer.address.postal_code", "NF-POSTAL-ADDRESS")
    ]


def test_a_register_entry_that_does_not_fit_the_voucher_is_named() -> None:
    issues = map_on_premise(event(voucher(), customer=registered(customer_number="K18")))
    assert isinstance(issues, list)
    assert {(i.field, i.rule) for i in issues} == {
        ("related.customer.customer_number", "NF-SIE-CUSTOMER")
    }
    nameless = map_on_premise(event(voucher(), customer=registered(name=" ")))
    assert isinstance(nameless, list)
    assert {(i.field, i.rule) for i in nameless} == {("related.customer.name", "NF-REQUIRED")}
    bad_lines = map_on_premise(event(voucher(), customer=registered(address={"lines": "x"})))
    assert isinstance(bad_lines, list)
    assert {i.field for i in bad_lines} == {"related.customer.address.lines"}


def test_a_registered_name_wins_over_an_unnamed_object() -> None:
    doc = voucher()
    doc["transactions"][0]["objects"] = [{"dimension": "8", "object": "K17", "name": None}]
    unnamed = map_on_premise(event(doc))
    assert isinstance(unnamed, list)
    assert {i.rule for i in unnamed} == {"NF-SIE-CUSTOMER"}
    invoice = map_on_premise(event(doc, customer=registered()))
    assert isinstance(invoice, Invoice), invoice
    assert invoice.buyer.name == "Öberg Kök AB"


values = json_values(
    "2025-03-10", "1e999", "-5", "NaN", "25", "1510", "3001", "2611", "2700",
    keys=("name", "dimension", "object"),
)  # fmt: skip


def _check(result: Invoice | list[ValidationIssue]) -> None:
    if isinstance(result, Invoice):
        validate_invoice(result)
    else:
        assert result
        assert all(isinstance(i, ValidationIssue) for i in result)


@settings(max_examples=300, deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "issue_date",
                "currency",
                "buyer",
                "lines",
                "totals",
                "payment",
                "preceding_invoice",
                "due_date",
            ]
        ),
        values,
    ),
    line=st.dictionaries(
        st.sampled_from(["quantity", "unit_price", "vat_rate", "vat_category", "net_amount"]),
        values,
    ),
    credit=st.booleans(),
)
def test_any_json_invoice_maps_or_is_rejected_never_raises(
    overrides: dict[str, Any], line: dict[str, Any], credit: bool
) -> None:
    doc = copy.deepcopy(json_invoice())
    doc["lines"][0].update(line)
    doc.update(overrides)
    kind = DocumentKind.CREDIT_NOTE if credit else DocumentKind.INVOICE
    _check(map_on_premise(event(doc, kind)))


@settings(max_examples=300, deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(["date", "currency", "company", "transactions", "text"]), values
    ),
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(["account", "amount", "objects", "quantity", "text"]), values
        ),
        max_size=4,
    ),
    credit=st.booleans(),
)
def test_any_voucher_maps_or_is_rejected_never_raises(
    overrides: dict[str, Any], rows: list[dict[str, Any]], credit: bool
) -> None:
    doc = copy.deepcopy(voucher())
    for i, row in enumerate(rows):
        doc["transactions"][i].update(row)
    doc.update(overrides)
    kind = DocumentKind.CREDIT_NOTE if credit else DocumentKind.INVOICE
    _check(map_on_premise(event(doc, kind)))


@settings(max_examples=300, deadline=None)
@given(
    card=st.dictionaries(
        st.sampled_from(
            [
                "customer_number",
                "name",
                "type",
                "organisation_number",
                "vat_number",
                "email",
                "gln",
                "address",
            ]
        ),
        values,
    ),
    address=st.dictionaries(
        st.sampled_from(["lines", "postal_code", "city", "country_code"]), values
    ),
    credit=st.booleans(),
)
def test_any_register_entry_maps_or_is_rejected_never_raises(
    card: dict[str, Any], address: dict[str, Any], credit: bool
) -> None:
    customer = registered()
    customer["address"].update(address)
    customer.update(card)
    kind = DocumentKind.CREDIT_NOTE if credit else DocumentKind.INVOICE
    _check(map_on_premise(event(voucher(), kind, customer=customer)))
