"""PEPPOL BIS Billing 3.0 rendering, checked against the official CEN and PEPPOL rules."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from lxml import etree
from nordflow_documents.peppol import (
    CUSTOMIZATION_ID,
    PROFILE_ID,
    PeppolBisRenderer,
    amount_text,
    number_text,
    organisation_number,
    price_text,
    vat_identifier,
)
from nordflow_documents.registry import Attachment
from nordflow_documents.testing.invoices import (
    KID,
    OCR,
    german_buyer,
    line,
    make_invoice,
    norwegian_buyer,
    norwegian_seller,
    swedish_seller,
)
from nordflow_documents.validation import PeppolValidator, ValidationReport
from nordflow_schemas.invoice import (
    Address,
    AllowanceCharge,
    DocumentType,
    ElectronicAddress,
    Invoice,
    InvoiceReference,
    Party,
    PaymentInstructions,
    VatCategory,
)

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def parse(document: bytes) -> etree._Element:
    return etree.fromstring(document)


def texts(root: etree._Element, path: str) -> list[str]:
    return [str(value) for value in root.xpath(path, namespaces=NS)]


def text(root: etree._Element, path: str) -> str:
    (value,) = texts(root, path)
    return value


def assert_valid(report: ValidationReport) -> None:
    assert report.ok, report.summary()
    assert report.warnings == (), [(w.rule_id, w.message) for w in report.warnings]


# -- the documents each kind of invoice becomes ----------------------------------------------


def swedish_multi_rate() -> Invoice:
    """Domestic SE: 25 %, 12 % and 6 %, Bankgiro with OCR, öresavrundning."""
    return make_invoice(
        [
            line("1", "Konsulttimme", "7.5", "950.00", "25", article_number="KONS-1"),
            line("2", "Lunch", "3", "115.50", "12", allowance="10.00"),
            line("3", "Kurslitteratur", "2", "289.45", "6", unit_code="EA"),
        ],
        round_to_whole=True,
    )


def norwegian() -> Invoice:
    """NO seller (VAT id given without MVA) to a NO buyer, KID, order reference only."""
    return make_invoice(
        [line("1", "Rådgivning", "3", "1200", "25"), line("2", "Matservering", "1", "400", "15")],
        currency="NOK",
        seller=norwegian_seller(),
        buyer=norwegian_buyer(),
        payment=PaymentInstructions(
            payment_reference=KID, account_id="1503.20.80119", terms="14 dager netto"
        ),
        buyer_reference=None,
        order_reference="PO-7781",
    )


def reverse_charge() -> Invoice:
    """SE seller to a German company: reverse charge (AE) with the buyer's VAT id."""
    return make_invoice(
        [line("1", "Programvarulicens", "1", "10000", "0", category=VatCategory.REVERSE_CHARGE)],
        currency="EUR",
        buyer=german_buyer(),
        payment=PaymentInstructions(
            account_id="SE45 5000 0000 0583 9825 7466", account_scheme="IBAN", terms="30 days"
        ),
    )


def credit_note() -> Invoice:
    """A credit note crediting part of invoice 10042."""
    return make_invoice(
        [line("1", "Konsulttimme, kreditering", "2", "950.00", "25")],
        document_type=DocumentType.CREDIT_NOTE,
        number="K-1001",
        preceding_invoice=InvoiceReference(number="10042", issue_date=dt.date(2025, 2, 28)),
    )


def with_allowances_and_prepayment() -> Invoice:
    """Document-level allowance and charge, a prepaid amount, and a note."""
    return make_invoice(
        [line("1", "Konsulttimme", "10", "950.00", "25"), line("2", "Lunch", "4", "100", "12")],
        allowances_charges=[
            AllowanceCharge(
                is_charge=False,
                amount=Decimal("500"),
                reason="Kundrabatt",
                vat_category=VatCategory.STANDARD,
                vat_rate=Decimal(25),
            ),
            AllowanceCharge(
                is_charge=True,
                amount=Decimal("149"),
                vat_category=VatCategory.STANDARD,
                vat_rate=Decimal(25),
            ),
        ],
        prepaid="2000",
        note="Tack för din beställning!",
    )


