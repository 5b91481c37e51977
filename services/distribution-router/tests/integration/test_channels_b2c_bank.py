"""B2cBankSender against the bank e-invoice sandbox: the registry, the e-invoice, refusals."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from distribution_router.adapters.channels.b2c_bank import B2cBankSender
from distribution_router.adapters.channels.base import (
    Outgoing,
    PermanentSendError,
    TransientSendError,
)
from distribution_router.testing.invoices import one_line_invoice
from nordflow_sandboxes.b2c_bank.testing import (
    B2cBankSandboxAdmin,
    FaultSpec,
    RunningB2cBankSandbox,
    SandboxAccount,
    ocr_reference,
    random_swedish_personal_number,
    running_b2c_bank_sandbox,
)
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    Invoice,
    Party,
    PartyType,
    PaymentInstructions,
)
from pydantic import SecretStr

pytestmark = pytest.mark.integration

ISSUER_ORG = "556732-1707"
BANKGIRO = "5555-5551"
PDF = b"%PDF-1.7\n" + secrets.token_bytes(512) + b"\n%%EOF\n"


def invoice(
    *,
    ocr: str | None = None,
    payable: str = "1250.00",
    document_type: DocumentType = DocumentType.INVOICE,
    due_in_days: int | None = 30,
    account_scheme: str | None = "SE:BANKGIRO",
) -> Invoice:
    return one_line_invoice(
        tenant_id="t-b2c",
        seller=Party(name="Säljare AB", company_id=ISSUER_ORG, address=Address(country_code="SE")),
        buyer=Party(
            name="Anna Andersson", party_type=PartyType.PRIVATE, address=Address(country_code="SE")
        ),
        payable=payable,
        description="Städning",
        document_type=document_type,
        issue_date=dt.datetime.now(dt.UTC).date(),
        due_in_days=due_in_days,
        payment=PaymentInstructions(
            payment_reference=ocr if ocr is not None else ocr_reference(),
            account_id=BANKGIRO,
            account_scheme=account_scheme,
        ),
    )


def outgoing(personal_number: str, inv: Invoice | None = None) -> Outgoing:
    inv = inv or invoice()
    return Outgoing(
        idempotency_key=f"t-b2c:{inv.invoice_id}:b2c_bank",
        tenant_id=inv.tenant_id,
        invoice=inv,
        recipient=personal_number,
        document=PDF,
        content_type="application/pdf",
        filename=f"faktura-{inv.number}.pdf",
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningB2cBankSandbox]:
    with running_b2c_bank_sandbox() as running:
        yield running


@pytest.fixture
def admin(sandbox: RunningB2cBankSandbox) -> Iterator[B2cBankSandboxAdmin]:
    with B2cBankSandboxAdmin(sandbox.base_url) as client:
        yield client


@pytest.fixture
def account(sandbox: RunningB2cBankSandbox) -> SandboxAccount:
    return sandbox.create_account(organisation_number=ISSUER_ORG)


@pytest.fixture
async def sender(
    sandbox: RunningB2cBankSandbox, account: SandboxAccount
) -> AsyncIterator[B2cBankSender]:
    adapter = B2cBankSender(sandbox.api_url, SecretStr(account.token), timeout=5.0)
    yield adapter
    await adapter.aclose()


@pytest.fixture
def consumer(admin: B2cBankSandboxAdmin) -> str:
    """A consumer registered for e-invoices from every issuer."""
    personal_number = random_swedish_personal_number()
    admin.register_consumer(personal_number)
    return personal_number


async def test_the_registry_says_who_takes_e_invoices_from_us(
    sender: B2cBankSender, admin: B2cBankSandboxAdmin, consumer: str
) -> None:
    assert await sender.registered(consumer)
    assert not await sender.registered(random_swedish_personal_number())
    assert not await sender.registered("19800101-0000")  # not a valid personal number

    blocking = random_swedish_personal_number()
    admin.register_consumer(blocking, blocked_issuers=[ISSUER_ORG])
    assert not await sender.registered(blocking)
    selective = random_swedish_personal_number()
    admin.register_consumer(selective, accepts_all_issuers=False, accepted_issuers=[ISSUER_ORG])
    assert await sender.registered(selective)


async def test_an_e_invoice_arrives_once_with_the_payment_prefilled(
    sender: B2cBankSender, admin: B2cBankSandboxAdmin, account: SandboxAccount, consumer: str
) -> None:
    out = outgoing(consumer)
    receipt = await sender.send(out)

    assert receipt.channel is Channel.B2C_BANK
    assert receipt.reference.startswith("ein_")
    assert receipt.cost is None
    [einvoice] = admin.deliveries(account.token)
    assert einvoice["id"] == receipt.reference
    assert einvoice["payment_reference"] == out.invoice.payment.payment_reference
    assert einvoice["amount"] == "1250.00"
    assert einvoice["currency"] == "SEK"
    assert einvoice["due_date"] == str(out.invoice.due_date)
    assert einvoice["payee_account"] == {"type": "bankgiro", "number": BANKGIRO}
    assert einvoice["invoice_number"] == out.invoice.number
    assert einvoice["client_reference"] == out.idempotency_key
    assert einvoice["has_pdf"] is True
    body = json.loads(admin.delivery_content(account.token, receipt.reference))
    assert base64.b64decode(body["pdf"]) == PDF


async def test_the_same_key_twice_is_one_e_invoice(
    sender: B2cBankSender, admin: B2cBankSandboxAdmin, account: SandboxAccount, consumer: str
) -> None:
    out = outgoing(consumer)
    assert await sender.send(out) == await sender.send(out)
    assert len(admin.deliveries(account.token)) == 1


async def test_lookup_finds_a_completed_send_and_nothing_for_an_unknown_key(
    sender: B2cBankSender, consumer: str
) -> None:
    out = outgoing(consumer)
    assert await sender.lookup(out.idempotency_key) is None
    receipt = await sender.send(out)
    assert await sender.lookup(out.idempotency_key) == receipt
    assert await sender.lookup(f"unknown:{uuid.uuid4()}") is None


@pytest.mark.parametrize("status", [429, 502, 503])
async def test_a_bank_fault_is_transient(
    sender: B2cBankSender,
    admin: B2cBankSandboxAdmin,
    account: SandboxAccount,
    consumer: str,
    status: int,
) -> None:
    admin.inject_fault(
        account.token,
        FaultSpec(status=status, path_prefix="/api/v1/einvoices", method="POST"),  # type: ignore[arg-type]
    )
    out = outgoing(consumer)
    with pytest.raises(TransientSendError, match=f"HTTP {status}"):
        await sender.send(out)
    assert admin.deliveries(account.token) == []
    await sender.send(out)
    assert len(admin.deliveries(account.token)) == 1


async def test_a_registry_fault_is_transient_too(
    sender: B2cBankSender, admin: B2cBankSandboxAdmin, account: SandboxAccount, consumer: str
) -> None:
    admin.inject_fault(account.token, FaultSpec(status=500, path_prefix="/api/v1/recipients"))
    with pytest.raises(TransientSendError):
        await sender.registered(consumer)


async def test_a_timeout_after_the_bank_stored_it_is_found_by_lookup(
    sandbox: RunningB2cBankSandbox,
    admin: B2cBankSandboxAdmin,
    account: SandboxAccount,
    consumer: str,
) -> None:
    impatient = B2cBankSender(sandbox.api_url, SecretStr(account.token), timeout=0.3)
    admin.inject_fault(
        account.token,
        FaultSpec(status=None, delay_seconds=1.0, after_commit=True, method="POST"),
    )
    out = outgoing(consumer)
    try:
        with pytest.raises(TransientSendError, match="no answer") as caught:
            await impatient.send(out)
        assert caught.value.maybe_delivered
        found = await impatient.lookup(out.idempotency_key)
    finally:
        await impatient.aclose()
    [einvoice] = admin.deliveries(account.token)
    assert found is not None
    assert found.reference == einvoice["id"]


async def test_a_consumer_no_longer_registered_falls_back_to_paper(
    sender: B2cBankSender, admin: B2cBankSandboxAdmin, account: SandboxAccount, consumer: str
) -> None:
    admin.unregister_consumer(consumer)
    with pytest.raises(PermanentSendError, match="not registered") as caught:
        await sender.send(outgoing(consumer))
    assert caught.value.fallback

    blocking = random_swedish_personal_number()
    admin.register_consumer(blocking, blocked_issuers=[ISSUER_ORG])
    with pytest.raises(PermanentSendError, match="does not accept") as blocked:
        await sender.send(outgoing(blocking))
    assert blocked.value.fallback
    assert admin.deliveries(account.token) == []


@pytest.mark.parametrize(
    ("inv", "field"),
    [
        (lambda: invoice(ocr=""), "payment.payment_reference"),
        (lambda: invoice(document_type=DocumentType.CREDIT_NOTE), "totals.payable"),
        (lambda: invoice(due_in_days=None), "due_date"),
        (lambda: invoice(account_scheme="IBAN"), "payment.account_scheme"),
    ],
)
async def test_an_invoice_the_bank_cannot_prefill_falls_back_to_paper(
    sender: B2cBankSender,
    admin: B2cBankSandboxAdmin,
    account: SandboxAccount,
    consumer: str,
    inv: object,
    field: str,
) -> None:
    with pytest.raises(PermanentSendError, match=field) as caught:
        await sender.send(outgoing(consumer, inv()))  # type: ignore[operator]
    assert caught.value.fallback
    assert admin.deliveries(account.token) == []


async def test_a_value_the_bank_refuses_is_permanent_and_names_the_invoice_field(
    sender: B2cBankSender, admin: B2cBankSandboxAdmin, account: SandboxAccount, consumer: str
) -> None:
    valid = ocr_reference("12345")
    wrong_check_digit = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    with pytest.raises(PermanentSendError, match=r"payment\.payment_reference") as caught:
        await sender.send(outgoing(consumer, invoice(ocr=wrong_check_digit)))
    assert not caught.value.fallback
    assert admin.deliveries(account.token) == []


async def test_a_wrong_token_is_transient_and_never_shown(
    sandbox: RunningB2cBankSandbox, consumer: str
) -> None:
    token = "bank-" + secrets.token_urlsafe(16)
    adapter = B2cBankSender(sandbox.api_url, SecretStr(token))
    try:
        with pytest.raises(TransientSendError, match="credentials") as caught:
            await adapter.send(outgoing(consumer))
        with pytest.raises(TransientSendError) as registry:
            await adapter.registered(consumer)
    finally:
        await adapter.aclose()
    assert token not in f"{caught.value} {caught.value!r} {registry.value} {adapter!r}"
