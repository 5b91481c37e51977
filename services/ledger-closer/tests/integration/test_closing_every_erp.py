"""Closings and payments in every ERP, through the service's handlers and jobs against the
sandboxes: Visma eAccounting (a customer invoice payment on the factoring account's bank
account, the factor's fee as its factoring fee), Visma.net (a Payment against the invoice, a
Refund against the credit note, released), Fortnox financing (the advance a voucher, the
buyer's payment clearing it); each adopted, not doubled, when the ERP applied it but answered
with an error."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ledger_closer.adapters.repository import PgConnectionRepository
from ledger_closer.deps import Deps
from ledger_closer.domain import DEFAULT_ACCOUNTS
from ledger_closer.testing import (
    payment_received,
    sandbox_invoice,
    sandbox_payments,
    source,
    transferred,
    write_connection,
)
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import Emitted, ServiceHarness
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox, running_fortnox_sandbox
from nordflow_sandboxes.kit.values import stockholm_today
from nordflow_sandboxes.visma_eaccounting.domain import BankAccount
from nordflow_sandboxes.visma_eaccounting.testing import (
    FaultSpec as EAccountingFault,
)
from nordflow_sandboxes.visma_eaccounting.testing import (
    RunningVismaEAccountingSandbox,
    running_visma_eaccounting_sandbox,
)
from nordflow_sandboxes.visma_net import VismaNetState
from nordflow_sandboxes.visma_net.testing import FaultSpec as VismaNetFault
from nordflow_sandboxes.visma_net.testing import (
    RunningVismaNetSandbox,
    running_visma_net_sandbox,
)
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import AgreementKind, EntryKind, LedgerEntryPosted
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def eaccounting() -> Iterator[RunningVismaEAccountingSandbox]:
    with running_visma_eaccounting_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def visma_net() -> Iterator[RunningVismaNetSandbox]:
    with running_visma_net_sandbox(VismaNetState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture(scope="module")
def fortnox() -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox() as running:
        yield running


def read(api_url: str, path: str, headers: dict[str, str]) -> Any:
    """GET a path of a sandbox's API and its JSON."""
    response = httpx.get(f"{api_url}/{path}", headers=headers)
    response.raise_for_status()
    return response.json()


async def finish(harness: ServiceHarness[Deps], tenant: str) -> tuple[list[dict], Emitted]:
    emitted = Emitted()
    for _ in range(20):
        emitted.events += (await harness.run_jobs(include_future=True)).events
        jobs = [dict(j) for j in await harness.jobs() if j["tenant_id"] == tenant]
        if all(j["state"] != "pending" for j in jobs):
            return jobs, emitted
    raise AssertionError(jobs)


async def test_eaccounting_closing_books_the_fee_and_is_adopted_after_an_error(
    harness: ServiceHarness[Deps], box: SecretBox, eaccounting: RunningVismaEAccountingSandbox
) -> None:
    company = eaccounting.create_company()
    state = eaccounting.state.company(company.company_id)
    assert state is not None
    factoring = BankAccount(str(uuid.uuid4()), "Factoring", "", 1512, "SEK")
    with eaccounting.state.lock:
        state.bank_accounts[factoring.id] = factoring
    customer = eaccounting.seed_customer(company.company_id)
    invoice = eaccounting.seed_invoice(company.company_id, customer["Id"])
    tenant = new_tenant()
    grant = {
        "client_id": company.client_id,
        "client_secret": company.client_secret,
        "refresh_token": company.refresh_token,
        "token_url": eaccounting.token_url,
    }
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            tenant,
            f"{tenant}-ea",
            system="visma-eaccounting",
            base_url=eaccounting.base_url,
            token_sealed=box.seal(json.dumps(grant)),
        )
    )
    with eaccounting.admin() as admin:
        admin.inject_fault(
            company.company_id,
            EAccountingFault(
                status=500, path_prefix="/v2/customerinvoices", method="POST", after_commit=True
            ),
        )
    ref = source(
        f"{tenant}-ea",
        str(invoice["InvoiceNumber"]),
        SourceSystem.VISMA_EACCOUNTING,
        document_id=invoice["Id"],
    )
    await harness.publish(
        transferred(tenant, source_ref=ref, amount=Decimal("125.00"), fee_amount=Decimal("2.50"))
    )

    [job], out = await finish(harness, tenant)

    assert job["state"] == "done", job["last_error"]
    assert job["attempts"] == 2
    with eaccounting.admin() as admin:
        [payment] = admin.payments(company.company_id)
    assert (payment["PaymentAmount"], payment["FactoringFeeAmount"]) == (122.5, 2.5)
    assert payment["FactoringFeeAccountNumber"] == 6064
    assert payment["CompanyBankAccountId"] == factoring.id
    [posted] = out.of(LedgerEntryPosted)
    assert (posted.amount, posted.fee_amount, posted.account) == (
        Decimal("125.00"),
        Decimal("2.50"),
        "1512",
    )
    assert posted.erp_reference.endswith("remaining 0")  # adopted: the API lists no payments


