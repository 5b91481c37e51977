"""EmailChannelSender against the SMTP sandbox: what arrives, and the contract's errors."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator

import pytest
from distribution_router.adapters.channels.base import (
    Attachment,
    Outgoing,
    PermanentSendError,
    TransientSendError,
)
from distribution_router.adapters.channels.email import EmailChannelSender
from distribution_router.adapters.email_sender import EmailSender
from distribution_router.testing.invoices import one_line_invoice
from nordflow_sandboxes.smtp.testing import (
    RunningSmtpSandbox,
    SmtpFault,
    running_smtp_sandbox,
)
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import (
    Address,
    Invoice,
    Party,
)
from pydantic import SecretStr

pytestmark = pytest.mark.integration

FROM = "faktura@saljare.example"
USERNAME = "nordflow"
PASSWORD = "smtp-Pa55-" + secrets.token_hex(6)
PDF = b"%PDF-1.7\n" + secrets.token_bytes(1024) + b"\n%%EOF\n"


def invoice(*, country: str = "SE") -> Invoice:
    return one_line_invoice(
        tenant_id="t-email", buyer=Party(name="Köpare AB", address=Address(country_code=country))
    )


def outgoing(to: str, *, attachments: tuple[Attachment, ...] = (), country: str = "SE") -> Outgoing:
    inv = invoice(country=country)
    return Outgoing(
        idempotency_key=f"t-email:{inv.invoice_id}:email",
        tenant_id=inv.tenant_id,
        invoice=inv,
        recipient=to,
        document=PDF,
        content_type="application/pdf",
        filename=f"faktura-{inv.number}.pdf",
        attachments=attachments,
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSmtpSandbox]:
    with running_smtp_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def auth_sandbox() -> Iterator[RunningSmtpSandbox]:
    with running_smtp_sandbox(username=USERNAME, password=PASSWORD, starttls=True) as running:
        yield running


@pytest.fixture
def recipient() -> str:
    return f"ekonomi-{secrets.token_hex(4)}@kund.example"


def channel_for(sandbox: RunningSmtpSandbox, **overrides: object) -> EmailChannelSender:
    settings: dict[str, object] = {
        "host": sandbox.smtp_host,
        "port": sandbox.smtp_port,
        "username": None,
        "password": None,
        "starttls": False,
        "from_address": FROM,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return EmailChannelSender(EmailSender(**settings))  # type: ignore[arg-type]


async def test_the_pdf_and_the_attachments_arrive_once_under_the_receipts_message_id(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    spec = Attachment("specifikation.csv", "text/csv", b"rad;belopp\n1;100\n")
    out = outgoing(recipient, attachments=(spec,))
    receipt = await channel_for(sandbox).send(out)

    assert receipt.channel is Channel.EMAIL
    assert receipt.cost is None
    assert receipt.reference.endswith("@saljare.example>")
    async with sandbox.async_admin() as admin:
        [stored] = await admin.messages(message_id=receipt.reference)
        assert stored["rcpt_tos"] == [recipient]
        assert stored["subject"] == f"Faktura {out.invoice.number} från Säljare AB"
        pdf_part, csv_part = stored["attachments"]
        pdf = await admin.attachment(stored["id"], pdf_part["index"])
        csv = await admin.attachment(stored["id"], csv_part["index"])
    assert pdf == PDF
    assert csv == spec.content
    assert [a["filename"] for a in stored["attachments"]] == [out.filename, spec.filename]
    assert stored["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()


async def test_every_attempt_of_one_delivery_carries_the_same_message_id(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    # SMTP cannot dedupe, which is why the job never repeats an attempt of unknown outcome;
    # what the adapter guarantees is that attempts are recognisable as one delivery.
    channel = channel_for(sandbox)
    out = outgoing(recipient)
    assert channel.can_lookup is False
    first = await channel.send(out)
    second = await channel.send(out)
    assert first == second
    with pytest.raises(NotImplementedError):
        await channel.lookup(out.idempotency_key)


async def test_a_hard_bounce_at_rcpt_falls_back_to_paper(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(SmtpFault(reply="550 5.1.1 user unknown", recipient=recipient))
        with pytest.raises(PermanentSendError, match=r"550 5\.1\.1") as caught:
            await channel_for(sandbox).send(outgoing(recipient))
        assert await admin.messages(to=recipient) == []
    assert caught.value.fallback


async def test_a_refused_message_body_falls_back_to_paper(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(
            SmtpFault(reply="554 5.7.1 message refused", stage="data", recipient=recipient)
        )
    with pytest.raises(PermanentSendError) as caught:
        await channel_for(sandbox).send(outgoing(recipient))
    assert caught.value.fallback


async def test_a_4xx_is_transient_and_nothing_was_sent(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(SmtpFault(reply="451 4.3.0 try later", recipient=recipient))
        with pytest.raises(TransientSendError, match="451") as caught:
            await channel_for(sandbox).send(outgoing(recipient))
        assert not caught.value.maybe_delivered
        assert await admin.messages(to=recipient) == []


async def test_a_lost_answer_after_the_body_is_transient_and_maybe_delivered(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(
            SmtpFault(reply=None, after_data=True, disconnect=True, recipient=recipient)
        )
        with pytest.raises(TransientSendError) as caught:
            await channel_for(sandbox).send(outgoing(recipient))
        assert caught.value.maybe_delivered  # the job must not send it again
        assert len(await admin.messages(to=recipient)) == 1


async def test_a_timeout_is_transient(sandbox: RunningSmtpSandbox, recipient: str) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(
            SmtpFault(reply=None, after_data=True, delay_seconds=1.0, recipient=recipient)
        )
    with pytest.raises(TransientSendError, match="timed out") as caught:
        await channel_for(sandbox, timeout=0.3).send(outgoing(recipient))
    assert caught.value.maybe_delivered


async def test_auth_over_starttls_sends(auth_sandbox: RunningSmtpSandbox, recipient: str) -> None:
    channel = channel_for(
        auth_sandbox,
        username=USERNAME,
        password=SecretStr(PASSWORD),
        starttls=True,
        ssl_context=auth_sandbox.client_tls_context(),
    )
    receipt = await channel.send(outgoing(recipient))
    async with auth_sandbox.async_admin() as admin:
        [stored] = await admin.messages(message_id=receipt.reference)
    assert stored["authenticated_as"] == USERNAME
    assert PASSWORD not in repr(channel)


async def test_a_wrong_password_is_transient_names_the_settings_and_never_shows_it(
    auth_sandbox: RunningSmtpSandbox, recipient: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    channel = channel_for(
        auth_sandbox,
        username=USERNAME,
        password=SecretStr(wrong),
        starttls=True,
        ssl_context=auth_sandbox.client_tls_context(),
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(TransientSendError) as caught:
        await channel.send(outgoing(recipient))
    error = caught.value
    assert "SMTP_PASSWORD" in str(error)
    assert "535" in str(error)
    assert not error.maybe_delivered
    assert error.__cause__ is None
    assert error.__context__ is None
    shown = " ".join([str(error), repr(error), repr(channel), caplog.text])
    assert wrong not in shown
    assert PASSWORD not in shown


async def test_a_server_without_starttls_is_a_configuration_error_naming_the_setting(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    with pytest.raises(TransientSendError, match="SMTP_STARTTLS"):
        await channel_for(sandbox, starttls=True).send(outgoing(recipient))


async def test_a_rejected_sender_address_is_our_configuration_not_a_bounce(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(
            SmtpFault(reply="553 5.7.1 sender not allowed", stage="mail", count=1)
        )
    with pytest.raises(TransientSendError, match="SMTP_FROM_ADDRESS"):
        await channel_for(sandbox).send(outgoing(recipient))


async def test_a_malformed_address_falls_back_without_talking_smtp(
    sandbox: RunningSmtpSandbox,
) -> None:
    for bad in ("not-an-address", "a@b.example\r\nBcc: x@evil.example", "a@b.example, c@d.example"):
        with pytest.raises(PermanentSendError, match="recipient") as caught:
            await channel_for(sandbox).send(outgoing(bad))
        assert caught.value.fallback


async def test_a_norwegian_buyer_gets_a_norwegian_subject(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    out = outgoing(recipient, country="NO")
    receipt = await channel_for(sandbox).send(out)
    async with sandbox.async_admin() as admin:
        [stored] = await admin.messages(message_id=receipt.reference)
    assert stored["subject"] == f"Faktura {out.invoice.number} fra Säljare AB"
