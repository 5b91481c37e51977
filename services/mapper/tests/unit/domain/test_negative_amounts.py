"""An invoice whose amount due is negative is rejected, naming the field; a credit note is
how money owed to the buyer travels."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.service import map_document
from mapper.testing import fetched as fetched_document
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import ErpDocumentFetched
from nordflow_schemas.invoice import DocumentType, Invoice
from nordflow_schemas.money import money

CUSTOMER = {"CustomerNumber": "100017", "Name": "Kund AB", "Type": "COMPANY"}


def fortnox_invoice(price: Decimal, **fields: Any) -> ErpDocumentFetched:
    vat = money(price * Decimal("0.25"))
    doc: dict[str, Any] = {
        "DocumentNumber": "5067",
        "CustomerNumber": "100017",
        "CustomerName": "Kund AB",
        "InvoiceDate": "2026-11-20",
        "DueDate": "2026-12-20",
        "Currency": "SEK",
        "Address1": "Kundvägen 2",
        "City": "Uppsala",
        "ZipCode": "75320",
        "InvoiceRows": [
            {"Description": "Konsult", "DeliveredQuantity": 1, "Price": str(price), "VAT": 25}
        ],
        "Net": str(price),
        "TotalVAT": str(vat),
        "Total": str(price + vat),
        **fields,
    }
    return fetched_document(
        SourceSystem.FORTNOX, doc, related={"customer": CUSTOMER}, document_id="5067"
    )


@settings(max_examples=60, deadline=None)
@given(st.decimals(min_value=Decimal("-100000"), max_value=Decimal("-0.01"), places=2))
def test_an_invoice_with_a_negative_amount_due_is_rejected_naming_the_field(
    price: Decimal,
) -> None:
    result = map_document(fortnox_invoice(price))
    assert isinstance(result, list)
    [negative] = [i for i in result if i.rule == "NF-NEGATIVE-INVOICE"]
    assert negative.field == "totals.payable"
    assert "credit note" in negative.message


@settings(max_examples=30, deadline=None)
@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2))
def test_an_invoice_with_a_positive_amount_due_is_not(price: Decimal) -> None:
    result = map_document(fortnox_invoice(price))
    assert isinstance(result, Invoice), result
    assert result.document_type is DocumentType.INVOICE
