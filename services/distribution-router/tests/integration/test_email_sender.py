"""EmailSender against the SMTP sandbox: what arrives, and how each failure is classified."""

from __future__ import annotations

import base64
import email
import hashlib
import logging
import secrets
import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage

import pytest
from distribution_router.adapters.email_sender import (
    DeliveryError,
    EmailAttachment,
    EmailSender,
    PermanentDeliveryError,
    SendResult,
    SmtpAuthenticationError,
    SmtpConfigurationError,
    TransientDeliveryError,
    message_id_for,
)
from nordflow_sandboxes.smtp.testing import (
    RunningSmtpSandbox,
    SmtpFault,
    running_smtp_sandbox,
)
from pydantic import SecretStr

pytestmark = pytest.mark.integration

FROM = "faktura@nordflow.example"
PASSWORD = "s3cret-Pa55-" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSmtpSandbox]:
    with running_smtp_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def auth_sandbox() -> Iterator[RunningSmtpSandbox]:
    with running_smtp_sandbox(username="nordflow", password=PASSWORD, starttls=True) as running:
        yield running


@pytest.fixture
def recipient() -> str:
    # Random recipients (and Message-IDs) keep tests apart on a shared sandbox.
    return f"ekonomi-{secrets.token_hex(4)}@kund.example"


@pytest.fixture
def message_id() -> str:
    return message_id_for(f"demo:inv-{secrets.token_hex(4)}:email")


def sender_for(sandbox: RunningSmtpSandbox, **overrides: object) -> EmailSender:
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
    return EmailSender(**settings)  # type: ignore[arg-type]


def secured_sender(sandbox: RunningSmtpSandbox, password: str = PASSWORD) -> EmailSender:
    """A sender that logs in as "nordflow" over STARTTLS, trusting the sandbox's certificate."""
    return sender_for(
        sandbox,
        username="nordflow",
        password=SecretStr(password),
        starttls=True,
        ssl_context=sandbox.client_tls_context(),
    )


PDF = b"%PDF-1.7\n" + secrets.token_bytes(2048) + b"\n%%EOF\n"


async def send(sender: EmailSender, to: str, message_id: str, **extra: object) -> SendResult:
    return await sender.send_invoice(
        to=to,
        subject="Faktura 1042 från Demo AB",
        body_text="Hej!\n\nHär kommer faktura 1042.\n.\nEn rad som börjar med punkt.\n",
        pdf=PDF,
        pdf_name="Faktura 1042.pdf",
        message_id=message_id,
        **extra,  # type: ignore[arg-type]
    )


