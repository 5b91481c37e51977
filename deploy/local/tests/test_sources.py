"""Sample data in the Visma eAccounting, Visma.net and Sirvoy sandboxes, mapped by the real mapper.

Each sandbox runs in-process on loopback; the documents are read back with the production
connectors, as erp-poller reads them, and mapped with `mapper.service.map_document`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from erp_poller.domain.profiles import tenant_related
from mapper.service import map_document
from nordflow_connectors.oauth import InMemoryTokenStore, OAuthSession, Tokens
from nordflow_connectors.sirvoy import SirvoyClient
from nordflow_connectors.visma_eaccounting import VismaEAccountingClient
from nordflow_connectors.visma_net import VismaNetClient
from nordflow_local.sources import (
    PROFILES,
    SIRVOY,
    VISMA_EACCOUNTING,
    VISMA_NET,
    SourceSampleError,
    create_sirvoy_invoices,
    create_visma_eaccounting_invoices,
    create_visma_net_invoices,
    register_sirvoy_webhook,
    visma_eaccounting_company,
)
from nordflow_sandboxes.sirvoy.testing import (
    RunningSirvoySandbox,
    running_sirvoy_sandbox,
    running_webhook_receiver,
)
from nordflow_sandboxes.visma_eaccounting.testing import (
    RunningVismaEAccountingSandbox,
    running_visma_eaccounting_sandbox,
)
from nordflow_sandboxes.visma_net.testing import RunningVismaNetSandbox, running_visma_net_sandbox
from nordflow_schemas.common import SourceRef, SourceSystem, canonical_invoice_id
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice, PartyType
from pydantic import SecretStr

EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def eaccounting() -> Iterator[RunningVismaEAccountingSandbox]:
    with running_visma_eaccounting_sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def visma_net() -> Iterator[RunningVismaNetSandbox]:
    with running_visma_net_sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def sirvoy() -> Iterator[RunningSirvoySandbox]:
    with running_sirvoy_sandbox() as sandbox:
        yield sandbox


def fetched(
    system: SourceSystem,
    document_id: str,
    payload: dict[str, Any],
    related: dict[str, dict[str, Any]],
    kind: DocumentKind = DocumentKind.INVOICE,
) -> ErpDocumentFetched:
    """The event erp-poller would publish for this document (with the tenant's profile)."""
    return ErpDocumentFetched(
        tenant_id="demo",
        invoice_id=canonical_invoice_id("demo", system.value, "c1", document_id),
        source=SourceRef(system=system, connection_id="c1", document_id=document_id),
        kind=kind,
        version="v1",
        fetched_at=dt.datetime.now(dt.UTC),
        payload=payload,
        related={**related, **tenant_related(PROFILES[system.value])},
    )


def invoice_of(result: Invoice | list[ValidationIssue]) -> Invoice:
    assert isinstance(result, Invoice), result
    return result


def assert_bad_org_number(result: Invoice | list[ValidationIssue]) -> None:
    """Rejected for the organisation number (and for a VAT number built from it, if any)."""
    assert isinstance(result, list), result
    named = {(i.field, i.rule) for i in result}
    assert ("buyer.company_id", "NF-ORGNR") in named
    assert named <= {("buyer.company_id", "NF-ORGNR"), ("buyer.vat_id", "NF-VATNR")}


# --------------------------------------------------------------- Visma eAccounting


def eaccounting_client(company: dict[str, Any]) -> VismaEAccountingClient:
    """The poller's client, on the company's first refresh token."""
    tokens = Tokens(
        access_token=SecretStr(""),
        refresh_token=SecretStr(company["refresh_token"]),
        expires_at=EPOCH,
    )
    oauth = OAuthSession(
        company["token_url"],
        company["client_id"],
        SecretStr(company["client_secret"]),
        InMemoryTokenStore(tokens),
    )
    return VismaEAccountingClient(company["api_base_url"], oauth)


async def test_visma_eaccounting_company_has_what_the_poller_connection_needs(
    eaccounting: RunningVismaEAccountingSandbox,
) -> None:
    company = await visma_eaccounting_company(
        eaccounting.base_url, "Demo Bygg AB", organisation_number="556036-0793"
    )
    assert company["name"] == "Demo Bygg AB"
    assert company["token_url"] == eaccounting.token_url
    assert company["api_base_url"] == eaccounting.base_url
    for key in ("company_id", "client_id", "client_secret", "refresh_token", "bank_account_id"):
        assert company[key]
    assert set(company["articles"]) >= {"25", "12", "6"}


async def test_visma_eaccounting_invoices_map_and_the_bad_one_names_the_org_number(
    eaccounting: RunningVismaEAccountingSandbox,
) -> None:
    company = await visma_eaccounting_company(eaccounting.base_url, "Demo Bygg AB")
    ids = await create_visma_eaccounting_invoices(eaccounting.base_url, company, 4, bad=1)
    assert len(ids) == len(set(ids)) == 5

    # The poller's refresh token was never redeemed by the writer: it still opens the API.
    client = eaccounting_client(company)
    try:
        listed = [item["Id"] async for item in client.invoices_modified_since(EPOCH)]
        assert listed == ids
        results = []
        for invoice_id in ids:
            doc = await client.invoice(invoice_id)
            customer = await client.customer(doc["CustomerId"])
            event = fetched(SourceSystem.VISMA_EACCOUNTING, invoice_id, doc, {"customer": customer})
            results.append(map_document(event))
    finally:
        await client.aclose()

    good = [invoice_of(r) for r in results[:4]]
    assert_bad_org_number(results[4])
    assert {line.vat_rate for i in good for line in i.lines} == {
        Decimal(25),
        Decimal(12),
        Decimal(6),
    }
    assert all(len(i.vat_breakdown) == 3 for i in good)
    buyers = {i.buyer.name: i.buyer for i in good}
    assert buyers["Fjällbygg Norr AB"].company_id == "556123-4567"
    assert buyers["Fjällbygg Norr AB"].email == "faktura@fjallbygg.example"
    assert buyers["Lena Holm"].party_type is PartyType.PRIVATE
    gln = buyers["Sjöfartsgrossisten AB"].electronic_address
    assert gln is not None
    assert (gln.scheme, gln.value) == ("0088", "7359999123454")
    assert all(i.payment.payment_reference for i in good)


async def test_visma_eaccounting_errors_name_the_sandbox_and_status(
    eaccounting: RunningVismaEAccountingSandbox,
) -> None:
    company = await visma_eaccounting_company(eaccounting.base_url, "Demo Bygg AB")
    unknown = {**company, "company_id": "no-such-company"}
    with pytest.raises(SourceSampleError, match=r"visma-eaccounting sandbox: .*HTTP 404") as info:
        await create_visma_eaccounting_invoices(eaccounting.base_url, unknown, 1)
    assert info.value.sandbox == VISMA_EACCOUNTING
    assert company["client_secret"] not in str(info.value)


# ----------------------------------------------------------------------- Visma.net


async def test_visma_net_invoices_are_released_carry_a_kid_and_map(
    visma_net: RunningVismaNetSandbox,
) -> None:
    # As `nordflow-sandbox visma-net --token T` does: one company, no id given to the writer.
    company = visma_net.create_company("Demo Fjord AS", token="demo-visma-net-token")
    numbers = await create_visma_net_invoices(visma_net.base_url, company.token, None, 4, bad=1)
    assert len(numbers) == len(set(numbers)) == 5

    client = VismaNetClient(visma_net.base_url, SecretStr(company.token), company.company_id)
    try:
        listed = [item["referenceNumber"] async for item in client.invoices_modified_since(EPOCH)]
        assert sorted(listed) == sorted(numbers)
        docs, results = [], []
        for number in numbers:
            doc = await client.invoice(number)
            customer = await client.customer(doc["customer"]["number"])
            docs.append(doc)
            results.append(
                map_document(fetched(SourceSystem.VISMA_NET, number, doc, {"customer": customer}))
            )
    finally:
        await client.aclose()

    assert {doc["status"] for doc in docs} == {"Open"}
    good = [invoice_of(r) for r in results[:4]]
    assert_bad_org_number(results[4])
    assert {line.vat_rate for i in good for line in i.lines} == {
        Decimal(25),
        Decimal(15),
        Decimal(12),
    }
    assert all(i.payment.payment_reference for i in good)
    assert good[0].payment.payment_reference == "0100000000016"  # ours: customer + no. + MOD10
    assert good[0].buyer.company_id == "923456783"
    assert good[0].buyer.electronic_address is not None
    assert good[0].buyer.electronic_address.scheme == "0192"
    assert good[2].buyer.company_id is None  # the private customer
    assert all(i.buyer.address.city and i.buyer.address.country_code == "NO" for i in good)


async def test_visma_net_errors_name_the_sandbox_and_status(
    visma_net: RunningVismaNetSandbox,
) -> None:
    company = visma_net.create_company("Demo Fjord AS")
    with pytest.raises(SourceSampleError, match=r"visma-net sandbox: .*HTTP 400") as info:
        await create_visma_net_invoices(visma_net.base_url, company.token, "not-granted", 1)
    assert info.value.sandbox == VISMA_NET
    assert company.token not in str(info.value)


# -------------------------------------------------------------------------- Sirvoy


async def test_sirvoy_invoices_credit_payment_and_webhooks(sirvoy: RunningSirvoySandbox) -> None:
    account = sirvoy.create_account("Hotell Demo AB")
    with running_webhook_receiver() as receiver:
        await register_sirvoy_webhook(sirvoy.base_url, account.token, receiver.url)
        ids = await create_sirvoy_invoices(sirvoy.base_url, account.token, 3)
        with sirvoy.admin() as admin:
            assert admin.flush(account.token)
        # Every booking created, invoiced, paid or credited was called back.
        assert len(receiver.received) >= 3 * 2 + 2

    assert len(ids) == len(set(ids)) == 4
    client = SirvoyClient(sirvoy.base_url, SecretStr(account.token))
    try:
        changes = await client.changes_since(None)
        assert sorted(str(i.invoice_id) for i in changes.invoices) == sorted(ids)
        [payment] = changes.payments
        assert payment.invoice_id == int(ids[2])
        results = []
        for invoice_id in ids:
            # Raw records, as erp-poller's Sirvoy source passes them on.
            document = await client.invoice_record(invoice_id)
            booking = await client.booking_record(document["bookingId"])
            credit = document["isCreditInvoice"]
            kind = DocumentKind.CREDIT_NOTE if credit else DocumentKind.INVOICE
            event = fetched(SourceSystem.SIRVOY, invoice_id, document, {"booking": booking}, kind)
            results.append(map_document(event))
    finally:
        await client.aclose()

    invoices = [invoice_of(r) for r in results]
    original, company, paid, credit = invoices
    assert original.buyer.party_type is PartyType.PRIVATE
    assert (company.buyer.name, company.buyer.company_id) == (
        "Konferensbolaget Väst AB",
        "559234-5671",
    )
    assert company.buyer.party_type is PartyType.COMPANY
    assert paid.outstanding_amount == Decimal(0)
    assert credit.document_type is DocumentType.CREDIT_NOTE
    assert credit.preceding_invoice is not None
    assert credit.preceding_invoice.number == original.number
    assert credit.totals.payable == original.totals.payable
    assert {line.vat_rate for i in invoices for line in i.lines} <= {Decimal(12), Decimal(25)}


async def test_sirvoy_errors_name_the_sandbox_and_status(sirvoy: RunningSirvoySandbox) -> None:
    with pytest.raises(SourceSampleError, match=r"sirvoy sandbox: .*HTTP 401") as info:
        await create_sirvoy_invoices(sirvoy.base_url, "not-a-valid-token", 1)
    assert info.value.sandbox == SIRVOY
