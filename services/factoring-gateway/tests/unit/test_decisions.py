"""Deciding offered invoices on fake repositories: the eligibility rules, several agreements,
flows, test mode, the decision event, and following later versions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from factoring_gateway.domain.batches import InvoiceState
from factoring_gateway.domain.eligibility import Original, eligibility
from factoring_gateway.domain.formats import default_formats
from factoring_gateway.domain.transfer import TransferSecret
from factoring_gateway.service import decisions
from factoring_gateway.service.agreements import set_agreement
from factoring_gateway.service.ports import Repositories
from factoring_gateway.testing import (
    ASSIGNMENT,
    PAYEE,
    agreement,
    fake_repositories,
    sample_invoice,
    secret_box,
)
from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.events import Flow, InvoiceCreated, InvoiceUpdated
from nordflow_schemas.invoice import DocumentType, Invoice
from nordflow_schemas.testing import new_tenant, tenant_profile

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)  # the window is today 15:30 local
FORMATS = default_formats()


def created(invoice: Invoice, **changes: object) -> InvoiceCreated:
    return InvoiceCreated(
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.invoice_id,
        version="v1",
        invoice=invoice,
        **changes,  # type: ignore[arg-type]
    )


async def with_agreement(repos: Repositories, tenant: str, **changes: object) -> None:
    await set_agreement(
        repos,
        FORMATS,
        secret_box(),
        agreement(tenant, **changes),
        TransferSecret(password="pw"),
        NOW,
    )


async def decide(repos: Repositories, event: InvoiceCreated):  # type: ignore[no-untyped-def]
    return await decisions.decide(repos, FORMATS, event, NOW)


def row(repos: Repositories, invoice_id: str):  # type: ignore[no-untyped-def]
    return repos.invoices.rows[invoice_id]  # type: ignore[attr-defined]


async def test_an_eligible_invoice_is_announced_with_payee_kid_and_assignment() -> None:
    tenant = new_tenant()
    repos = fake_repositories(FakeTenantProfiles({tenant: tenant_profile("NO")}))
    await with_agreement(repos, tenant)
    invoice = sample_invoice(tenant, "5067")

    decided = await decide(repos, created(invoice))

    assert decided is not None
    assert decided.eligible
    assert decided.reason == "eligible"
    assert decided.agreement_id == f"{tenant}-factor"
    assert decided.payee == PAYEE
    assert decided.payment_reference == invoice.payment.payment_reference
    assert decided.assignment_text == ASSIGNMENT["nb"]  # the tenant's locale
    assert row(repos, invoice.invoice_id).state is InvoiceState.PENDING
    assert await decide(repos, created(invoice)) is None  # decided once


async def test_a_flow_without_factoring_is_noted_not_decided() -> None:
    tenant = new_tenant()
    repos = fake_repositories()
    await with_agreement(repos, tenant)
    invoice = sample_invoice(tenant, "5067")
    assert await decide(repos, created(invoice, flow=Flow(factor=False))) is None
    assert row(repos, invoice.invoice_id).state is InvoiceState.NOT_OFFERED


async def test_no_agreement_and_test_mode() -> None:
    tenant = new_tenant()
    repos = fake_repositories()
    alone = await decide(repos, created(sample_invoice(tenant, "1")))
    assert alone is not None
    assert not alone.eligible
    assert alone.reason == "tenant has no factoring agreement"
    assert alone.payee is None
    await with_agreement(repos, tenant)
    trial = await decide(repos, created(sample_invoice(tenant, "2"), test_mode=True))
    assert trial is not None
    assert not trial.eligible
    assert trial.reason == f"test mode: would be transferred under {tenant}-factor"
    assert row(repos, trial.invoice_id).state is InvoiceState.TEST


async def test_a_payment_reference_off_the_factors_kid_rules_is_ineligible() -> None:
    tenant = new_tenant()
    repos = fake_repositories()
    await with_agreement(repos, tenant)
    decided = await decide(repos, created(sample_invoice(tenant, "5067", reference="50675")))
    assert decided is not None
    assert not decided.eligible
    assert decided.reason.startswith("payment reference does not fit the agreement's KID/OCR")


async def test_the_first_agreement_that_takes_it_wins_else_every_reason() -> None:
    tenant = new_tenant()
    repos = fake_repositories()
    await with_agreement(repos, tenant, agreement_id="sek-only", currencies=frozenset({"SEK"}))
    await with_agreement(repos, tenant, agreement_id="nok-too", currencies=frozenset({"NOK"}))
    decided = await decide(repos, created(sample_invoice(tenant, "5067")))
    assert decided is not None
    assert decided.agreement_id == "nok-too"
    usd = await decide(repos, created(sample_invoice(tenant, "5068", currency="USD")))
    assert usd is not None
    assert usd.reason == (
        "no agreement takes it: sek-only: currency USD is not covered by the agreement; "
        "nok-too: currency USD is not covered by the agreement"
    )


async def test_a_credit_note_follows_its_original() -> None:
    tenant = new_tenant()
    repos = fake_repositories()
    await with_agreement(repos, tenant)
    original = sample_invoice(tenant, "5067")
    await decide(repos, created(original))
    credit = sample_invoice(
        tenant, "5069", document_type=DocumentType.CREDIT_NOTE, credited=original
    )
    decided = await decide(repos, created(credit))
    assert decided is not None
    assert decided.eligible
    stray = sample_invoice(tenant, "5070", document_type=DocumentType.CREDIT_NOTE)
    refused = await decide(repos, created(stray))
    assert refused is not None
    assert refused.reason == "credit note names no credited invoice"


def test_eligibility_rules_in_order() -> None:
    a = agreement("t", payment_methods=frozenset({"FACT"}), max_age_days=30)
    today = dt.date(2025, 3, 10)
    invoice = sample_invoice("t", "5067").model_copy(update={"payment_method": "FACT"})
    assert eligibility(a, invoice, window_date=today) is None
    by_customer = invoice.model_copy(
        update={"payment_method": None, "customer_payment_method": "FACT"}
    )
    assert eligibility(a, by_customer, window_date=today) is None
    assert eligibility(
        a, invoice.model_copy(update={"payment_method": "KONT"}), window_date=today
    ) == ("payment method 'KONT' is not a factoring one")
    paid = invoice.model_copy(update={"outstanding_amount": Decimal(0)})
    assert eligibility(a, paid, window_date=today) == (
        "invoice is not open (paid or cancelled: nothing outstanding)"
    )
    old = invoice.model_copy(update={"issue_date": today - dt.timedelta(days=31)})
    assert eligibility(a, old, window_date=today) == "invoice date is more than 30 days back"
    assert eligibility(dataclasses.replace(a, enabled=False), invoice, window_date=today) == (
        "agreement is disabled"
    )
    credit = sample_invoice(
        "t", "5069", document_type=DocumentType.CREDIT_NOTE, credited=invoice
    ).model_copy(update={"payment_method": "FACT"})
    assert eligibility(a, credit, window_date=today, original=Original("other", "pending")) == (
        "credited invoice 5067 was not transferred under this agreement"
    )
    no_credits = dataclasses.replace(a, include_credit_notes=False)
    assert eligibility(no_credits, credit, window_date=today) == (
        "credit notes are not transferred under this agreement"
    )


async def test_the_age_is_judged_at_the_next_window_in_the_tenants_zone() -> None:
    """At 17:00 in Oslo today's window has passed: tomorrow's window judges the age."""
    tenant = new_tenant()
    repos = fake_repositories(FakeTenantProfiles({tenant: tenant_profile("NO")}))
    await with_agreement(repos, tenant)
    evening = dt.datetime(2025, 3, 10, 16, 0, tzinfo=dt.UTC)
    thirty_days = sample_invoice(tenant, "5067", issue_date=dt.date(2025, 2, 8))
    decided = await decisions.decide(repos, FORMATS, created(thirty_days), evening)
    assert decided is not None
    assert decided.reason == "invoice date is more than 30 days back"


async def test_an_update_withdraws_a_paid_pending_invoice_and_records_a_due_date_change() -> None:
    tenant = new_tenant()
    repos = fake_repositories()
    await with_agreement(repos, tenant)
    paid_later = sample_invoice(tenant, "5067")
    await decide(repos, created(paid_later))
    paid = paid_later.model_copy(update={"outstanding_amount": Decimal(0)})
    await decisions.follow_update(
        repos,
        InvoiceUpdated(tenant_id=tenant, invoice_id=paid.invoice_id, version="v2", invoice=paid),
    )
    assert row(repos, paid.invoice_id).state is InvoiceState.WITHDRAWN

    moved = sample_invoice(tenant, "5068")
    await decide(repos, created(moved))
    await repos.invoices.set_state([moved.invoice_id], InvoiceState.TRANSFERRED, "done")
    await repos.invoices.set_factor_due_date(moved.invoice_id, moved.due_date)
    later = moved.model_copy(update={"due_date": dt.date(2025, 5, 1)})
    update = InvoiceUpdated(
        tenant_id=tenant, invoice_id=moved.invoice_id, version="v2", invoice=later
    )
    await decisions.follow_update(repos, update)
    await decisions.follow_update(repos, update)  # the same version again: nothing new
    changes = list(repos.changes.changes.values())  # type: ignore[attr-defined]
    assert [(c.old_due_date, c.new_due_date) for c in changes] == [
        (moved.due_date, dt.date(2025, 5, 1))
    ]
