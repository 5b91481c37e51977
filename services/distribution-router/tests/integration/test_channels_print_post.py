"""PrintPostSender against the print-and-post sandbox: the letter, its price, and refusals."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from decimal import Decimal

import pytest
from distribution_router.adapters.channels.base import (
    Outgoing,
    PermanentSendError,
    TransientSendError,
)
from distribution_router.adapters.channels.print_post import PrintOptions, PrintPostSender
from distribution_router.testing.invoices import one_line_invoice
from nordflow_sandboxes.print_post.testing import (
    FaultSpec,
    PrintPostSandboxAdmin,
    RunningPrintPostSandbox,
    SandboxAccount,
    minimal_pdf,
    running_print_post_sandbox,
)
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import (
    Address,
    Invoice,
    Party,
    PartyType,
)
from pydantic import SecretStr

pytestmark = pytest.mark.integration

STOCKHOLM = Address(
    lines=("Storgatan 1", "Lgh 1102"), city="Stockholm", postal_code="11122", country_code="SE"
)


def invoice(address: Address = STOCKHOLM) -> Invoice:
    return one_line_invoice(
        tenant_id="t-paper",
        buyer=Party(name="Anna Andersson", party_type=PartyType.PRIVATE, address=address),
        net="400.00",
        description="Köksrenovering",
    )


def outgoing(
    address: Address = STOCKHOLM,
    *,
    pages: int = 1,
    options: Mapping[str, str] | None = None,
    recipient: str = "post: Stockholm",
) -> Outgoing:
    inv = invoice(address)
    return Outgoing(
        idempotency_key=f"t-paper:{inv.invoice_id}:paper",
        tenant_id=inv.tenant_id,
        invoice=inv,
        recipient=recipient,
        document=minimal_pdf(pages, text=f"Faktura {inv.number}"),
        content_type="application/pdf",
        filename=f"faktura-{inv.number}.pdf",
        options=options or {},
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningPrintPostSandbox]:
    with running_print_post_sandbox() as running:
        yield running


@pytest.fixture
def admin(sandbox: RunningPrintPostSandbox) -> Iterator[PrintPostSandboxAdmin]:
    with PrintPostSandboxAdmin(sandbox.base_url) as client:
        yield client


@pytest.fixture
def account(sandbox: RunningPrintPostSandbox) -> SandboxAccount:
    return sandbox.create_account()


@pytest.fixture
async def sender(
    sandbox: RunningPrintPostSandbox, account: SandboxAccount
) -> AsyncIterator[PrintPostSender]:
    adapter = PrintPostSender(sandbox.api_url, SecretStr(account.token), timeout=5.0)
    yield adapter
    await adapter.aclose()


async def test_a_letter_is_posted_once_to_the_buyers_address_with_its_price(
    sender: PrintPostSender, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    out = outgoing(pages=3)
    receipt = await sender.send(out)

    assert receipt.channel is Channel.PAPER
    assert receipt.reference.startswith("ltr_")
    [letter] = admin.deliveries(account.token)
    assert letter["id"] == receipt.reference
    assert letter["recipient"] == {
        "name": "Anna Andersson",
        "address_line1": "Storgatan 1",
        "address_line2": "Lgh 1102",
        "postal_code": "111 22",
        "city": "Stockholm",
        "country": "SE",
    }
    assert (letter["postage"], letter["colour"], letter["duplex"]) == ("B", False, True)
    assert letter["pages"] == 3
    assert letter["client_reference"] == out.idempotency_key
    assert admin.delivery_content(account.token, receipt.reference) == out.document
    assert isinstance(receipt.cost, Decimal)
    assert receipt.cost == Decimal(letter["price"]["total"])
    # B-post up to 50 g (13.50) + 3 black-and-white sides (1.20) + 2 sheets and envelope (2.00)
    assert receipt.cost == Decimal("16.70")


async def test_the_tenants_options_choose_postage_and_colour(
    sender: PrintPostSender, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    receipt = await sender.send(
        outgoing(options={"postage": "priority", "color": "true", "duplex": "false"})
    )
    [letter] = admin.deliveries(account.token)
    assert (letter["postage"], letter["colour"], letter["duplex"]) == ("A", True, False)
    assert receipt.cost == Decimal(letter["price"]["total"])


async def test_the_settings_defaults_apply_without_options(
    sandbox: RunningPrintPostSandbox, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    adapter = PrintPostSender(
        sandbox.api_url, SecretStr(account.token), defaults=PrintOptions(postage="A", colour=True)
    )
    try:
        await adapter.send(outgoing(options={"postage": "economy"}))
    finally:
        await adapter.aclose()
    [letter] = admin.deliveries(account.token)
    assert (letter["postage"], letter["colour"]) == ("B", True)


async def test_a_named_recipient_heads_the_address(
    sender: PrintPostSender, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    await sender.send(outgoing(recipient="Ekonomiavdelningen"))
    [letter] = admin.deliveries(account.token)
    assert letter["recipient"]["name"] == "Ekonomiavdelningen"


async def test_the_same_key_twice_is_one_letter(
    sender: PrintPostSender, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    out = outgoing()
    first = await sender.send(out)
    second = await sender.send(out)
    assert second == first
    assert len(admin.deliveries(account.token)) == 1


async def test_lookup_finds_a_completed_send_and_nothing_for_an_unknown_key(
    sender: PrintPostSender,
) -> None:
    out = outgoing()
    assert await sender.lookup(out.idempotency_key) is None
    receipt = await sender.send(out)
    assert await sender.lookup(out.idempotency_key) == receipt
    assert await sender.lookup(f"unknown:{uuid.uuid4()}") is None


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_provider_fault_is_transient_and_the_retry_posts_one_letter(
    sender: PrintPostSender,
    admin: PrintPostSandboxAdmin,
    account: SandboxAccount,
    status: int,
) -> None:
    admin.inject_fault(account.token, FaultSpec(status=status, after_commit=status != 429))  # type: ignore[arg-type]
    out = outgoing()
    with pytest.raises(TransientSendError, match=f"HTTP {status}") as caught:
        await sender.send(out)
    assert caught.value.maybe_delivered is (status != 429)

    # The job's recovery: ask first, send only when the provider has nothing.
    receipt = await sender.lookup(out.idempotency_key) or await sender.send(out)
    [letter] = admin.deliveries(account.token)
    assert receipt.reference == letter["id"]


async def test_a_timeout_is_transient(
    sandbox: RunningPrintPostSandbox, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    impatient = PrintPostSender(sandbox.api_url, SecretStr(account.token), timeout=0.3)
    admin.inject_fault(account.token, FaultSpec(status=None, delay_seconds=1.0))
    try:
        with pytest.raises(TransientSendError, match="no answer"):
            await impatient.send(outgoing())
    finally:
        await impatient.aclose()


async def test_an_address_the_provider_cannot_post_is_permanent_without_fallback(
    sender: PrintPostSender, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    bad_code = STOCKHOLM.model_copy(update={"postal_code": "01234"})
    with pytest.raises(PermanentSendError, match=r"buyer\.address\.postal_code") as caught:
        await sender.send(outgoing(bad_code))
    assert not caught.value.fallback
    assert "cannot be posted" in str(caught.value)

    abroad = Address(
        lines=("Hauptstraße 5",), city="Berlin", postal_code="10115", country_code="DE"
    )
    with pytest.raises(PermanentSendError, match=r"buyer\.address\.country_code") as foreign:
        await sender.send(outgoing(abroad))
    assert not foreign.value.fallback
    assert admin.deliveries(account.token) == []


async def test_an_address_without_street_is_refused_before_anything_is_sent(
    sender: PrintPostSender, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    no_street = Address(city="Stockholm", country_code="SE")
    with pytest.raises(PermanentSendError) as caught:
        await sender.send(outgoing(no_street))
    assert not caught.value.fallback
    assert "buyer.address.lines" in str(caught.value)
    assert "buyer.address.postal_code" in str(caught.value)
    assert admin.requests(account.token) == []


async def test_an_unknown_postage_option_names_the_option(
    sender: PrintPostSender, admin: PrintPostSandboxAdmin, account: SandboxAccount
) -> None:
    with pytest.raises(PermanentSendError, match=r"options\.postage") as caught:
        await sender.send(outgoing(options={"postage": "express"}))
    assert not caught.value.fallback
    assert admin.requests(account.token) == []


async def test_a_wrong_token_is_transient_and_never_shown(sandbox: RunningPrintPostSandbox) -> None:
    token = "print-" + secrets.token_urlsafe(16)
    adapter = PrintPostSender(sandbox.api_url, SecretStr(token))
    try:
        with pytest.raises(TransientSendError, match="credentials") as caught:
            await adapter.send(outgoing())
    finally:
        await adapter.aclose()
    assert token not in f"{caught.value} {caught.value!r} {adapter!r}"
