"""Credited invoices and exchange rates come through the real Visma clients from the sandboxes.

eAccounting names the credited invoice by id (``ReferringInvoiceId``) and states base-currency
amounts next to the invoice-currency ones at ``CurrencyRate``; Visma.net names it in a credit
note's ``applications`` and states base amounts at ``exchangeRate``. What the clients return
here is what the mapper reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from nordflow_connectors.oauth import InMemoryTokenStore, OAuthSession, Tokens
from nordflow_connectors.visma_eaccounting import VismaEAccountingClient
from nordflow_connectors.visma_net import VismaNetClient
from nordflow_sandboxes.visma_eaccounting.testing import (
    AsyncVismaEAccountingSandboxAdmin,
    RunningVismaEAccountingSandbox,
    SandboxCompany,
    running_visma_eaccounting_sandbox,
)
from nordflow_sandboxes.visma_net import VismaNetState
from nordflow_sandboxes.visma_net.testing import (
    AsyncVismaNetSandboxAdmin,
    LineSpec,
    RunningVismaNetSandbox,
    running_visma_net_sandbox,
)
from nordflow_sandboxes.visma_net.testing import SandboxCompany as VismaNetCompany
from pydantic import SecretStr

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------------ eAccounting


@pytest.fixture(scope="module")
def ea_sandbox() -> Iterator[RunningVismaEAccountingSandbox]:
    with running_visma_eaccounting_sandbox() as running:
        yield running


@pytest.fixture
def ea_company(ea_sandbox: RunningVismaEAccountingSandbox) -> SandboxCompany:
    return ea_sandbox.create_company()


@pytest.fixture
async def ea_client(
    ea_sandbox: RunningVismaEAccountingSandbox, ea_company: SandboxCompany
) -> AsyncIterator[VismaEAccountingClient]:
    store = InMemoryTokenStore(
        Tokens(SecretStr("none-yet"), SecretStr(ea_company.refresh_token), expires_at=EPOCH)
    )
    session = OAuthSession(
        ea_sandbox.token_url, ea_company.client_id, SecretStr(ea_company.client_secret), store
    )
    client = VismaEAccountingClient(ea_sandbox.base_url, session)
    try:
        yield client
    finally:
        await client.aclose()
        await session.aclose()


async def test_an_eaccounting_credit_invoice_names_its_original_by_id(
    ea_sandbox: RunningVismaEAccountingSandbox,
    ea_company: SandboxCompany,
    ea_client: VismaEAccountingClient,
) -> None:
    customer = ea_sandbox.seed_customer(ea_company.company_id)
    invoice = ea_sandbox.seed_invoice(ea_company.company_id, customer["Id"])
    async with AsyncVismaEAccountingSandboxAdmin(ea_sandbox.base_url) as admin:
        credit = await admin.credit_invoice(ea_company.company_id, invoice["Id"])

    fetched = await ea_client.invoice(credit["Id"])
    original = await ea_client.invoice(fetched["ReferringInvoiceId"])

    assert fetched["IsCreditInvoice"] is True
    assert fetched["ReferringInvoiceId"] == invoice["Id"]
    assert fetched["TotalAmountInvoiceCurrency"] == -invoice["TotalAmountInvoiceCurrency"]
    assert (original["InvoiceNumber"], original["InvoiceDate"]) == (
        invoice["InvoiceNumber"],
        invoice["InvoiceDate"],
    )
    assert (await ea_client.invoice(invoice["Id"]))["ReferringInvoiceId"] is None


async def test_an_eaccounting_eur_invoice_carries_its_rate_and_base_vat(
    ea_sandbox: RunningVismaEAccountingSandbox,
    ea_company: SandboxCompany,
    ea_client: VismaEAccountingClient,
) -> None:
    customer = ea_sandbox.seed_customer(ea_company.company_id, CurrencyCode="EUR")
    invoice = ea_sandbox.seed_invoice(
        ea_company.company_id, customer["Id"], CurrencyRate=Decimal("11.4563")
    )

    fetched = await ea_client.invoice(invoice["Id"])

    assert (fetched["CurrencyCode"], fetched["CurrencyRate"]) == ("EUR", 11.4563)
    assert fetched["TotalVatAmountInvoiceCurrency"] == 25
    assert Decimal(str(fetched["TotalVatAmount"])) == Decimal("286.41")  # 25 x 11.4563


# -------------------------------------------------------------------------- Visma.net


@pytest.fixture(scope="module")
def vn_sandbox() -> Iterator[RunningVismaNetSandbox]:
    with running_visma_net_sandbox(VismaNetState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture
def vn_company(vn_sandbox: RunningVismaNetSandbox) -> VismaNetCompany:
    return vn_sandbox.create_company()


@pytest.fixture
async def vn_admin(vn_sandbox: RunningVismaNetSandbox) -> AsyncIterator[AsyncVismaNetSandboxAdmin]:
    async with AsyncVismaNetSandboxAdmin(vn_sandbox.base_url) as client:
        yield client


@pytest.fixture
async def vn_client(
    vn_sandbox: RunningVismaNetSandbox, vn_company: VismaNetCompany
) -> AsyncIterator[VismaNetClient]:
    async with VismaNetClient(
        vn_sandbox.base_url, SecretStr(vn_company.token), vn_company.company_id
    ) as client:
        yield client


async def test_a_visma_net_credit_note_names_the_invoice_it_credits(
    vn_admin: AsyncVismaNetSandboxAdmin,
    vn_company: VismaNetCompany,
    vn_client: VismaNetClient,
) -> None:
    customer = await vn_admin.seed_customer(vn_company)
    number = await vn_admin.seed_invoice(vn_company, customer, documentDate="2025-03-01")
    credit = await vn_admin.seed_credit_note(
        vn_company,
        customer,
        [(number, Decimal(125))],
        documentDate="2025-03-05",
        origInvoiceDate="2025-03-01",
    )

    note = await vn_client.invoice(credit)  # credit notes are CustomerInvoice documents too
    invoice = await vn_client.invoice(number)

    assert note["documentType"] == "CreditNote"
    assert [(a["docType"], a["refNbr"], a["amountPaid"]) for a in note["applications"]] == [
        ("Invoice", number, 125)
    ]
    assert dt.date.fromisoformat(note["origInvoiceDate"][:10]) == dt.date(2025, 3, 1)
    assert (invoice["status"], invoice["balance"]) == ("Closed", 0)
    assert ("CreditNote", credit) in {(a["docType"], a["refNbr"]) for a in invoice["applications"]}


async def test_visma_net_listing_includes_credit_notes(
    vn_admin: AsyncVismaNetSandboxAdmin,
    vn_company: VismaNetCompany,
    vn_client: VismaNetClient,
) -> None:
    customer = await vn_admin.seed_customer(vn_company)
    number = await vn_admin.seed_invoice(vn_company, customer)
    credit = await vn_admin.seed_credit_note(vn_company, customer, [(number, Decimal(50))])

    listed = [
        (item["referenceNumber"], item["documentType"])
        async for item in vn_client.invoices_modified_since(datetime(2000, 1, 1, tzinfo=UTC))
    ]

    assert (number, "Invoice") in listed
    assert (credit, "CreditNote") in listed


async def test_a_visma_net_eur_invoice_carries_its_rate_and_base_amounts(
    vn_admin: AsyncVismaNetSandboxAdmin,
    vn_company: VismaNetCompany,
    vn_client: VismaNetClient,
) -> None:
    customer = await vn_admin.seed_customer(vn_company)
    number = await vn_admin.seed_invoice(
        vn_company,
        customer,
        (LineSpec(unit_price=Decimal(1000)),),
        currencyId="EUR",
        exchangeRate=Decimal("11.5"),
    )

    fetched = await vn_client.invoice(number)

    assert (fetched["currencyId"], fetched["exchangeRate"]) == ("EUR", 11.5)
    assert (fetched["vatTotalInCurrency"], fetched["vatTotal"]) == (250, 2875)
    assert (fetched["amountInCurrency"], fetched["amount"]) == (1250, 14375)
    tax = fetched["taxDetails"][0]
    assert (tax["vatAmountInCurrency"], tax["vatAmount"]) == (250, 2875)
