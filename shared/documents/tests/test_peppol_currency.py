"""Foreign-currency invoices: BT-6 and BT-111 rendered so the official rules accept them.

EN 16931 BR-53 wants the VAT total in the VAT accounting currency (BT-111) whenever the VAT
accounting currency (BT-6) is given; PEPPOL BIS puts BT-6 in ``cbc:TaxCurrencyCode`` and
BT-111 in a second ``cac:TaxTotal`` without subtotals (R053, R054), with the sign of the VAT
total (R055) and in another currency than the invoice's (R005).
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree
from nordflow_documents.peppol import PeppolBisRenderer
from nordflow_documents.testing.invoices import line, make_invoice
from nordflow_documents.validation import PeppolValidator
from nordflow_schemas.invoice import DocumentType, Invoice, InvoiceReference

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NS = {"cac": CAC, "cbc": CBC}
RATE = Decimal("11.4563")  # SEK per EUR


def eur_invoice(document_type: DocumentType = DocumentType.INVOICE) -> Invoice:
    """A Swedish seller's EUR invoice with its VAT also in SEK, at the rate it was booked at."""
    invoice = make_invoice(
        [line("1", "Consulting hour", "8", "120.00"), line("2", "Travel", "1", "45.50", "6")],
        currency="EUR",
        document_type=document_type,
        preceding_invoice=(
            InvoiceReference(number="10001") if document_type is DocumentType.CREDIT_NOTE else None
        ),
    )
    vat_sek = (invoice.totals.tax_total * RATE).quantize(Decimal("0.01"))
    return invoice.model_copy(
        update={
            "vat_accounting_currency": "SEK",
            "vat_total_accounting_currency": vat_sek,
            "exchange_rate": RATE,
        }
    )


def parsed(document: bytes) -> etree._Element:
    return etree.fromstring(document)


def test_a_eur_invoice_of_a_swedish_seller_passes_the_official_rules(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    report = validator.validate(renderer.render(eur_invoice()))

    assert report.fatal == ()


def test_a_eur_credit_note_of_a_swedish_seller_passes_the_official_rules(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    report = validator.validate(renderer.render(eur_invoice(DocumentType.CREDIT_NOTE)))

    assert report.fatal == ()


def test_the_accounting_currency_is_the_tax_currency_code_and_a_second_tax_total(
    renderer: PeppolBisRenderer,
) -> None:
    invoice = eur_invoice()
    root = parsed(renderer.render(invoice))

    assert root.findtext("cbc:DocumentCurrencyCode", namespaces=NS) == "EUR"
    assert root.findtext("cbc:TaxCurrencyCode", namespaces=NS) == "SEK"
    first, second = root.findall("cac:TaxTotal", NS)
    assert first.find("cbc:TaxAmount", NS).get("currencyID") == "EUR"  # type: ignore[union-attr]
    assert first.findall("cac:TaxSubtotal", NS)
    sek = second.find("cbc:TaxAmount", NS)
    assert sek is not None
    assert sek.get("currencyID") == "SEK"
    assert sek.text == str(invoice.vat_total_accounting_currency)
    assert second.findall("cac:TaxSubtotal", NS) == []


def test_a_domestic_invoice_has_no_tax_currency(renderer: PeppolBisRenderer) -> None:
    root = parsed(renderer.render(make_invoice()))

    assert root.find("cbc:TaxCurrencyCode", NS) is None
    assert len(root.findall("cac:TaxTotal", NS)) == 1


def test_an_accounting_currency_equal_to_the_invoice_currency_is_not_written(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = make_invoice().model_copy(
        update={"vat_accounting_currency": "SEK", "vat_total_accounting_currency": Decimal(1)}
    )
    document = renderer.render(invoice)

    assert parsed(document).find("cbc:TaxCurrencyCode", NS) is None
    assert validator.validate(document).fatal == ()


def test_the_rules_refuse_a_vat_total_in_accounting_currency_of_the_other_sign(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    invoice = eur_invoice()
    wrong = invoice.model_copy(
        update={"vat_total_accounting_currency": -(invoice.vat_total_accounting_currency or 0)}
    )

    report = validator.validate(renderer.render(wrong))

    assert report.fatal_rule_ids == {"PEPPOL-EN16931-R055"}
