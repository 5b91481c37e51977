"""erp.document.fetched through mapper's consumer on the real PostgreSQL (ServiceHarness: the
batch processing the consumer runs, inbox, outbox and dead letters, without a broker):
documents from the Fortnox sandbox become invoice.created / rejected and payment.received."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from mapper.adapters.repository import PgReferencePolicyRepository
from mapper.deps import Deps
from mapper.domain.references import TenantReferencePolicy
from mapper.testing import SWEDISH_SELLER, fetched, fortnox_invoice
from nordflow_references import OcrControl, ReferenceKind, ReferencePolicy
from nordflow_runtime.personal_data import PersonalData
from nordflow_runtime.tenant_profiles import PgTenantProfiles
from nordflow_runtime.testing import PERSONAL_DATA_KEY, ServiceHarness
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox
from nordflow_sandboxes.kit.values import stockholm_today
from nordflow_schemas.common import SourceSystem, canonical_invoice_id
from nordflow_schemas.envelope import encode, envelope
from nordflow_schemas.events import (
    DocumentKind,
    ErpDocumentFetched,
    InvoiceCreated,
    InvoiceRejected,
    PaymentReceived,
)
from nordflow_schemas.testing import new_tenant, tenant_profile
from nordflow_schemas.topics import ERP_DOCUMENT_FETCHED
from pydantic import SecretStr

pytestmark = pytest.mark.integration

CONNECTION = "fx-1"


def document(
    tenant: str,
    kind: DocumentKind,
    document_id: str,
    payload: dict[str, Any],
    related: dict[str, dict[str, Any]],
    invoice_document: str | None = None,
) -> ErpDocumentFetched:
    """erp.document.fetched as erp-poller emits it (version = hash of the payload)."""
    return fetched(
        SourceSystem.FORTNOX,
        payload,
        kind=kind,
        related=related,
        tenant_id=tenant,
        invoice_id=canonical_invoice_id(
            tenant, "fortnox", CONNECTION, invoice_document or document_id
        ),
        connection_id=CONNECTION,
        document_id=document_id,
        document_number=document_id,
        version=hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(),
    )


async def save_policy(harness: ServiceHarness[Deps], tenant: str, **settings: Any) -> None:
    await PgReferencePolicyRepository(harness.pool).save(
        TenantReferencePolicy(tenant_id=tenant, policy=ReferencePolicy(**settings))
    )


async def fortnox_call(
    sandbox: RunningFortnoxSandbox, token: str, method: str, path: str, body: Any = None
) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=f"{sandbox.api_url}/", headers={"Authorization": f"Bearer {token}"}
    ) as http:
        response = await http.request(method, path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def sandbox_invoice(
    sandbox: RunningFortnoxSandbox, token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A customer and an invoice created in the Fortnox sandbox, as the API returns them."""
    customer = await fortnox_call(
        sandbox,
        token,
        "POST",
        "customers",
        {
            "Customer": {
                "Name": "Handgjort AB",
                "OrganisationNumber": "556677-8899",
                "EmailInvoice": "a@handgjort.example",
            }
        },
    )
    number = customer["Customer"]["CustomerNumber"]
    invoice = await fortnox_call(
        sandbox,
        token,
        "POST",
        "invoices",
        {
            "Invoice": {
                "CustomerNumber": number,
                "InvoiceRows": [
                    {"Description": "Hand made", "DeliveredQuantity": 1, "Price": 100, "VAT": 25}
                ],
            }
        },
    )
    return customer["Customer"], invoice["Invoice"]


