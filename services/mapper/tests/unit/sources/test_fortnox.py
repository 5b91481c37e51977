"""Fortnox → canonical invoice, and validation that names every problem."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.service import map_document
from mapper.testing import NORWEGIAN_SELLER, SWEDISH_SELLER, json_values, with_seller
from mapper.testing import fetched as fetched_document
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import DocumentKind, ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice, VatCategory

CUSTOMER = {"CustomerNumber": "7", "Name": "Kund AB", "Type": "COMPANY", "VATType": "SEVAT"}


def fortnox_invoice(**overrides):
    doc = {
        "DocumentNumber": "1001",
        "CustomerNumber": "7",
        "CustomerName": "Kund AB",
        "InvoiceDate": "2026-11-20",
        "DueDate": "2026-12-20",
        "Currency": "SEK",
        "OCR": "10017",
        "Address1": "Kundvägen 2",
        "City": "Uppsala",
        "ZipCode": "75320",
        "InvoiceRows": [
            {
                "Description": "Konsult",
                "DeliveredQuantity": 10,
                "Price": 950,
                "VAT": 25,
                "Total": 9500,
            },
            {"Description": "Bok", "DeliveredQuantity": 2, "Price": 199.5, "VAT": 6, "Total": 399},
        ],
        "Net": 9899,
        "TotalVAT": 2398.94,
        "RoundOff": 0.06,
        "Total": 12298,
        "Balance": 12298,
    }
    doc.update(overrides)
    return doc


def fetched(doc, kind=DocumentKind.INVOICE, customer=CUSTOMER, profile=SWEDISH_SELLER):
    return fetched_document(
        SourceSystem.FORTNOX,
        doc,
        kind=kind,
        profile=profile,
        related={"customer": customer},
        document_number="1001",
    )


def test_maps_a_multi_rate_invoice_exactly():
    result = map_document(fetched(fortnox_invoice()))
    assert isinstance(result, Invoice), result
    assert result.totals.payable == Decimal("12298")
    assert result.totals.rounding == Decimal("0.06")
    rates = {(b.rate, b.taxable_amount, b.tax_amount) for b in result.vat_breakdown}
    assert rates == {
        (Decimal(6), Decimal(399), Decimal("23.94")),
        (Decimal(25), Decimal(9500), Decimal("2375.00")),
    }
    assert result.payment.payment_reference == "10017"
    assert result.payment.account_scheme == "SE:BANKGIRO"
    assert result.seller.company_id == "556036-0793"


def test_credit_note_amounts_become_positive_with_reference():
    doc = fortnox_invoice(
        Credit="true",
        CreditInvoiceReference="999",
        Net=-9899,
        TotalVAT=-2398.94,
        RoundOff=-0.06,
        Total=-12298,
        Balance=-12298,
        InvoiceRows=[
            {
                "Description": "Konsult",
                "DeliveredQuantity": -10,
                "Price": 950,
                "VAT": 25,
                "Total": -9500,
            },
            {
                "Description": "Bok",
                "DeliveredQuantity": -2,
                "Price": 199.5,
                "VAT": 6,
                "Total": -399,
            },
        ],
    )
    result = map_document(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(result, Invoice), result
    assert result.document_type is DocumentType.CREDIT_NOTE
    assert result.totals.payable == Decimal("12298")
    assert result.lines[0].quantity == Decimal(10)
    assert result.preceding_invoice is not None
    assert result.preceding_invoice.number == "999"


def test_reverse_charge_customer_gets_category_ae_and_no_vat():
    doc = fortnox_invoice(
        InvoiceRows=[
            {
                "Description": "Konsult",
                "DeliveredQuantity": 1,
                "Price": 1000,
                "VAT": 0,
                "Total": 1000,
            }
        ],
        Net=1000,
        TotalVAT=0,
        RoundOff=0,
        Total=1000,
    )
    customer = {**CUSTOMER, "VATType": "EUREVERSEDVAT", "VATNumber": "DE123456789"}
    result = map_document(fetched(doc, customer=customer))
    assert isinstance(result, Invoice), result
    assert result.vat_breakdown[0].category is VatCategory.REVERSE_CHARGE
    assert result.totals.tax_total == 0


def test_rejection_lists_every_problem_with_its_field():
    doc = fortnox_invoice(CustomerName="", InvoiceDate="20-11-2026")
    doc["InvoiceRows"][0]["Price"] = "abc"
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    fields = {(i.field, i.rule) for i in issues}
    assert ("Invoice.CustomerName", "NF-REQUIRED") in fields
    assert ("Invoice.InvoiceDate", "NF-DATE") in fields
    assert ("Invoice.InvoiceRows[0].Price", "NF-NUMBER") in fields


def test_validation_reports_arithmetic_rates_ocr_and_org_number_together():
    doc = fortnox_invoice(TotalVAT=2000, OCR="10018")
    doc["InvoiceRows"][1]["VAT"] = 20
    issues = map_document(
        fetched(doc, profile=with_seller(SWEDISH_SELLER, company_id="556036-0794"))
    )
    assert isinstance(issues, list)
    rules = {i.rule: i for i in issues}
    assert {"BR-CO-14", "SE-R-006", "NF-OCR", "NF-ORGNR"} <= set(rules)
    assert rules["SE-R-006"].field == "lines[1].vat_rate"
    assert "20" in rules["SE-R-006"].message


json_scalars = json_values()


@settings(max_examples=300, deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "DocumentNumber",
                "InvoiceDate",
                "DueDate",
                "Currency",
                "Net",
                "TotalVAT",
                "Total",
                "RoundOff",
                "CustomerName",
                "OCR",
                "Credit",
            ]
        ),
        json_scalars,
    ),
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(["DeliveredQuantity", "Price", "VAT", "Total", "Description"]),
            json_scalars,
        ),
        max_size=4,
    ),
)
def test_any_input_yields_an_invoice_or_a_clear_rejection(overrides, rows):
    doc = fortnox_invoice(**overrides)
    doc["InvoiceRows"] = rows
    result = map_document(fetched(doc))
    if isinstance(result, list):
        assert result
        assert all(isinstance(i, ValidationIssue) and i.field and i.message for i in result)
    else:
        assert isinstance(result, Invoice)


def norwegian(kid: str):
    doc = fortnox_invoice(
        OCR=kid,
        Currency="NOK",
        Net=1000,
        TotalVAT=250,
        RoundOff=0,
        Total=1250,
        Balance=1250,
        InvoiceRows=[
            {
                "Description": "Tjeneste",
                "DeliveredQuantity": 1,
                "Price": 1000,
                "VAT": 25,
                "Total": 1000,
            }
        ],
    )
    return fetched(doc, profile=NORWEGIAN_SELLER)


def test_norwegian_kid_passes_with_mod10_or_mod11():
    assert isinstance(map_document(norwegian("12344")), Invoice)  # MOD10
    assert isinstance(map_document(norwegian("12343")), Invoice)  # MOD11


def test_a_norwegian_kid_with_a_wrong_check_digit_is_named():
    issues = map_document(norwegian("12345"))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("payment.payment_reference", "NF-KID")]


def test_an_absurd_amount_is_a_named_rejection_not_a_crash():
    doc = fortnox_invoice()
    doc["InvoiceRows"] = [
        {"DeliveredQuantity": None, "Price": True, "Total": "100000000000000000000000000.00"}
    ]
    issues = map_document(fetched(doc))
    assert isinstance(issues, list)
    assert ("Invoice.InvoiceRows[0].Total", "NF-NUMBER") in {(i.field, i.rule) for i in issues}


def eur(**overrides):
    return fortnox_invoice(**{"Currency": "EUR", "RoundOff": 0, "Total": 12297.94, **overrides})


def test_a_eur_invoice_states_its_vat_in_sek_at_the_currency_rate():
    result = map_document(fetched(eur(CurrencyRate=11.45, CurrencyUnit=1)))
    assert isinstance(result, Invoice), result
    assert (result.currency, result.totals.tax_total) == ("EUR", Decimal("2398.94"))
    assert result.vat_accounting_currency == "SEK"
    assert result.vat_total_accounting_currency == Decimal("27467.86")
    assert result.exchange_rate == Decimal("11.45")


def test_a_rate_per_hundred_units_is_divided_by_the_currency_unit():
    result = map_document(fetched(eur(CurrencyRate=1145, CurrencyUnit=100)))
    assert isinstance(result, Invoice), result
    assert result.exchange_rate == Decimal("11.45")
    assert result.vat_total_accounting_currency == Decimal("27467.86")


def test_a_sek_invoice_has_no_accounting_currency():
    result = map_document(fetched(fortnox_invoice(CurrencyRate=1, CurrencyUnit=1)))
    assert isinstance(result, Invoice), result
    assert (result.vat_accounting_currency, result.vat_total_accounting_currency) == (None, None)


def test_a_eur_invoice_without_currency_rate_names_it():
    issues = map_document(fetched(eur()))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("Invoice.CurrencyRate", "NF-REQUIRED")]


def test_a_currency_unit_of_zero_is_named():
    issues = map_document(fetched(eur(CurrencyRate=11.45, CurrencyUnit=0)))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [("Invoice.CurrencyUnit", "NF-CURRENCY-RATE")]


def test_a_eur_credit_note_has_a_positive_vat_total_in_sek():
    doc = eur(
        CurrencyRate=11.45,
        CurrencyUnit=1,
        Credit=True,
        CreditInvoiceReference="1000",
        Net=-9899,
        TotalVAT=-2398.94,
        Total=-12297.94,
        Balance=-12297.94,
        InvoiceRows=[
            {"Description": "Konsult", "DeliveredQuantity": -10, "Price": 950, "VAT": 25,
             "Total": -9500},
            {"Description": "Bok", "DeliveredQuantity": -2, "Price": 199.5, "VAT": 6,
             "Total": -399},
        ],
    )  # fmt: skip
    result = map_document(fetched(doc, kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(result, Invoice), result
    assert result.vat_total_accounting_currency == Decimal("27467.86")
    assert result.preceding_invoice is not None


def test_the_seller_and_its_bankgiro_come_from_the_tenants_profile():
    result = map_document(fetched(fortnox_invoice()))
    assert isinstance(result, Invoice), result
    assert result.seller == SWEDISH_SELLER.seller
    assert (result.payment.account_id, result.payment.account_scheme) == (
        "5050-1055",
        "SE:BANKGIRO",
    )


def test_an_invoice_without_the_tenants_profile_is_rejected_naming_it():
    issues = map_document(fetched(fortnox_invoice(CustomerName=""), profile=None))
    assert isinstance(issues, list)
    assert [(i.field, i.rule) for i in issues] == [
        ("tenant", "NF-TENANT-PROFILE"),
        ("Invoice.CustomerName", "NF-REQUIRED"),
    ]
    assert "PUT /api/v1/profile" in issues[0].message
