"""Payment documents per source → payment.received on the paid invoice (sandbox shapes)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.sources.payments import NotAPayment, map_payment
from mapper.testing import fetched as fetched_document
from nordflow_schemas.common import SourceRef, SourceSystem, canonical_invoice_id
from nordflow_schemas.events import (
    DocumentKind,
    ErpDocumentFetched,
    PaymentReceived,
    ValidationIssue,
)

FORTNOX = {  # GET /3/invoicepayments/{Number}
    "@url": "http://sandbox/3/invoicepayments/12",
    "Amount": 1250,
    "AmountCurrency": 1250,
    "Booked": False,
    "Currency": "SEK",
    "CurrencyRate": 1,
    "CurrencyUnit": 1,
    "InvoiceCustomerName": "Kund AB",
    "InvoiceCustomerNumber": "7",
    "InvoiceDueDate": "2026-12-20",
    "InvoiceNumber": 1001,
    "InvoiceOCR": "10017",
    "InvoiceTotal": "1250",
    "ModeOfPayment": "BG",
    "ModeOfPaymentAccount": 1930,
    "Number": "12",
    "PaymentDate": "2026-11-25",
    "Source": "manual",
    "WriteOffs": [],
}
EACCOUNTING = {  # POST /customerinvoices/{id}/payments answer
    "CompanyBankAccountId": "b1",
    "PaymentDate": "2026-11-25T00:00:00",
    "Reference": "141",
    "PaymentAmount": 237.5,
    "PaymentCurrency": "SEK",
    "BankFeeAmount": 0,
    "PaymentType": 2,
    "FactoringFeeAmount": 0,
    "FactoringFeeAccountNumber": None,
    "BankTransactionId": "0b6f8a3e-1f7e-4a53-9d1c-3f1c0b1f2a10",
}
VISMA_NET = {  # PaymentDto
    "type": "Payment",
    "refNbr": "000042",
    "status": "Closed",
    "hold": False,
    "applicationDate": "2026-11-25T00:00:00",
    "paymentRef": "1000017",
    "customer": {"number": "10001", "name": "Kunde AS"},
    "currency": "NOK",
    "paymentAmount": 2000,
    "paymentLines": [
        {"documentType": "Invoice", "refNbr": "100001", "amountPaid": 1250},
        {"documentType": "Invoice", "refNbr": "100002", "amountPaid": 750},
    ],
}
SIRVOY = {  # the sandbox's assumed payment shape
    "paymentId": 900002,
    "bookingId": 17,
    "invoiceId": 501,
    "amount": 3939,
    "currency": "SEK",
    "paymentDate": "2026-11-21",
    "method": "card",
    "provider": None,
    "providerReference": "pi_123",
    "voided": False,
    "modifiedAt": "2026-11-21T10:00:00.000000+00:00",
}


def fetched(
    system: SourceSystem,
    payload: dict[str, Any],
    invoice: dict[str, Any] | None = None,
    related: dict[str, dict[str, Any]] | None = None,
) -> ErpDocumentFetched:
    paid = {"document_id": "1001", "document_number": "1001"} if invoice is None else invoice
    return fetched_document(
        system,
        payload,
        kind=DocumentKind.PAYMENT,
        related={"invoice": paid, **(related or {})},
        invoice_id="inv_payment",
        document_id="pay-1",
        test_mode=True,
    )


def received(event: ErpDocumentFetched) -> PaymentReceived:
    result = map_payment(event)
    assert isinstance(result, PaymentReceived), result
    return result


def issues(event: ErpDocumentFetched) -> set[tuple[str, str]]:
    result = map_payment(event)
    assert isinstance(result, list), result
    return {(i.field, i.rule) for i in result}


def test_fortnox_payment_is_about_the_paid_invoice_and_recorded_at_source() -> None:
    event = received(fetched(SourceSystem.FORTNOX, {"InvoicePayment": FORTNOX}))
    assert event.invoice_id == canonical_invoice_id("acme", "fortnox", "c1", "1001")
    assert event.source == SourceRef(
        system=SourceSystem.FORTNOX,
        connection_id="c1",
        document_id="1001",
        document_number="1001",
    )
    assert (event.payment_id, event.amount, event.currency) == ("12", Decimal(1250), "SEK")
    assert event.paid_on == dt.date(2026, 11, 25)
    assert (event.payer, event.reference) == ("Kund AB", "10017")
    assert event.recorded_at_source
    assert event.test_mode


def test_fortnox_foreign_currency_uses_the_invoice_currency_amount() -> None:
    doc = {**FORTNOX, "Currency": "EUR", "Amount": 11500.5, "AmountCurrency": 1000}
    event = received(fetched(SourceSystem.FORTNOX, doc))
    assert (event.amount, event.currency) == (Decimal(1000), "EUR")


def test_visma_eaccounting_payment_by_bank_transaction() -> None:
    event = received(
        fetched(SourceSystem.VISMA_EACCOUNTING, EACCOUNTING, related={"customer": {"Name": "K AB"}})
    )
    assert event.payment_id == EACCOUNTING["BankTransactionId"]
    assert (event.amount, event.currency, event.paid_on) == (
        Decimal("237.5"),
        "SEK",
        dt.date(2026, 11, 25),
    )
    assert (event.payer, event.reference) == ("K AB", "141")


def test_visma_eaccounting_rounding_and_bank_charges_are_no_payment() -> None:
    for kind in (3, 4):
        result = map_payment(
            fetched(SourceSystem.VISMA_EACCOUNTING, {**EACCOUNTING, "PaymentType": kind})
        )
        assert isinstance(result, NotAPayment)


def test_visma_net_counts_only_the_lines_of_the_paid_invoice() -> None:
    paid = {"document_id": "100002", "document_number": "100002"}
    event = received(fetched(SourceSystem.VISMA_NET, VISMA_NET, invoice=paid))
    assert (event.payment_id, event.amount, event.currency) == ("000042", Decimal(750), "NOK")
    assert (event.payer, event.reference) == ("Kunde AS", "1000017")


def test_visma_net_unreleased_payments_and_refunds_are_not_emitted() -> None:
    on_hold = map_payment(fetched(SourceSystem.VISMA_NET, {**VISMA_NET, "status": "Hold"}))
    refund = map_payment(fetched(SourceSystem.VISMA_NET, {**VISMA_NET, "type": "Refund"}))
    assert isinstance(on_hold, NotAPayment)
    assert "not released" in on_hold.reason
    assert isinstance(refund, NotAPayment)


def test_visma_net_payment_without_a_line_for_the_invoice_is_named() -> None:
    paid = {"document_id": "999999"}
    assert issues(fetched(SourceSystem.VISMA_NET, VISMA_NET, invoice=paid)) == {
        ("CustomerPayment.paymentLines", "NF-PAYMENT-LINE")
    }


def test_sirvoy_payment_and_a_voided_one_counting_zero() -> None:
    event = received(fetched(SourceSystem.SIRVOY, SIRVOY))
    assert (event.payment_id, event.amount, event.reference) == ("900002", Decimal(3939), "pi_123")
    voided = received(fetched(SourceSystem.SIRVOY, {**SIRVOY, "voided": True}))
    assert voided.amount == 0


@pytest.mark.parametrize(
    ("system", "payload", "expected"),
    [
        (
            SourceSystem.FORTNOX,
            {**FORTNOX, "Number": None, "Amount": "x", "PaymentDate": "25/11"},
            {
                ("InvoicePayment.Number", "NF-REQUIRED"),
                ("InvoicePayment.Amount", "NF-NUMBER"),
                ("InvoicePayment.PaymentDate", "NF-DATE"),
            },
        ),
        (
            SourceSystem.VISMA_EACCOUNTING,
            {**EACCOUNTING, "BankTransactionId": "", "PaymentCurrency": "KRONOR"},
            {
                ("InvoicePayment.BankTransactionId", "NF-REQUIRED"),
                ("InvoicePayment.PaymentCurrency", "NF-CURRENCY"),
            },
        ),
        (
            SourceSystem.SIRVOY,
            {k: v for k, v in SIRVOY.items() if k not in {"amount", "currency"}},
            {("Payment.amount", "NF-REQUIRED"), ("Payment.currency", "NF-REQUIRED")},
        ),
    ],
    ids=["fortnox", "visma-eaccounting", "sirvoy"],
)
def test_missing_or_bad_fields_are_each_named(
    system: SourceSystem, payload: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    assert issues(fetched(system, payload)) == expected


def test_a_payment_without_its_invoice_is_named() -> None:
    assert ("related.invoice.document_id", "NF-REQUIRED") in issues(
        fetched(SourceSystem.FORTNOX, FORTNOX, invoice={})
    )


def test_a_source_without_a_payment_mapping_is_named() -> None:
    assert issues(fetched(SourceSystem.WINNER, FORTNOX)) == {("source.system", "NF-SOURCE")}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**15), 10**15)
    | st.text(max_size=10)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
BASES = {
    SourceSystem.FORTNOX: FORTNOX,
    SourceSystem.VISMA_EACCOUNTING: EACCOUNTING,
    SourceSystem.VISMA_NET: VISMA_NET,
    SourceSystem.SIRVOY: SIRVOY,
}


@settings(max_examples=300, deadline=None)
@given(
    system=st.sampled_from(list(BASES)),
    data=st.data(),
)
def test_any_payment_payload_yields_an_event_a_skip_or_named_issues(
    system: SourceSystem, data: st.DataObject
) -> None:
    base = BASES[system]
    changes = data.draw(st.dictionaries(st.sampled_from(sorted(base)), json_values, max_size=4))
    result = map_payment(fetched(system, {**base, **changes}))
    if isinstance(result, list):
        assert result
        assert all(isinstance(i, ValidationIssue) and i.field and i.message for i in result)
    else:
        assert isinstance(result, PaymentReceived | NotAPayment)