def zero_rated_and_exempt() -> Invoice:
    """Zero rated (Z, no exemption reason allowed) beside exempt (E, reason required)."""
    return make_invoice(
        [
            line("1", "Tidning", "1", "100", "0", category=VatCategory.ZERO),
            line("2", "Försäkring", "1", "300", "0", category=VatCategory.EXEMPT),
            line("3", "Porto", "1", "40", "25"),
        ],
        exemption_reasons={
            VatCategory.EXEMPT: "Undantagen från skatteplikt, 3 kap. ML",
            VatCategory.ZERO: "dropped: BR-Z-10 forbids a reason",
        },
    )


def not_subject_to_vat() -> Invoice:
    """Only supplies outside the scope of VAT (O)."""
    return make_invoice(
        [line("1", "Förseningsavgift", "1", "60", "0", category=VatCategory.NOT_SUBJECT)]
    )


VALID_CASES = {
    "swedish multi-rate with Bankgiro and OCR": swedish_multi_rate,
    "norwegian with MVA and KID": norwegian,
    "reverse charge to an EU buyer": reverse_charge,
    "credit note referencing its invoice": credit_note,
    "document allowance, charge and prepayment": with_allowances_and_prepayment,
    "zero rated and exempt": zero_rated_and_exempt,
    "not subject to VAT": not_subject_to_vat,
}


