"""The use cases on fake repositories: each version once, created once then updated, the
tenant's reference policy, payments once, and what is recorded."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from mapper.domain.references import TenantReferencePolicy
from mapper.service import (
    InvoiceStatus,
    PaymentKey,
    UnreadablePayment,
    handle_fetched,
    reference_policy,
    set_reference_policy,
)
from mapper.testing import Fakes, fake_repositories, fetched, fortnox_invoice, fortnox_payment
from nordflow_references import OcrControl, ReferenceKind, ReferencePolicy
from nordflow_schemas.common import SourceSystem, canonical_invoice_id
from nordflow_schemas.events import (
    DocumentKind,
    ErpDocumentFetched,
    Flow,
    InvoiceCreated,
    InvoiceRejected,
    InvoiceUpdated,
    PaymentReceived,
)


def invoice(version: str = "v1", *, test_mode: bool = False, **changes: Any) -> ErpDocumentFetched:
    return fetched(
        SourceSystem.FORTNOX,
        fortnox_invoice("12345", **changes),
        document_id="12345",
        document_number="12345",
        version=version,
        test_mode=test_mode,
    )


def payment(version: str = "p1", **changes: Any) -> ErpDocumentFetched:
    return fetched(
        SourceSystem.FORTNOX,
        fortnox_payment("12", "12345", **changes),
        kind=DocumentKind.PAYMENT,
        related={"invoice": {"document_id": "12345", "document_number": "12345"}},
        invoice_id=canonical_invoice_id("acme", "fortnox", "c1", "12345"),
        document_id="12",
        version=version,
    )


async def policy(repos: Fakes, **settings: Any) -> None:
    await set_reference_policy(
        repos.policies, TenantReferencePolicy(tenant_id="acme", policy=ReferencePolicy(**settings))
    )


async def test_a_valid_invoice_is_created_once_per_version_then_updated() -> None:
    repos = fake_repositories()
    created = await handle_fetched(repos, invoice("v1", test_mode=True))
    assert isinstance(created, InvoiceCreated)
    assert (created.invoice_id, created.version, created.test_mode) == ("inv_1", "v1", True)
    assert created.invoice.number == "12345"
    assert await handle_fetched(repos, invoice("v1")) is None  # the same version again
    updated = await handle_fetched(repos, invoice("v2", DueDate="2026-12-31"))
    assert isinstance(updated, InvoiceUpdated)
    assert updated.invoice.due_date is not None
    assert updated.invoice.due_date.isoformat() == "2026-12-31"
    row = repos.invoices.rows["inv_1"]
    assert (row.version, row.status, row.number, row.created_emitted) == (
        "v2",
        InvoiceStatus.CREATED,
        "12345",
        True,
    )


async def test_a_rejected_version_after_creation_then_fixed_gives_an_update() -> None:
    repos = fake_repositories()
    assert isinstance(await handle_fetched(repos, invoice("v1")), InvoiceCreated)
    rejected = await handle_fetched(repos, invoice("v2", InvoiceDate="someday"))
    assert isinstance(rejected, InvoiceRejected)
    assert [(e.field, e.rule) for e in rejected.errors] == [("Invoice.InvoiceDate", "NF-DATE")]
    assert rejected.source.document_id == "12345"
    row = repos.invoices.rows["inv_1"]
    assert (row.status, row.created_emitted, row.errors) == (
        InvoiceStatus.REJECTED,
        True,
        rejected.errors,
    )
    assert isinstance(await handle_fetched(repos, invoice("v3")), InvoiceUpdated)


async def test_an_invoice_rejected_first_is_created_when_fixed() -> None:
    repos = fake_repositories()
    assert isinstance(await handle_fetched(repos, invoice("v1", Total="lots")), InvoiceRejected)
    assert repos.invoices.rows["inv_1"].created_emitted is False
    assert isinstance(await handle_fetched(repos, invoice("v2")), InvoiceCreated)


async def test_a_document_without_the_tenants_profile_is_rejected_naming_it() -> None:
    repos = fake_repositories()
    event = fetched(SourceSystem.FORTNOX, fortnox_invoice(), profile=None, document_id="12345")
    rejected = await handle_fetched(repos, event)
    assert isinstance(rejected, InvoiceRejected)
    assert [(e.field, e.rule) for e in rejected.errors] == [("tenant", "NF-TENANT-PROFILE")]
    assert "PUT /api/v1/profile" in rejected.errors[0].message
    assert repos.invoices.rows["inv_1"].status is InvoiceStatus.REJECTED


async def test_the_tenants_policy_generates_the_missing_ocr() -> None:
    repos = fake_repositories()
    await policy(repos, kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.HARD_WITH_LENGTH)
    created = await handle_fetched(repos, invoice())
    assert isinstance(created, InvoiceCreated)
    # Bankgirot's example: 12345 with length digit and Luhn digit.
    assert created.invoice.payment.payment_reference == "1234574"


async def test_a_reference_that_breaks_the_policy_is_rejected_naming_the_field() -> None:
    repos = fake_repositories()
    # The tenant's bank agreed 12-digit OCR references; the source gave a short one.
    await policy(
        repos, kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.FIXED_LENGTH, ocr_lengths=(12,)
    )
    rejected = await handle_fetched(repos, invoice(OCR="1234574"))
    assert isinstance(rejected, InvoiceRejected)
    assert [(e.field, e.rule) for e in rejected.errors] == [("payment.payment_reference", "NF-OCR")]
    assert "agreed fixed length is 12" in rejected.errors[0].message


async def test_policies_are_kept_per_tenant() -> None:
    repos = fake_repositories()
    assert await reference_policy(repos.policies, "acme") is None
    await policy(repos, kind=ReferenceKind.NONE)
    found = await reference_policy(repos.policies, "acme")
    assert found is not None
    assert found.policy.kind is ReferenceKind.NONE


async def test_a_payment_is_emitted_once_and_a_later_change_only_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repos = fake_repositories()
    received = await handle_fetched(repos, payment("p1"))
    assert isinstance(received, PaymentReceived)
    assert received.recorded_at_source
    assert received.invoice_id == canonical_invoice_id("acme", "fortnox", "c1", "12345")
    assert (received.payment_id, received.amount) == ("12", Decimal(1250))
    assert await handle_fetched(repos, payment("p1")) is None  # the same version fetched again
    with caplog.at_level(logging.WARNING, logger="mapper.service"):
        assert await handle_fetched(repos, payment("p2", Amount=1, AmountCurrency=1)) is None
    assert "changed in the source from 1250 to 1 SEK" in caplog.text
    key = PaymentKey("acme", "fortnox", "c1", "12", received.invoice_id)
    assert repos.payments.rows == {key: ("p2", Decimal(1250), Decimal(1), "SEK")}


async def test_a_payment_seen_first_without_money_is_emitted_when_it_has_some() -> None:
    repos = fake_repositories()
    assert await handle_fetched(repos, payment("p1", Amount=0, AmountCurrency=0)) is None
    assert repos.payments.rows == {}
    assert isinstance(await handle_fetched(repos, payment("p2")), PaymentReceived)


async def test_unreadable_payment_data_names_every_field_and_records_nothing() -> None:
    repos = fake_repositories()
    with pytest.raises(UnreadablePayment) as raised:
        await handle_fetched(repos, payment(Amount="lots", PaymentDate=None))
    assert "InvoicePayment.Amount (NF-NUMBER)" in str(raised.value)
    assert "InvoicePayment.PaymentDate (NF-REQUIRED)" in str(raised.value)
    assert repos.payments.rows == {}


async def test_the_connections_flow_and_the_documents_kind_travel_on() -> None:
    repos = fake_repositories()
    flow = Flow(book_into="c-fortnox", factor=False, distribute=False)
    created = await handle_fetched(repos, invoice().model_copy(update={"flow": flow}))
    assert isinstance(created, InvoiceCreated)
    assert (created.flow, created.source_kind) == (flow, DocumentKind.INVOICE)
    updated = await handle_fetched(repos, invoice("v2", Comments="x").model_copy(
        update={"flow": flow}))  # fmt: skip
    assert isinstance(updated, InvoiceUpdated)
    assert updated.flow == flow
    paid = await handle_fetched(repos, payment().model_copy(update={"flow": flow}))
    assert isinstance(paid, PaymentReceived)
    assert paid.flow == flow
