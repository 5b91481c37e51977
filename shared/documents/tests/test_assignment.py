"""An invoice assigned to a factor: the payee (BG-10), its account and the notice of
assignment on the UBL (valid under the official rules) and on the PDF."""

from __future__ import annotations

import io

from lxml import etree
from nordflow_documents.pdf import render_pdf
from nordflow_documents.peppol import PeppolBisRenderer
from nordflow_documents.testing.invoices import (
    KID,
    OCR,
    line,
    make_invoice,
    norwegian_buyer,
    norwegian_seller,
)
from nordflow_documents.validation import PeppolValidator
from nordflow_schemas.invoice import Invoice, Payee, PaymentInstructions
from pypdf import PdfReader

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
NOTICE = "Denna faktura har överlåtits till Nordisk Factoring AB. Betala endast till dem."


def swedish_assigned() -> Invoice:
    return make_invoice(
        [line("1", "Konsulttimme", "10", "950.00", "25")],
        payment=PaymentInstructions(
            payment_reference=OCR, account_id="5555-5556", account_scheme="SE:BANKGIRO"
        ),
        payee=Payee(name="Nordisk Factoring AB", company_id="5560360793", assignment_text=NOTICE),
        note="Tack för beställningen.",
    )


def norwegian_assigned() -> Invoice:
    return make_invoice(
        [line("1", "Rådgivning", "3", "1200", "25")],
        currency="NOK",
        seller=norwegian_seller(),
        buyer=norwegian_buyer(),
        order_reference="PO-7781",
        buyer_reference=None,
        payment=PaymentInstructions(payment_reference=KID, account_id="1503.20.80119"),
        payee=Payee(
            name="Nordic Factoring AS",
            company_id="974760673",
            assignment_text="Fakturaen er overdratt til Nordic Factoring AS.",
        ),
    )


def values(document: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(document).xpath(path, namespaces=NS)]


def test_the_ubl_names_the_payee_and_its_account_and_is_valid(
    renderer: PeppolBisRenderer, validator: PeppolValidator
) -> None:
    for invoice in (swedish_assigned(), norwegian_assigned()):
        document = renderer.render(invoice)
        report = validator.validate(document)
        assert report.ok, report.summary()
        assert values(document, "cac:PayeeParty/cac:PartyName/cbc:Name/text()") == [
            invoice.payee.name  # type: ignore[union-attr]
        ]
        assert values(document, "cac:PayeeParty/cac:PartyLegalEntity/cbc:CompanyID/text()") == [
            invoice.payee.company_id  # type: ignore[union-attr]
        ]
        assert values(document, "cac:PaymentMeans/cbc:PaymentID/text()") == [
            invoice.payment.payment_reference
        ]
    swedish = renderer.render(swedish_assigned())
    [account] = values(swedish, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID/text()")
    assert account == "55555556"
    [note] = values(swedish, "cbc:Note/text()")
    assert note == f"{NOTICE}\nTack för beställningen."


def test_an_invoice_without_a_payee_has_no_payee_party(renderer: PeppolBisRenderer) -> None:
    plain = swedish_assigned().model_copy(update={"payee": None})
    document = renderer.render(plain)
    assert values(document, "cac:PayeeParty") == []
    assert values(document, "cbc:Note/text()") == ["Tack för beställningen."]


def test_the_pdf_tells_the_buyer_to_pay_the_factor() -> None:
    pdf = render_pdf(swedish_assigned())
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    text = " ".join(text.split())
    assert "Nordisk Factoring AB" in text
    assert "5555-5556" in text
    assert OCR in text
    assert " ".join(NOTICE.split()[:4]) in text