async def test_a_document_delivered_twice_is_created_once_with_its_subject(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    event = document(tenant, DocumentKind.INVOICE, "12345", fortnox_invoice("12345"), {})
    env = envelope(event, source="/erp-poller", subject="fortnox/12345")

    out = await harness.deliver(env, env)

    [created] = out.of(InvoiceCreated)
    assert (created.invoice_id, created.invoice.seller) == (event.invoice_id, SWEDISH_SELLER.seller)
    assert [e.subject for e in out.events] == ["fortnox/12345"]
    assert (await harness.deliver(env)).events == []  # redelivered: dropped by the inbox
    again = envelope(event, source="/erp-poller")  # the same version fetched again
    assert (await harness.deliver(again)).events == []
    row = await harness.pool.fetchrow(
        "SELECT * FROM invoices WHERE invoice_id = $1", event.invoice_id
    )
    assert (row["status"], row["number"], row["created_emitted"], row["errors"]) == (
        "created",
        "12345",
        True,
        None,
    )


async def test_a_document_without_the_tenants_profile_is_rejected_naming_it(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    event = document(tenant, DocumentKind.INVOICE, "7", fortnox_invoice("7"), {})
    without = event.model_copy(update={"related": {}})

    [rejected] = (await harness.publish(without)).of(InvoiceRejected)

    assert [(e.field, e.rule) for e in rejected.errors] == [("tenant", "NF-TENANT-PROFILE")]
    errors = await harness.pool.fetchval(
        "SELECT errors FROM invoices WHERE invoice_id = $1", event.invoice_id
    )
    assert json.loads(errors)[0]["rule"] == "NF-TENANT-PROFILE"


async def test_a_policy_driven_ocr_appears_on_invoice_created(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    await save_policy(
        harness, tenant, kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.HARD_WITH_LENGTH
    )
    event = document(tenant, DocumentKind.INVOICE, "12345", fortnox_invoice("12345"), {})

    [created] = (await harness.publish(event)).of(InvoiceCreated)

    # Bankgirot's example: 12345 with length digit and Luhn digit.
    assert created.invoice.payment.payment_reference == "1234574"


async def test_a_sandbox_reference_that_breaks_the_policy_is_rejected_naming_the_field(
    harness: ServiceHarness[Deps], sandbox: RunningFortnoxSandbox
) -> None:
    company = sandbox.create_company()
    customer, invoice = await sandbox_invoice(sandbox, company.token)
    tenant = new_tenant()
    # The tenant's bank agreed 12-digit OCR references; Fortnox gave a short one.
    await save_policy(
        harness,
        tenant,
        kind=ReferenceKind.SE_OCR,
        ocr_control=OcrControl.FIXED_LENGTH,
        ocr_lengths=(12,),
    )
    number = str(invoice["DocumentNumber"])
    event = document(tenant, DocumentKind.INVOICE, number, invoice, {"customer": customer})

    [rejected] = (await harness.publish(event)).of(InvoiceRejected)

    assert [(e.field, e.rule) for e in rejected.errors] == [("payment.payment_reference", "NF-OCR")]
    assert "agreed fixed length is 12" in rejected.errors[0].message


async def test_a_sandbox_payment_delivered_twice_gives_exactly_one_payment_received(
    harness: ServiceHarness[Deps], sandbox: RunningFortnoxSandbox
) -> None:
    company = sandbox.create_company()
    _, invoice = await sandbox_invoice(sandbox, company.token)
    number = str(invoice["DocumentNumber"])
    created = await fortnox_call(
        sandbox,
        company.token,
        "POST",
        "invoicepayments",
        {
            "InvoicePayment": {
                "InvoiceNumber": int(number),
                "Amount": invoice["Total"],
                # Fortnox's dates are Swedish: the sandbox dated the invoice so.
                "PaymentDate": stockholm_today(dt.datetime.now(dt.UTC)).isoformat(),
                "ModeOfPayment": "BG",
                "ModeOfPaymentAccount": 1930,
            }
        },
    )
    payment_number = str(created["InvoicePayment"]["Number"])
    payment = (
        await fortnox_call(sandbox, company.token, "GET", f"invoicepayments/{payment_number}")
    )["InvoicePayment"]
    tenant = new_tenant()
    paid = {"invoice": {"document_id": number, "document_number": number}}
    first = document(tenant, DocumentKind.PAYMENT, payment_number, payment, paid, number)
    refetched = first.model_copy(update={"fetched_at": dt.datetime.now(dt.UTC)})
    corrected = document(
        tenant,
        DocumentKind.PAYMENT,
        payment_number,
        {**payment, "Amount": 1.0, "AmountCurrency": 1.0},
        paid,
        number,
    )
    env = envelope(first, source="/erp-poller")

    # The same record twice (redelivery), the same version fetched again, then a later
    # version whose amount changed in the source.
    out = await harness.deliver(env, env)
    later = await harness.deliver(
        envelope(refetched, source="/erp-poller"), envelope(corrected, source="/erp-poller")
    )

    [received] = out.of(PaymentReceived)
    assert later.events == []
    assert received.recorded_at_source
    assert received.invoice_id == canonical_invoice_id(tenant, "fortnox", CONNECTION, number)
    assert (received.source.document_id, received.payment_id) == (number, payment_number)
    assert received.amount == Decimal(str(invoice["Total"]))
    row = await harness.pool.fetchrow("SELECT * FROM payments WHERE tenant_id = $1", tenant)
    assert row["emitted_amount"] == Decimal(str(invoice["Total"]))
    assert row["last_amount"] == Decimal(1)
    assert row["version"] == corrected.version


async def test_unreadable_payment_data_is_dead_lettered_naming_the_fields(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    broken = {"Number": "77", "Amount": "lots", "Currency": "SEK"}
    paid = {"invoice": {"document_id": "5", "document_number": "5"}}
    event = document(tenant, DocumentKind.PAYMENT, "77", broken, paid, "5")

    out = await harness.deliver(envelope(event, source="/erp-poller"))

    assert out.events == []
    [letter] = out.dead_letters
    assert letter.origin_topic == ERP_DOCUMENT_FETCHED.name
    assert "InvoicePayment.Amount (NF-NUMBER)" in letter.reason
    assert "InvoicePayment.PaymentDate (NF-REQUIRED)" in letter.reason
    assert await harness.pool.fetchval("SELECT count(*) FROM payments") == 0


async def test_a_record_that_is_no_fetched_document_is_dead_lettered(
    harness: ServiceHarness[Deps],
) -> None:
    event = document(new_tenant(), DocumentKind.INVOICE, "1", fortnox_invoice("1"), {})
    key, _, headers = encode(envelope(event, source="/erp-poller"))

    out = await harness.deliver_records([(ERP_DOCUMENT_FETCHED.name, key, b"{not json", headers)])

    assert out.events == []
    assert len(out.dead_letters) == 1
    assert await harness.pool.fetchval("SELECT count(*) FROM invoices") == 0


async def test_tenant_updated_keeps_mappers_copy_of_the_profile(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    await harness.tenant(tenant, tenant_profile("NO"), revision=2)
    await harness.tenant(tenant, tenant_profile("SE"), revision=1)  # older: ignored
    kept = await PgTenantProfiles(harness.pool).get(tenant)
    assert kept is not None
    assert kept.country == "NO"


async def test_a_consumers_personal_number_leaves_masked_and_sealed(
    harness: ServiceHarness[Deps],
) -> None:
    """Decision 0010: every topic is read by dashboards; the number is for the services that
    hold PERSONAL_DATA_KEY only."""
    tenant = new_tenant()
    consumer = {"CustomerNumber": "7", "Type": "PRIVATE", "OrganisationNumber": "19850317-2382"}
    payload = fortnox_invoice("12346", OrganisationNumber="19850317-2382")
    out = await harness.publish(
        document(tenant, DocumentKind.INVOICE, "12346", payload, {"customer": consumer})
    )
    assert out.of(InvoiceRejected) == [], out.of(InvoiceRejected)
    [created] = out.of(InvoiceCreated)
    buyer = created.invoice.buyer
    assert buyer.company_id == "******2382"
    assert buyer.personal_number_sealed is not None
    row = await harness.pool.fetchval(
        "SELECT value FROM outbox WHERE topic = 'invoice.created' AND event_id <> ''"
    )
    assert b"198503172382" not in bytes(row).replace(b"-", b"")
    opened = PersonalData(SecretStr(PERSONAL_DATA_KEY)).open_invoice(created.invoice)
    assert opened.buyer.company_id == "19850317-2382"