async def test_visma_net_closes_the_invoice_by_a_payment_and_the_credit_note_by_a_refund(
    harness: ServiceHarness[Deps], box: SecretBox, visma_net: RunningVismaNetSandbox
) -> None:
    company = visma_net.create_company()
    with visma_net.admin() as admin:
        customer = admin.seed_customer(company)
        invoice = admin.seed_invoice(company, customer)
        note = admin.seed_credit_note(company, customer, [(invoice, Decimal(25))])
        admin.inject_fault(
            company,
            VismaNetFault(
                status=500, path_prefix="/v1/customerPayment", method="POST", after_commit=True
            ),
        )
    tenant = new_tenant()
    credentials = {"token": company.token, "company_id": company.company_id}
    norway = dataclasses.replace(DEFAULT_ACCOUNTS["NO"])
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            tenant,
            f"{tenant}-vn",
            system="visma-net",
            accounts=norway,
            base_url=visma_net.base_url,
            token_sealed=box.seal(json.dumps(credentials)),
        )
    )
    connection = f"{tenant}-vn"
    await harness.publish(
        transferred(
            tenant,
            source_ref=source(connection, invoice, SourceSystem.VISMA_NET),
            amount=Decimal(100),
            currency="NOK",
            fee_amount=Decimal("1.50"),
        )
    )
    await harness.publish(
        transferred(
            tenant,
            source_ref=source(connection, note, SourceSystem.VISMA_NET),
            amount=Decimal(100),
            currency="NOK",
            document_type=DocumentType.CREDIT_NOTE,
        )
    )

    jobs, out = await finish(harness, tenant)

    assert [j["state"] for j in jobs] == ["done", "done"], jobs
    documents = {
        invoice: read(visma_net.api_url, f"customerinvoice/{invoice}", company.headers),
        note: read(visma_net.api_url, f"customerCreditNote/{note}", company.headers),
    }
    assert {n: (d["balance"], d["status"]) for n, d in documents.items()} == {
        invoice: (0, "Closed"),
        note: (0, "Closed"),
    }
    payments = read(visma_net.api_url, "customerPayment", company.headers)
    assert sorted((p["type"], p["status"]) for p in payments) == [
        ("Payment", "Closed"),
        ("Refund", "Closed"),
    ]
    assert all(p["cashAccount"] == "1510" for p in payments)
    posted = out.of(LedgerEntryPosted)
    assert sorted(str(p.amount) for p in posted) == ["-100", "100"]
    assert all(p.fee_amount is None for p in posted)  # Visma.net books no fee


async def test_financing_books_the_advance_and_the_buyers_payment_clears_it(
    harness: ServiceHarness[Deps], box: SecretBox, fortnox: RunningFortnoxSandbox
) -> None:
    company = fortnox.create_company()
    number, total = sandbox_invoice(fortnox.base_url, company.headers)
    tenant = new_tenant()
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            tenant, f"{tenant}-fx", base_url=fortnox.base_url, token_sealed=box.seal(company.token)
        )
    )
    ref = source(f"{tenant}-fx", number)
    await harness.publish(
        transferred(
            tenant,
            invoice_id="inv_fin",
            source_ref=ref,
            amount=total,
            agreement_kind=AgreementKind.FINANCING,
            advance_amount=Decimal("1000.00"),
            fee_amount=Decimal("20.00"),
        )
    )
    _, out = await finish(harness, tenant)
    [advance] = out.of(LedgerEntryPosted)
    assert advance.entry_kind is EntryKind.FINANCING_ADVANCE
    series, voucher = advance.erp_reference[0], advance.erp_reference[1:]
    rows = read(fortnox.api_url, f"vouchers/{series}/{voucher}", company.headers)["Voucher"][
        "VoucherRows"
    ]
    assert [(r["Account"], r["Debit"], r["Credit"]) for r in rows] == [
        (1930, 1000, 0),
        (2840, 0, 1000),
    ]
    assert sandbox_payments(fortnox.base_url, company.headers, number) == []  # not closed yet

    await harness.publish(
        payment_received(
            tenant,
            invoice_id="inv_fin",
            source_ref=ref,
            payment_id="bank-1",
            amount=total,
            paid_on=stockholm_today(dt.datetime.now(dt.UTC)),  # as the sandbox dated the invoice
        )
    )
    _, out = await finish(harness, tenant)
    [closed] = out.of(LedgerEntryPosted)
    [payment] = sandbox_payments(fortnox.base_url, company.headers, number)
    assert (payment["Amount"], payment["ModeOfPaymentAccount"]) == (float(total - 1020), 1930)
    assert sorted((w["AccountNumber"], w["Amount"]) for w in payment["WriteOffs"]) == [
        (2840, 1000),
        (6064, 20),
    ]
    assert closed.fee_amount == Decimal("20.00")