async def test_the_invoice_arrives_with_its_pdf_and_headers(
    sandbox: RunningSmtpSandbox, recipient: str, message_id: str
) -> None:
    xml = b"<?xml version='1.0'?><Invoice/>"
    result = await send(
        sender_for(sandbox),
        recipient,
        message_id,
        attachments=[EmailAttachment("1042.xml", xml, "application/xml")],
    )
    assert result.code == 250
    assert result.message_id == message_id
    assert result.recipient == recipient

    async with sandbox.async_admin() as admin:
        [stored] = await admin.messages(to=recipient)
        assert result.reply.endswith(stored["id"])  # the provider's queue id
        assert stored["mail_from"] == FROM
        assert stored["rcpt_tos"] == [recipient]
        assert stored["message_id"] == message_id
        assert stored["subject"] == "Faktura 1042 från Demo AB"
        headers = dict(stored["headers"])
        assert headers["From"] == FROM
        assert headers["To"] == recipient
        assert headers["Message-ID"] == message_id
        assert "Date" in headers
        assert stored["text"].startswith("Hej!\n\nHär kommer faktura 1042.\n.\n")
        assert [(a["filename"], a["content_type"], a["size"]) for a in stored["attachments"]] == [
            ("Faktura 1042.pdf", "application/pdf", len(PDF)),
            ("1042.xml", "application/xml", len(xml)),
        ]
        assert stored["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
        assert await admin.attachment(stored["id"], 0) == PDF

        raw = await admin.raw(stored["id"])
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == message_id
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()  # 7-bit: quoted-printable text, base64 attachments, encoded headers


def test_message_ids_are_deterministic_and_valid() -> None:
    key = "tenant-a:inv-42:email"
    assert message_id_for(key) == message_id_for(key) == "<tenant-a%3Ainv-42%3Aemail@nordflow>"
    assert message_id_for("a.b") != message_id_for("a%2Eb")
    assert message_id_for("x..y", domain="mail.example.se") == "<x%2E%2Ey@mail.example.se>"
    with pytest.raises(ValueError, match="empty"):
        message_id_for("")
    sender = EmailSender("127.0.0.1", 25, None, None, False, FROM)
    with pytest.raises(ValueError, match="Message-ID"):
        sender.build_message(
            to="a@b.example",
            subject="s",
            body_text="b",
            pdf=b"%PDF",
            pdf_name="f.pdf",
            message_id="no-brackets@nordflow",
        )
    with pytest.raises(ValueError, match="single line"):
        sender.build_message(
            to="a@b.example\r\nBcc: x@evil.example",
            subject="s",
            body_text="b",
            pdf=b"%PDF",
            pdf_name="f.pdf",
            message_id="<k@nordflow>",
        )


async def test_a_4xx_reply_is_transient_and_the_retry_goes_through(
    sandbox: RunningSmtpSandbox, recipient: str, message_id: str
) -> None:
    sender = sender_for(sandbox)
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(SmtpFault(reply="451 4.3.0 try later", recipient=recipient))
        with pytest.raises(TransientDeliveryError) as caught:
            await send(sender, recipient, message_id)
        assert (caught.value.code, caught.value.stage) == (451, "rcpt")
        assert caught.value.reply == "4.3.0 try later"
        assert not caught.value.permanent
        assert not caught.value.maybe_delivered  # nothing was sent: retry freely
        assert not await admin.was_accepted(message_id)

        await send(sender, recipient, message_id)
        assert await admin.was_accepted(message_id, to=recipient)


async def test_user_unknown_at_rcpt_is_permanent_with_the_smtp_code(
    sandbox: RunningSmtpSandbox, recipient: str, message_id: str
) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(
            SmtpFault(reply="550 5.1.1 user unknown", recipient=recipient, count=None)
        )
        for _attempt in range(2):  # persistent, unlike a transient fault
            with pytest.raises(PermanentDeliveryError) as caught:
                await send(sender_for(sandbox), recipient, message_id)
            assert (caught.value.code, caught.value.stage) == (550, "rcpt")
            assert caught.value.reply == "5.1.1 user unknown"
            assert caught.value.permanent
            assert not caught.value.maybe_delivered
        assert await admin.messages(to=recipient) == []
        await admin.clear_faults()


async def test_a_failure_after_data_leaves_the_message_findable_by_its_message_id(
    sandbox: RunningSmtpSandbox, recipient: str, message_id: str
) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(
            SmtpFault(reply="451 4.4.1 no answer from host", after_data=True, recipient=recipient)
        )
        with pytest.raises(TransientDeliveryError) as caught:
            await send(sender_for(sandbox), recipient, message_id)
        assert (caught.value.code, caught.value.stage) == (451, "message")
        assert caught.value.maybe_delivered
        # The caller's recovery: look it up before sending again, and find it.
        assert await admin.was_accepted(message_id, to=recipient)
        [stored] = await admin.messages(message_id=message_id)
        assert stored["reply"] == "451 4.4.1 no answer from host"


async def test_a_lost_answer_is_transient_and_maybe_delivered(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    dropped, late = message_id_for(secrets.token_hex(6)), message_id_for(secrets.token_hex(6))
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(
            SmtpFault(reply=None, after_data=True, disconnect=True, recipient=recipient)
        )
        with pytest.raises(TransientDeliveryError) as caught:
            await send(sender_for(sandbox), recipient, dropped)
        assert caught.value.stage == "message"
        assert caught.value.code is None
        assert caught.value.maybe_delivered
        assert await admin.was_accepted(dropped)

        await admin.inject_fault(
            SmtpFault(reply=None, after_data=True, delay_seconds=1.0, recipient=recipient)
        )
        with pytest.raises(TransientDeliveryError, match="timed out") as timed_out:
            await send(sender_for(sandbox, timeout=0.3), recipient, late)
        assert timed_out.value.maybe_delivered
        assert await admin.was_accepted(late)


async def test_a_refused_connection_is_transient(recipient: str, message_id: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = EmailSender("127.0.0.1", port, None, None, False, FROM, timeout=2.0)
    with pytest.raises(TransientDeliveryError) as caught:
        await send(sender, recipient, message_id)
    assert caught.value.stage == "connect"
    assert not caught.value.maybe_delivered


async def test_a_rejected_sender_is_our_configuration_not_the_recipient(
    sandbox: RunningSmtpSandbox, recipient: str, message_id: str
) -> None:
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(
            SmtpFault(reply="553 5.7.1 sender not allowed", stage="mail", count=1)
        )
    with pytest.raises(SmtpConfigurationError) as caught:
        await send(sender_for(sandbox), recipient, message_id)
    assert not isinstance(caught.value, PermanentDeliveryError)  # no paper fallback for this
    assert (caught.value.code, caught.value.stage) == (553, "mail")


async def test_auth_over_starttls_works(
    auth_sandbox: RunningSmtpSandbox, recipient: str, message_id: str
) -> None:
    sender = secured_sender(auth_sandbox)
    assert PASSWORD not in repr(sender)
    await send(sender, recipient, message_id)
    async with auth_sandbox.async_admin() as admin:
        [stored] = await admin.messages(message_id=message_id)
    assert stored["authenticated_as"] == "nordflow"
    assert stored["tls"] is True


async def peers(sandbox: RunningSmtpSandbox, message_ids: list[str]) -> list[str]:
    """The client end (address:port) of the connection each message came over, in order."""
    async with sandbox.async_admin() as admin:
        stored = [await admin.messages(message_id=m) for m in message_ids]
    assert [len(copies) for copies in stored] == [1] * len(message_ids)  # each exactly once
    return [copies[0]["peer"] for copies in stored]


def new_ids(n: int) -> list[str]:
    return [message_id_for(f"demo:inv-{secrets.token_hex(4)}:email") for _ in range(n)]


async def test_one_secured_session_carries_the_next_messages(
    auth_sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    # Greeting, STARTTLS and AUTH once, then MAIL, RCPT and DATA per message.
    sender = secured_sender(auth_sandbox)
    ids = new_ids(3)
    for message_id in ids:
        await send(sender, recipient, message_id)

    assert len(set(await peers(auth_sandbox, ids))) == 1
    async with auth_sandbox.async_admin() as admin:
        stored = [(await admin.messages(message_id=m))[0] for m in ids]
    assert {(m["tls"], m["authenticated_as"]) for m in stored} == {(True, "nordflow")}
    sender.close()


async def test_a_session_is_renewed_after_its_messages_and_after_idling(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    counted = sender_for(sandbox, messages_per_connection=2)
    ids = new_ids(3)
    for message_id in ids:
        await send(counted, recipient, message_id)
    first, second, third = await peers(sandbox, ids)
    assert first == second != third
    counted.close()

    idle = sender_for(sandbox, idle_seconds=0.0)  # every kept session is already too old
    ids = new_ids(2)
    for message_id in ids:
        await send(idle, recipient, message_id)
    assert len(set(await peers(sandbox, ids))) == 2

    closed = sender_for(sandbox)
    ids = new_ids(2)
    await send(closed, recipient, ids[0])
    closed.close()  # what aclose does at shutdown: QUIT, nothing kept
    await send(closed, recipient, ids[1])
    assert len(set(await peers(sandbox, ids))) == 2
    closed.close()


async def test_a_session_that_failed_is_not_used_again(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    sender = sender_for(sandbox)
    refused = f"okand-{secrets.token_hex(4)}@kund.example"
    ids = new_ids(2)
    await send(sender, recipient, ids[0])
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(SmtpFault(reply="550 5.1.1 user unknown", recipient=refused))
    with pytest.raises(PermanentDeliveryError):
        await send(sender, refused, message_id_for(f"demo:{secrets.token_hex(4)}:email"))
    await send(sender, recipient, ids[1])

    first, after = await peers(sandbox, ids)
    assert first != after
    sender.close()


async def test_a_kept_session_the_server_dropped_sends_over_a_new_one_once(
    sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    # The server drops the kept session at MAIL: nothing of the message was sent, so it goes
    # over a new session, once.
    sender = sender_for(sandbox)
    ids = new_ids(2)
    await send(sender, recipient, ids[0])
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(SmtpFault(stage="mail", reply=None, disconnect=True))
    await send(sender, recipient, ids[1])
    first, second = await peers(sandbox, ids)
    assert first != second

    # A new session the server drops too is the send's failure (it is never tried a third
    # time), and the message is not sent.
    third = new_ids(1)[0]
    async with sandbox.async_admin() as admin:
        await admin.inject_fault(SmtpFault(stage="mail", reply=None, disconnect=True, count=2))
    with pytest.raises(TransientDeliveryError) as caught:
        await send(sender, recipient, third)
    assert (caught.value.stage, caught.value.maybe_delivered) == ("mail", False)
    async with sandbox.async_admin() as admin:
        assert await admin.faults() == []  # both drops were used: kept session, then a new one
        assert not await admin.was_accepted(third)
    sender.close()


async def test_a_wrong_password_is_a_permanent_auth_error_that_does_not_leak_it(
    auth_sandbox: RunningSmtpSandbox,
    recipient: str,
    message_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    sender = secured_sender(auth_sandbox, wrong)
    with caplog.at_level(logging.DEBUG), pytest.raises(SmtpAuthenticationError) as caught:
        await send(sender, recipient, message_id)
    error = caught.value
    assert (error.code, error.stage) == (535, "auth")
    assert error.permanent
    assert not isinstance(error, PermanentDeliveryError)
    assert error.__cause__ is None
    assert error.__context__ is None
    shown = " ".join([str(error), repr(error), repr(error.args), str(error.reply), caplog.text])
    for form in (wrong, base64.b64encode(f"\0nordflow\0{wrong}".encode()).decode()):
        assert form not in shown
    assert PASSWORD not in shown
    assert "535" in caplog.text  # the failure itself is logged


async def test_no_credentials_where_auth_is_required(
    auth_sandbox: RunningSmtpSandbox, recipient: str, message_id: str
) -> None:
    sender = sender_for(auth_sandbox, starttls=True, ssl_context=auth_sandbox.client_tls_context())
    with pytest.raises(SmtpAuthenticationError) as caught:
        await send(sender, recipient, message_id)
    assert (caught.value.code, caught.value.stage) == (530, "mail")


async def test_starttls_problems_are_configuration_errors(
    sandbox: RunningSmtpSandbox, auth_sandbox: RunningSmtpSandbox, recipient: str
) -> None:
    with pytest.raises(SmtpConfigurationError, match="STARTTLS"):
        await send(sender_for(sandbox, starttls=True), recipient, message_id_for("no-tls"))
    untrusted = sender_for(
        auth_sandbox, username="nordflow", password=SecretStr(PASSWORD), starttls=True
    )
    with pytest.raises(SmtpConfigurationError, match="certificate") as caught:
        await send(untrusted, recipient, message_id_for("untrusted"))
    assert caught.value.stage == "starttls"


def test_errors_form_the_documented_hierarchy() -> None:
    assert issubclass(TransientDeliveryError, DeliveryError)
    assert issubclass(PermanentDeliveryError, DeliveryError)
    assert issubclass(SmtpAuthenticationError, SmtpConfigurationError)
    assert not issubclass(SmtpConfigurationError, PermanentDeliveryError)
    assert not TransientDeliveryError.permanent
    assert PermanentDeliveryError.permanent
    assert SmtpConfigurationError.permanent