@pytest.mark.parametrize("build", VALID_CASES.values(), ids=VALID_CASES.keys())
def test_renders_documents_the_official_rules_accept(
    build: Callable[[], Invoice], renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = build()

    report = validator.validate(renderer.render(invoice))

    assert_valid(report)


def test_an_invoice_with_an_attachment_is_valid_and_embeds_it(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    attachment = Attachment("tidrapport-mars.pdf", "application/pdf", PDF, "Tidrapport mars")

    document = renderer.render(swedish_multi_rate(), [attachment])

    assert_valid(validator.validate(document))
    root = parse(document)
    reference = "/inv:Invoice/cac:AdditionalDocumentReference"
    assert text(root, f"{reference}/cbc:ID/text()") == "tidrapport-mars.pdf"
    assert text(root, f"{reference}/cbc:DocumentDescription/text()") == "Tidrapport mars"
    binary = root.find(
        "cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject", NS
    )
    assert binary.get("mimeCode") == "application/pdf"
    assert binary.get("filename") == "tidrapport-mars.pdf"
    assert base64.b64decode(binary.text) == PDF


# -- what the documents say ------------------------------------------------------------------


def test_invoice_header_identifies_peppol_bis_billing_3(renderer: PeppolBisRenderer) -> None:
    invoice = swedish_multi_rate()

    root = parse(renderer.render(invoice))

    assert root.tag == f"{{{NS['inv']}}}Invoice"
    assert text(root, "cbc:CustomizationID/text()") == CUSTOMIZATION_ID
    assert CUSTOMIZATION_ID == (
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    )
    assert text(root, "cbc:ProfileID/text()") == PROFILE_ID
    assert PROFILE_ID == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert text(root, "cbc:ID/text()") == "10042"
    assert text(root, "cbc:InvoiceTypeCode/text()") == "380"
    assert text(root, "cbc:IssueDate/text()") == "2025-03-10"
    assert text(root, "cbc:DueDate/text()") == "2025-04-09"
    assert text(root, "cbc:DocumentCurrencyCode/text()") == "SEK"
    assert text(root, "cbc:BuyerReference/text()") == "Anna Andersson"
    assert text(root, "cac:PaymentTerms/cbc:Note/text()") == "30 dagar netto"


def test_swedish_seller_gets_org_no_endpoint_and_f_skatt(renderer: PeppolBisRenderer) -> None:
    root = parse(renderer.render(swedish_multi_rate()))

    party = "cac:AccountingSupplierParty/cac:Party"
    assert text(root, f"{party}/cbc:EndpointID/@schemeID") == "0007"
    assert text(root, f"{party}/cbc:EndpointID/text()") == "5567321707"
    assert text(root, f"{party}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID/text()") == "SE556732170701"  # fmt: skip  # noqa: E501
    assert text(root, f"{party}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='TAX']/cbc:CompanyID/text()") == "Godkänd för F-skatt"  # fmt: skip  # noqa: E501
    assert text(root, f"{party}/cac:PartyLegalEntity/cbc:CompanyID/@schemeID") == "0007"
    assert text(root, f"{party}/cac:PartyLegalEntity/cbc:RegistrationName/text()") == (
        "Nordflow Demo AB"
    )


def test_explicit_electronic_address_wins_over_the_org_no(renderer: PeppolBisRenderer) -> None:
    gln = ElectronicAddress(scheme="0088", value="7300010000001")
    invoice = make_invoice(seller=swedish_seller(electronic_address=gln))

    root = parse(renderer.render(invoice))

    endpoint = root.find("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", NS)
    assert (endpoint.get("schemeID"), endpoint.text) == ("0088", "7300010000001")


def test_bankgiro_and_ocr_as_the_swedish_rules_want_them(renderer: PeppolBisRenderer) -> None:
    root = parse(renderer.render(swedish_multi_rate()))

    means = "cac:PaymentMeans"
    assert text(root, f"{means}/cbc:PaymentMeansCode/text()") == "30"
    assert text(root, f"{means}/cbc:PaymentID/text()") == OCR
    assert text(root, f"{means}/cac:PayeeFinancialAccount/cbc:ID/text()") == "50501055"
    branch = f"{means}/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID/text()"
    assert text(root, branch) == "SE:BANKGIRO"


def test_plusgiro_is_written_as_digits_with_its_scheme(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    payment = PaymentInstructions(
        payment_reference=OCR, account_id="412 34-5", account_scheme="se:plusgiro"
    )

    document = renderer.render(make_invoice(payment=payment))

    assert_valid(validator.validate(document))
    account = "cac:PaymentMeans/cac:PayeeFinancialAccount"
    root = parse(document)
    assert text(root, f"{account}/cbc:ID/text()") == "412345"
    assert text(root, f"{account}/cac:FinancialInstitutionBranch/cbc:ID/text()") == "SE:PLUSGIRO"


def test_every_vat_rate_gets_its_own_subtotal(renderer: PeppolBisRenderer) -> None:
    invoice = swedish_multi_rate()

    root = parse(renderer.render(invoice))

    subtotals = root.findall("cac:TaxTotal/cac:TaxSubtotal", NS)
    assert [s.findtext("cac:TaxCategory/cbc:Percent", namespaces=NS) for s in subtotals] == [
        "25",
        "12",
        "6",
    ]
    assert [s.findtext("cbc:TaxAmount", namespaces=NS) for s in subtotals] == [
        amount_text(b.tax_amount) for b in invoice.vat_breakdown
    ]
    assert text(root, "cac:TaxTotal/cbc:TaxAmount/text()") == amount_text(invoice.totals.tax_total)


def test_monetary_totals_include_rounding(renderer: PeppolBisRenderer) -> None:
    invoice = swedish_multi_rate()
    assert invoice.totals.rounding != 0

    root = parse(renderer.render(invoice))

    totals = root.find("cac:LegalMonetaryTotal", NS)
    assert [etree.QName(child).localname for child in totals] == [
        "LineExtensionAmount",
        "TaxExclusiveAmount",
        "TaxInclusiveAmount",
        "PayableRoundingAmount",
        "PayableAmount",
    ]
    assert totals.findtext("cbc:PayableAmount", namespaces=NS) == amount_text(
        invoice.totals.payable
    )
    assert totals.findtext("cbc:PayableAmount", namespaces=NS).endswith(".00")


def test_allowance_charge_and_prepaid_totals(renderer: PeppolBisRenderer) -> None:
    root = parse(renderer.render(with_allowances_and_prepayment()))

    charges = root.findall("cac:AllowanceCharge", NS)
    assert [c.findtext("cbc:ChargeIndicator", namespaces=NS) for c in charges] == [
        "false",
        "true",
    ]
    assert [c.findtext("cbc:AllowanceChargeReason", namespaces=NS) for c in charges] == [
        "Kundrabatt",
        "Charge",
    ]
    totals = "cac:LegalMonetaryTotal"
    assert text(root, f"{totals}/cbc:AllowanceTotalAmount/text()") == "500.00"
    assert text(root, f"{totals}/cbc:ChargeTotalAmount/text()") == "149.00"
    assert text(root, f"{totals}/cbc:PrepaidAmount/text()") == "2000.00"
    assert text(root, "cbc:Note/text()") == "Tack för din beställning!"


def test_lines_carry_quantity_unit_item_tax_category_and_price(
    renderer: PeppolBisRenderer,
) -> None:
    root = parse(renderer.render(swedish_multi_rate()))

    first, second, third = root.findall("cac:InvoiceLine", NS)
    quantity = first.find("cbc:InvoicedQuantity", NS)
    assert (quantity.text, quantity.get("unitCode")) == ("7.5", "C62")
    assert first.findtext("cbc:LineExtensionAmount", namespaces=NS) == "7125.00"
    assert first.findtext("cac:Item/cbc:Name", namespaces=NS) == "Konsulttimme"
    assert first.findtext("cac:Item/cac:SellersItemIdentification/cbc:ID", namespaces=NS) == (
        "KONS-1"
    )
    category = first.find("cac:Item/cac:ClassifiedTaxCategory", NS)
    assert category.findtext("cbc:ID", namespaces=NS) == "S"
    assert category.findtext("cbc:Percent", namespaces=NS) == "25"
    assert category.findtext("cac:TaxScheme/cbc:ID", namespaces=NS) == "VAT"
    assert first.findtext("cac:Price/cbc:PriceAmount", namespaces=NS) == "950.00"
    allowance = second.find("cac:AllowanceCharge", NS)
    assert allowance.findtext("cbc:ChargeIndicator", namespaces=NS) == "false"
    assert allowance.findtext("cbc:Amount", namespaces=NS) == "10.00"
    assert second.findtext("cbc:LineExtensionAmount", namespaces=NS) == "336.50"
    assert third.find("cbc:InvoicedQuantity", NS).get("unitCode") == "EA"


def test_every_amount_has_the_document_currency_and_two_decimals(
    renderer: PeppolBisRenderer,
) -> None:
    root = parse(renderer.render(with_allowances_and_prepayment()))

    amounts = root.xpath("//*[@currencyID]")
    assert len(amounts) > 10
    for element in amounts:
        assert element.get("currencyID") == "SEK"
        assert len(element.text.split(".")[1]) == 2, etree.QName(element).localname
    untagged = root.xpath("//*[contains(local-name(), 'Amount') and not(@currencyID)]")
    assert untagged == []


def test_no_element_is_ever_empty(renderer: PeppolBisRenderer) -> None:
    invoice = make_invoice(
        [line("1", "Tjänst", "1", "100", "25", article_number="  ")],
        seller=swedish_seller(email="", address=Address(lines=("", " "), country_code="SE")),
        note="   ",
    )
    # The canonical model refuses control characters; the renderer still drops any that an
    # unvalidated copy carries.
    invoice = invoice.model_copy(update={"buyer_reference": "Ref\x00 med\x07 styrtecken"})

    root = parse(renderer.render(invoice))

    assert root.xpath("//*[not(*) and not(normalize-space())]") == []
    assert text(root, "cbc:BuyerReference/text()") == "Ref med styrtecken"


def test_buyer_reference_falls_back_to_the_order_reference(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = make_invoice(buyer_reference=None, order_reference="PO-55")

    document = renderer.render(invoice)

    assert_valid(validator.validate(document))
    root = parse(document)
    assert text(root, "cbc:BuyerReference/text()") == "PO-55"
    assert text(root, "cac:OrderReference/cbc:ID/text()") == "PO-55"


def test_norwegian_seller_has_mva_suffix_and_foretaksregisteret(
    renderer: PeppolBisRenderer,
) -> None:
    root = parse(renderer.render(norwegian()))

    party = "cac:AccountingSupplierParty/cac:Party"
    assert text(root, f"{party}/cbc:EndpointID/@schemeID") == "0192"
    assert text(root, f"{party}/cbc:EndpointID/text()") == "923609016"
    assert text(root, f"{party}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID/text()") == "NO923609016MVA"  # fmt: skip  # noqa: E501
    assert text(root, f"{party}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='TAX']/cbc:CompanyID/text()") == "Foretaksregisteret"  # fmt: skip  # noqa: E501
    assert text(root, "cac:PaymentMeans/cbc:PaymentID/text()") == KID
    assert text(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID/text()") == (
        "1503.20.80119"
    )
    assert texts(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch") == []  # fmt: skip  # noqa: E501


def test_reverse_charge_states_the_exemption_and_both_vat_ids(
    renderer: PeppolBisRenderer,
) -> None:
    root = parse(renderer.render(reverse_charge()))

    category = "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory"
    assert text(root, f"{category}/cbc:ID/text()") == "AE"
    assert text(root, f"{category}/cbc:Percent/text()") == "0"
    assert text(root, f"{category}/cbc:TaxExemptionReasonCode/text()") == "VATEX-EU-AE"
    assert text(root, f"{category}/cbc:TaxExemptionReason/text()") == "Reverse charge"
    assert text(root, "cac:TaxTotal/cbc:TaxAmount/text()") == "0.00"
    buyer_vat = "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID/text()"
    assert text(root, buyer_vat) == "DE123456789"
    assert text(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID/text()") == (
        "SE4550000000058398257466"
    )


def test_zero_rated_has_no_reason_and_exempt_keeps_its_own(renderer: PeppolBisRenderer) -> None:
    root = parse(renderer.render(zero_rated_and_exempt()))

    categories = {
        c.findtext("cbc:ID", namespaces=NS): c
        for c in root.findall("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    }
    assert categories["Z"].find("cbc:TaxExemptionReason", NS) is None
    assert categories["E"].findtext("cbc:TaxExemptionReason", namespaces=NS) == (
        "Undantagen från skatteplikt, 3 kap. ML"
    )
    assert categories["S"].find("cbc:TaxExemptionReason", NS) is None


def test_not_subject_to_vat_has_no_rate_and_no_vat_ids(renderer: PeppolBisRenderer) -> None:
    root = parse(renderer.render(not_subject_to_vat()))

    assert root.xpath("//cac:TaxCategory/cbc:Percent", namespaces=NS) == []
    assert root.xpath("//cac:ClassifiedTaxCategory/cbc:Percent", namespaces=NS) == []
    assert root.xpath("//cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']", namespaces=NS) == []


def test_credit_note_is_a_ubl_credit_note_referencing_the_invoice(
    renderer: PeppolBisRenderer,
) -> None:
    root = parse(renderer.render(credit_note()))

    assert root.tag == f"{{{NS['cn']}}}CreditNote"
    assert text(root, "cbc:CreditNoteTypeCode/text()") == "381"
    assert root.find("cbc:DueDate", NS) is None
    assert text(root, "cac:PaymentMeans/cbc:PaymentDueDate/text()") == "2025-04-09"
    reference = "cac:BillingReference/cac:InvoiceDocumentReference"
    assert text(root, f"{reference}/cbc:ID/text()") == "10042"
    assert text(root, f"{reference}/cbc:IssueDate/text()") == "2025-02-28"
    assert root.findall("cac:InvoiceLine", NS) == []
    (credit_line,) = root.findall("cac:CreditNoteLine", NS)
    assert credit_line.find("cbc:CreditedQuantity", NS).text == "2"
    assert credit_line.find("cbc:InvoicedQuantity", NS) is None


def test_rendering_is_deterministic(renderer: PeppolBisRenderer) -> None:
    invoice = swedish_multi_rate()

    assert renderer.render(invoice) == renderer.render(invoice)
    assert renderer.render(invoice).startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


# -- documents the rules must reject ---------------------------------------------------------


def fatal_ids(
    validator: PeppolValidator, renderer: PeppolBisRenderer, invoice: Invoice
) -> set[str]:
    return set(validator.validate(renderer.render(invoice)).fatal_rule_ids)


def test_amount_due_that_does_not_add_up_fails_br_co_16(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = make_invoice()
    wrong = invoice.totals.model_copy(update={"payable": invoice.totals.payable + 1})

    assert fatal_ids(validator, renderer, invoice.model_copy(update={"totals": wrong})) == {
        "BR-CO-16"
    }


def test_total_with_vat_that_does_not_add_up_fails_br_co_15(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = make_invoice()
    wrong = invoice.totals.model_copy(
        update={"tax_inclusive": invoice.totals.tax_inclusive + Decimal("0.50")}
    )

    # The amount due no longer matches the wrong total either.
    assert fatal_ids(validator, renderer, invoice.model_copy(update={"totals": wrong})) == {
        "BR-CO-15",
        "BR-CO-16",
    }


def test_vat_total_that_differs_from_the_breakdown_fails_br_co_14(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = make_invoice()
    wrong = invoice.totals.model_copy(update={"tax_total": invoice.totals.tax_total - 1})

    assert "BR-CO-14" in fatal_ids(
        validator, renderer, invoice.model_copy(update={"totals": wrong})
    )


def test_swedish_vat_rate_of_20_percent_fails_se_r_006(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = make_invoice([line("1", "Konsulttimme", "1", "1000", "20")])

    report = validator.validate(renderer.render(invoice))

    assert report.fatal_rule_ids == {"SE-R-006"}
    # Once for the line's category and once for the breakdown's.
    assert len(report.fatal) == 2
    assert all(v.source == "PEPPOL-EN16931-UBL" for v in report.fatal)


def test_missing_buyer_and_order_reference_fails_peppol_r003(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = make_invoice(buyer_reference=None, order_reference=None)

    report = validator.validate(renderer.render(invoice))

    assert report.fatal_rule_ids == {"PEPPOL-EN16931-R003"}
    (violation,) = report.fatal
    assert violation.flag == "fatal"
    assert "buyer reference or purchase order reference" in violation.message
    assert violation.location == "/Invoice[1]"


def test_seller_without_any_electronic_address_fails_peppol_r020(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    seller = swedish_seller(company_id=None)

    assert fatal_ids(validator, renderer, make_invoice(seller=seller)) == {"PEPPOL-EN16931-R020"}


def test_invoice_without_due_date_or_terms_fails_br_co_25(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = make_invoice(payment=PaymentInstructions(account_id="50501055"))

    assert fatal_ids(validator, renderer, invoice.model_copy(update={"due_date": None})) == {
        "BR-CO-25"
    }


# -- value formatting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("100", "100.00"), ("0.005", "0.01"), ("-0.125", "-0.13"), ("1E+3", "1000.00"), ("0", "0.00")],
)
def test_amount_text_has_two_decimals_rounded_half_up(value: str, expected: str) -> None:
    assert amount_text(Decimal(value)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("25.00", "25"), ("12.5", "12.5"), ("0.000", "0"), ("1E+2", "100"), ("7.50", "7.5")],
)
def test_number_text_drops_trailing_zeros(value: str, expected: str) -> None:
    assert number_text(Decimal(value)) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("950", "950.00"), ("0.125", "0.125"), ("19.9", "19.90")]
)
def test_price_text_keeps_extra_decimals(value: str, expected: str) -> None:
    assert price_text(Decimal(value)) == expected


@pytest.mark.parametrize(
    ("country", "company_id", "expected"),
    [
        ("SE", "556732-1707", ("0007", "5567321707")),
        ("SE", "16556732-1707", ("0007", "5567321707")),
        ("SE", "12345", None),
        ("NO", "923 609 016", ("0192", "923609016")),
        ("DK", "12345678", None),
        ("SE", None, None),
    ],
)
def test_organisation_number(
    country: str, company_id: str | None, expected: tuple[str, str] | None
) -> None:
    party = Party(name="X", company_id=company_id, address=Address(country_code=country))

    assert organisation_number(party) == expected


@pytest.mark.parametrize(
    ("country", "vat_id", "expected"),
    [
        ("NO", "923609016", "NO923609016MVA"),
        ("NO", "NO 923 609 016 MVA", "NO923609016MVA"),
        ("NO", "no923609016", "NO923609016MVA"),
        ("SE", "se 5567321707-01", "SE556732170701"),
        ("DE", "DE123456789", "DE123456789"),
        ("SE", None, None),
    ],
)
def test_vat_identifier(country: str, vat_id: str | None, expected: str | None) -> None:
    party = Party(name="X", vat_id=vat_id, address=Address(country_code=country))

    assert vat_identifier(party) == expected


def test_renderer_names_its_format() -> None:
    renderer = PeppolBisRenderer()

    assert renderer.format_id == "peppol-bis-billing-3"
    assert renderer.media_type == "application/xml"
