"""PeppolAccessPointSender against the access-point sandbox (with a real SMP sandbox behind it)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs

import pytest
from distribution_router.adapters.channels.base import (
    Outgoing,
    PermanentSendError,
    TransientSendError,
)
from distribution_router.adapters.channels.peppol_ap import BIS3_PROCESS, PeppolAccessPointSender
from distribution_router.adapters.smp import BIS3_CREDIT_NOTE, BIS3_INVOICE
from distribution_router.testing.invoices import one_line_invoice
from nordflow_documents.peppol import PeppolBisRenderer
from nordflow_sandboxes.peppol_ap.testing import (
    FaultSpec,
    PeppolApSandboxAdmin,
    PeppolNetwork,
    SandboxAccount,
    running_peppol_network,
    sample_invoice_xml,
)
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    ElectronicAddress,
    Invoice,
    Party,
    PaymentInstructions,
)
from pydantic import SecretStr

pytestmark = pytest.mark.integration

SELLER = "0007:5567321707"


def invoice(receiver: str, *, credit_note: bool = False) -> Invoice:
    """A small Swedish invoice whose buyer is the PEPPOL participant `receiver`."""
    scheme, _, value = receiver.partition(":")
    return one_line_invoice(
        tenant_id="t-peppol",
        seller=Party(
            name="Säljare AB",
            company_id="556732-1707",
            vat_id="SE556732170701",
            address=Address(
                lines=("Sveavägen 1",), city="Stockholm", postal_code="111 57", country_code="SE"
            ),
        ),
        buyer=Party(
            name="Köpare AB",
            company_id=value,
            electronic_address=ElectronicAddress(scheme=scheme, value=value),
            address=Address(
                lines=("Storgatan 1",), city="Göteborg", postal_code="411 01", country_code="SE"
            ),
        ),
        net="1000.00",
        description="Konsulttimme",
        document_type=DocumentType.CREDIT_NOTE if credit_note else DocumentType.INVOICE,
        payment=PaymentInstructions(
            payment_reference="12345678903", account_id="5050-1055", account_scheme="SE:BANKGIRO"
        ),
        buyer_reference="Anna",
    )


def outgoing(
    receiver: str,
    document: bytes | None = None,
    *,
    key: str | None = None,
    credit_note: bool = False,
) -> Outgoing:
    inv = invoice(receiver, credit_note=credit_note)
    return Outgoing(
        idempotency_key=key or f"t-peppol:{inv.invoice_id}:peppol",
        tenant_id=inv.tenant_id,
        invoice=inv,
        recipient=receiver,
        document=document if document is not None else PeppolBisRenderer().render(inv),
        content_type="application/xml",
        filename=f"{inv.number}.xml",
    )


def new_receiver() -> str:
    return f"0007:{secrets.randbelow(9 * 10**9) + 10**9}"


@pytest.fixture(scope="module")
def network() -> Iterator[PeppolNetwork]:
    with running_peppol_network() as running:
        yield running


@pytest.fixture
def admin(network: PeppolNetwork) -> Iterator[PeppolApSandboxAdmin]:
    with network.admin() as client:
        yield client


@pytest.fixture
def account(network: PeppolNetwork) -> SandboxAccount:
    # One account per test: its deliveries, faults and keys are the test's own.
    return network.ap.create_account(organisation_number="556732-1707")


@pytest.fixture
async def sender(
    network: PeppolNetwork, account: SandboxAccount
) -> AsyncIterator[PeppolAccessPointSender]:
    adapter = PeppolAccessPointSender(network.ap.api_url, SecretStr(account.token), timeout=5.0)
    yield adapter
    await adapter.aclose()


@pytest.fixture
def receiver(network: PeppolNetwork) -> str:
    participant = new_receiver()
    network.register(participant)
    return participant


async def test_a_send_is_recorded_once_with_the_document_and_its_envelope(
    sender: PeppolAccessPointSender,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
) -> None:
    out = outgoing(receiver)
    receipt = await sender.send(out)

    assert receipt.channel is Channel.PEPPOL
    assert receipt.reference.startswith("tx_")
    assert receipt.cost is None
    [delivery] = admin.deliveries(account.token)
    assert delivery["id"] == receipt.reference
    assert delivery["receiver"] == receiver
    assert delivery["sender"] == SELLER
    assert delivery["document_type"].endswith(BIS3_INVOICE.partition("::")[2])
    assert delivery["process"] == BIS3_PROCESS
    assert delivery["client_reference"] == out.idempotency_key
    assert delivery["idempotency_key"] == out.idempotency_key
    assert admin.delivery_content(account.token, receipt.reference) == out.document
    [request] = admin.requests(account.token)
    assert parse_qs(request["query"])["receiver"] == [receiver]


async def test_a_credit_note_goes_as_the_credit_note_document_type(
    sender: PeppolAccessPointSender,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
) -> None:
    await sender.send(outgoing(receiver, credit_note=True))
    [delivery] = admin.deliveries(account.token)
    assert delivery["document_kind"] == "CreditNote"
    assert delivery["document_type"].endswith(BIS3_CREDIT_NOTE.partition("::")[2])


async def test_the_same_key_twice_is_one_transmission(
    sender: PeppolAccessPointSender,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
) -> None:
    out = outgoing(receiver)
    first = await sender.send(out)
    second = await sender.send(out)

    assert second == first
    assert len(admin.deliveries(account.token)) == 1
    assert [r["replayed"] for r in admin.requests(account.token)] == [False, True]


async def test_a_re_rendered_document_under_the_same_key_answers_the_first_send(
    sender: PeppolAccessPointSender,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
) -> None:
    out = outgoing(receiver)
    first = await sender.send(out)
    changed = outgoing(
        receiver, out.document.replace(b"Konsulttimme", b"Konsulttimmar"), key=out.idempotency_key
    )

    assert await sender.send(changed) == first
    assert len(admin.deliveries(account.token)) == 1


async def test_lookup_finds_a_completed_send_and_nothing_for_an_unknown_key(
    sender: PeppolAccessPointSender, receiver: str
) -> None:
    out = outgoing(receiver)
    assert await sender.lookup(out.idempotency_key) is None
    receipt = await sender.send(out)

    assert await sender.lookup(out.idempotency_key) == receipt
    assert await sender.lookup(f"unknown:{uuid.uuid4()}") is None


async def test_a_key_no_header_can_hold_is_sent_and_found_by_its_digest(
    sender: PeppolAccessPointSender,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
) -> None:
    out = outgoing(receiver, key=f"tenant ö:{uuid.uuid4()}:peppol")
    receipt = await sender.send(out)

    assert await sender.lookup(out.idempotency_key) == receipt
    [delivery] = admin.deliveries(account.token)
    assert delivery["client_reference"].startswith("nf-")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_server_error_is_transient(
    sender: PeppolAccessPointSender,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
    status: int,
) -> None:
    admin.inject_fault(account.token, FaultSpec(status=status))  # type: ignore[arg-type]
    out = outgoing(receiver)
    with pytest.raises(TransientSendError, match=f"HTTP {status}") as caught:
        await sender.send(out)
    assert caught.value.maybe_delivered  # a 5xx may follow a stored change: look it up
    assert await sender.lookup(out.idempotency_key) is None
    assert admin.deliveries(account.token) == []

    await sender.send(out)  # the job's retry
    assert len(admin.deliveries(account.token)) == 1


async def test_a_rate_limit_is_transient_with_the_retry_after_hint(
    sender: PeppolAccessPointSender,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
) -> None:
    admin.inject_fault(account.token, FaultSpec(status=429, retry_after_seconds=7))
    with pytest.raises(TransientSendError) as caught:
        await sender.send(outgoing(receiver))
    assert caught.value.retry_after == 7.0
    assert not caught.value.maybe_delivered


async def test_a_lost_answer_is_transient_and_the_lookup_finds_the_send(
    network: PeppolNetwork,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
) -> None:
    impatient = PeppolAccessPointSender(network.ap.api_url, SecretStr(account.token), timeout=0.3)
    admin.inject_fault(account.token, FaultSpec(status=None, delay_seconds=1.0, after_commit=True))
    out = outgoing(receiver)
    try:
        with pytest.raises(TransientSendError, match="no answer") as caught:
            await impatient.send(out)
        assert caught.value.maybe_delivered
        found = await impatient.lookup(out.idempotency_key)
    finally:
        await impatient.aclose()
    [delivery] = admin.deliveries(account.token)
    assert found is not None
    assert found.reference == delivery["id"]


async def test_an_unreachable_access_point_is_transient_and_not_delivered(
    account: SandboxAccount, receiver: str
) -> None:
    nowhere = PeppolAccessPointSender("http://127.0.0.1:9/api/v1", SecretStr(account.token))
    try:
        with pytest.raises(TransientSendError, match="cannot connect") as caught:
            await nowhere.send(outgoing(receiver))
    finally:
        await nowhere.aclose()
    assert not caught.value.maybe_delivered


async def test_a_receiver_not_in_peppol_falls_back_to_another_channel(
    sender: PeppolAccessPointSender, admin: PeppolApSandboxAdmin, account: SandboxAccount
) -> None:
    unknown = new_receiver()
    with pytest.raises(PermanentSendError, match="not registered") as caught:
        await sender.send(outgoing(unknown))
    assert caught.value.fallback
    assert unknown in str(caught.value)
    assert admin.deliveries(account.token) == []


async def test_a_receiver_without_the_document_type_falls_back_too(
    network: PeppolNetwork, sender: PeppolAccessPointSender
) -> None:
    credit_notes_only = new_receiver()
    network.register(credit_notes_only, [BIS3_CREDIT_NOTE])
    with pytest.raises(PermanentSendError, match="does not accept") as caught:
        await sender.send(outgoing(credit_notes_only))
    assert caught.value.fallback


async def test_an_invalid_document_is_permanent_without_fallback_and_names_the_field(
    sender: PeppolAccessPointSender,
    admin: PeppolApSandboxAdmin,
    account: SandboxAccount,
    receiver: str,
) -> None:
    wrong = sample_invoice_xml(sender=SELLER, receiver=receiver, customization_id="urn:not-bis")
    with pytest.raises(PermanentSendError, match="CustomizationID") as caught:
        await sender.send(outgoing(receiver, wrong))
    assert not caught.value.fallback
    assert admin.deliveries(account.token) == []


async def test_a_wrong_token_is_transient_names_the_setting_and_never_shows_the_token(
    network: PeppolNetwork, receiver: str
) -> None:
    token = "ap-" + secrets.token_urlsafe(16)
    wrong = PeppolAccessPointSender(network.ap.api_url, SecretStr(token))
    try:
        with pytest.raises(TransientSendError, match="credentials") as caught:
            await wrong.send(outgoing(receiver))
        with pytest.raises(TransientSendError) as looked:
            await wrong.lookup("any-key")
    finally:
        await wrong.aclose()
    shown = " ".join([str(caught.value), repr(caught.value), str(looked.value), repr(wrong)])
    assert token not in shown
    assert caught.value.__cause__ is None
