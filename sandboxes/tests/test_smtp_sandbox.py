"""The SMTP sandbox over real SMTP (smtplib) and its HTTP inspection API."""

from __future__ import annotations

import argparse
import hashlib
import secrets
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest
from nordflow_sandboxes.server import BackgroundServer
from nordflow_sandboxes.smtp import state
from nordflow_sandboxes.smtp.app import create_app
from nordflow_sandboxes.smtp.command import add_arguments, build
from nordflow_sandboxes.smtp.state import SmtpState
from nordflow_sandboxes.smtp.testing import (
    RunningSmtpSandbox,
    SmtpBounce,
    SmtpFault,
    SmtpSandboxAdmin,
    running_smtp_sandbox,
)

SENDER = "faktura@nordflow.example"
PDF = b"%PDF-1.7\n" + secrets.token_bytes(1500) + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSmtpSandbox]:
    with running_smtp_sandbox() as running:
        yield running


@pytest.fixture
def admin(sandbox: RunningSmtpSandbox) -> Iterator[SmtpSandboxAdmin]:
    with sandbox.admin() as client:
        yield client


@pytest.fixture
def rcpt() -> str:
    return f"kund-{secrets.token_hex(4)}@example.se"


def invoice_mail(to: str, message_id: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = "Faktura 7 — Åkesson & Co"
    message["Message-ID"] = message_id or f"<{secrets.token_hex(6)}@nordflow>"
    message.set_content("Hej,\n.\nbifogat finns fakturan.\n")
    message.add_attachment(
        PDF, maintype="application", subtype="pdf", filename="Faktura 7 Åkesson.pdf"
    )
    message.add_attachment(b"<Invoice/>", maintype="application", subtype="xml", filename="7.xml")
    return message


def smtp(sandbox: RunningSmtpSandbox, timeout: float = 5.0) -> smtplib.SMTP:
    return smtplib.SMTP(sandbox.smtp_host, sandbox.smtp_port, timeout=timeout)


def test_a_message_is_stored_with_envelope_headers_and_attachments(
    sandbox: RunningSmtpSandbox, admin: SmtpSandboxAdmin, rcpt: str
) -> None:
    assert admin.healthy()
    mail = invoice_mail(rcpt, "<inv-7.v1@nordflow>")
    with smtp(sandbox) as client:
        assert client.send_message(mail, from_addr=SENDER, to_addrs=[rcpt, "cc@example.se"]) == {}
        code, _reply = client.noop()
        assert code == 250

    [stored] = admin.messages(to=rcpt)
    assert stored["kind"] == "message"
    assert stored["mail_from"] == SENDER
    assert stored["rcpt_tos"] == [rcpt, "cc@example.se"]
    assert stored["message_id"] == "<inv-7.v1@nordflow>"
    assert stored["subject"] == "Faktura 7 — Åkesson & Co"
    assert stored["text"] == "Hej,\n.\nbifogat finns fakturan.\n"  # dot-unstuffed
    assert stored["reply"] == f"250 2.0.0 OK queued as {stored['id']}"
    assert stored["authenticated_as"] is None
    assert stored["tls"] is False
    assert ["To", rcpt] in stored["headers"]
    assert stored["attachments"] == [
        {
            "index": 0,
            "filename": "Faktura 7 Åkesson.pdf",
            "content_type": "application/pdf",
            "size": len(PDF),
            "sha256": hashlib.sha256(PDF).hexdigest(),
        },
        {
            "index": 1,
            "filename": "7.xml",
            "content_type": "application/xml",
            "size": 10,
            "sha256": hashlib.sha256(b"<Invoice/>").hexdigest(),
        },
    ]
    assert admin.attachment(stored["id"], 0) == PDF
    raw = admin.raw(stored["id"])
    assert hashlib.sha256(raw).hexdigest() == stored["sha256"]
    assert b"Message-ID: <inv-7.v1@nordflow>" in raw
    assert admin.message(stored["id"]) == stored

    # Filters: Message-ID with or without brackets, recipient and sender case-insensitively.
    assert admin.messages(message_id="inv-7.v1@nordflow") == [stored]
    assert admin.messages(to=rcpt.upper(), mail_from=SENDER.upper()) == [stored]
    assert admin.messages(to=rcpt, kind="bounce") == []
    assert admin.messages(message_id="<other@nordflow>") == []
    with httpx.Client(base_url=sandbox.base_url) as http:
        assert http.get("/sandbox/messages/msg_nope").status_code == 404
        assert http.get(f"/sandbox/messages/{stored['id']}/attachments/9").status_code == 404
        info = http.get("/sandbox/info").json()["smtp"]
    assert (info["host"], info["port"], info["auth"]) == (
        sandbox.smtp_host,
        sandbox.smtp_port,
        False,
    )


def test_transient_faults_count_down(
    sandbox: RunningSmtpSandbox, admin: SmtpSandboxAdmin, rcpt: str
) -> None:
    fault = admin.inject_fault(SmtpFault(reply="451 4.3.0 try later", count=2))
    assert (fault["stage"], fault["count"]) == ("mail", 2)
    assert admin.faults() == [fault]
    for _ in range(2):
        with smtp(sandbox) as client, pytest.raises(smtplib.SMTPSenderRefused) as caught:
            client.send_message(invoice_mail(rcpt))
        assert (caught.value.smtp_code, caught.value.smtp_error) == (451, b"4.3.0 try later")
    assert admin.faults() == []
    with smtp(sandbox) as client:
        client.send_message(invoice_mail(rcpt))
    assert len(admin.messages(to=rcpt)) == 1


def test_a_recipient_fault_bounces_only_that_recipient_until_cleared(
    sandbox: RunningSmtpSandbox, admin: SmtpSandboxAdmin, rcpt: str
) -> None:
    other = f"other-{secrets.token_hex(4)}@example.se"
    fault = admin.inject_fault(
        SmtpFault(reply="550 5.1.1 user unknown", recipient=rcpt.upper(), count=None)
    )
    assert (fault["stage"], fault["count"]) == ("rcpt", None)
    with smtp(sandbox) as client:
        refused = client.send_message(invoice_mail(rcpt), to_addrs=[rcpt, other])
        assert refused == {rcpt: (550, b"5.1.1 user unknown")}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(invoice_mail(rcpt), to_addrs=[rcpt])
    [stored] = admin.messages(to=other)
    assert stored["rcpt_tos"] == [other]
    assert admin.clear_faults() == 1
    with smtp(sandbox) as client:
        client.send_message(invoice_mail(rcpt), to_addrs=[rcpt])
    assert len(admin.messages(to=rcpt)) == 1


def test_a_failure_after_data_still_stores_the_message(
    sandbox: RunningSmtpSandbox, admin: SmtpSandboxAdmin, rcpt: str
) -> None:
    admin.inject_fault(SmtpFault(reply="451 4.4.2 timeout", after_data=True, recipient=rcpt))
    mail = invoice_mail(rcpt)
    with smtp(sandbox) as client, pytest.raises(smtplib.SMTPDataError) as caught:
        client.send_message(mail)
    assert caught.value.smtp_code == 451
    [stored] = admin.messages(message_id=mail["Message-ID"])
    assert stored["reply"] == "451 4.4.2 timeout"

    # Without after_data a DATA fault refuses the message.
    admin.inject_fault(SmtpFault(reply="554 5.7.1 rejected as spam", stage="data", recipient=rcpt))
    with smtp(sandbox) as client, pytest.raises(smtplib.SMTPDataError):
        client.send_message(invoice_mail(rcpt))
    assert len(admin.messages(to=rcpt)) == 1


def test_dropped_and_late_answers(
    sandbox: RunningSmtpSandbox, admin: SmtpSandboxAdmin, rcpt: str
) -> None:
    admin.inject_fault(SmtpFault(reply=None, after_data=True, disconnect=True, recipient=rcpt))
    client = smtp(sandbox)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.send_message(invoice_mail(rcpt))
    client.close()
    [dropped] = admin.messages(to=rcpt)
    assert dropped["reply"] == "(connection dropped without a reply)"

    # reply None without disconnect: the normal answer, late (a client timeout after commit).
    admin.inject_fault(SmtpFault(reply=None, after_data=True, delay_seconds=0.8, recipient=rcpt))
    client = smtp(sandbox, timeout=0.2)
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        client.send_message(invoice_mail(rcpt))
    client.close()
    assert len(admin.messages(to=rcpt)) == 2

    started = time.monotonic()
    admin.inject_fault(SmtpFault(reply=None, stage="mail", delay_seconds=0.3))
    with smtp(sandbox) as client:
        client.send_message(invoice_mail(rcpt))
    assert time.monotonic() - started >= 0.3
    assert len(admin.messages(to=rcpt)) == 3


def test_bounce_registry_sends_a_dsn_to_the_sender(
    sandbox: RunningSmtpSandbox, admin: SmtpSandboxAdmin, rcpt: str
) -> None:
    sender = f"bounces-{secrets.token_hex(4)}@nordflow.example"
    rule = admin.add_bounce(SmtpBounce(rcpt, count=1))
    assert rule["diagnostic"].startswith("550 5.1.1 ")
    assert rule in admin.bounces()
    mail = invoice_mail(rcpt, "<inv-9@nordflow>")
    with smtp(sandbox) as client:
        assert client.send_message(mail, from_addr=sender) == {}  # accepted at RCPT
    [original] = admin.messages(to=rcpt)

    [dsn] = admin.messages(to=sender, kind="bounce")
    assert dsn["mail_from"] == ""
    assert dsn["bounce"] == {
        "original_id": original["id"],
        "original_message_id": "<inv-9@nordflow>",
        "recipient": rcpt,
        "status": "5.1.1",
        "diagnostic": rule["diagnostic"],
    }
    content_type = dict(dsn["headers"])["Content-Type"]
    assert content_type.startswith("multipart/report")
    assert 'report-type="delivery-status"' in content_type
    raw = admin.raw(dsn["id"]).decode()
    assert f"Final-Recipient: rfc822; {rcpt}" in raw
    assert "Status: 5.1.1" in raw
    assert "Message-ID: <inv-9@nordflow>" in raw  # quoted original headers

    # count=1: the rule is used up; the next message to rcpt is not bounced.
    assert rule not in admin.bounces()
    with smtp(sandbox) as client:
        client.send_message(invoice_mail(rcpt), from_addr=sender)
    assert len(admin.messages(to=sender, kind="bounce")) == 1


def test_a_delayed_bounce_arrives_later(
    sandbox: RunningSmtpSandbox, admin: SmtpSandboxAdmin, rcpt: str
) -> None:
    sender = f"bounces-{secrets.token_hex(4)}@nordflow.example"
    admin.add_bounce(
        SmtpBounce(rcpt, status="5.2.2", diagnostic="552 5.2.2 mailbox full", delay_seconds=0.3)
    )
    with smtp(sandbox) as client:
        client.send_message(invoice_mail(rcpt), from_addr=sender)
    assert admin.messages(to=sender, kind="bounce") == []
    [dsn] = admin.wait_for_messages(to=sender, kind="bounce", timeout=3)
    assert dsn["bounce"]["status"] == "5.2.2"
    admin.clear_bounces()


def test_auth_and_starttls() -> None:
    with (
        running_smtp_sandbox(username="nordflow", password="pw-123", starttls=True) as sandbox,
        sandbox.admin() as admin,
    ):
        rcpt = f"kund-{secrets.token_hex(4)}@example.se"
        with smtp(sandbox) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.send_message(invoice_mail(rcpt))
            assert refused.value.smtp_code == 530
            with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
                client.login("nordflow", "nope")
            assert wrong.value.smtp_code == 535
            client.login("nordflow", "pw-123")  # plain SMTP on loopback is allowed
            client.send_message(invoice_mail(rcpt))
        with smtp(sandbox) as client:
            client.starttls(context=sandbox.client_tls_context())
            client.login("nordflow", "pw-123")
            client.send_message(invoice_mail(rcpt))
        plain, tls = admin.messages(to=rcpt)
        assert (plain["authenticated_as"], plain["tls"]) == ("nordflow", False)
        assert (tls["authenticated_as"], tls["tls"]) == ("nordflow", True)
        with httpx.Client(base_url=sandbox.base_url) as http:
            pem = http.get("/sandbox/tls/certificate").text
        assert pem == sandbox.certificate_pem
        assert pem.startswith("-----BEGIN CERTIFICATE-----")


def test_require_starttls() -> None:
    with running_smtp_sandbox(starttls=True, require_starttls=True) as sandbox:
        rcpt = f"kund-{secrets.token_hex(4)}@example.se"
        with smtp(sandbox) as client, pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(invoice_mail(rcpt))
        assert refused.value.smtp_code == 530
        with smtp(sandbox) as client:
            client.starttls(context=sandbox.client_tls_context())
            client.send_message(invoice_mail(rcpt))


def test_without_auth_configured_auth_is_not_offered(sandbox: RunningSmtpSandbox) -> None:
    with smtp(sandbox) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        assert not client.has_extn("starttls")
    with httpx.Client(base_url=sandbox.base_url) as http:
        assert http.get("/sandbox/tls/certificate").status_code == 404


async def test_admin_validation_without_a_socket() -> None:
    state = SmtpState()
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://smtp.test") as http:
        assert (await http.get("/sandbox/info")).json() == {"smtp": None}
        for body in (
            {"reply": "250 fine"},
            {"reply": "451 x\r\n250 ok"},
            {"reply": "451 later", "stage": "mail", "after_data": True},
            {"reply": "451 later", "count": 0},
            {"reply": "451 later", "unknown": 1},
        ):
            assert (await http.post("/sandbox/faults", json=body)).status_code == 422, body
        assert (
            await http.post("/sandbox/bounces", json={"recipient": "a@b", "status": "2.0.0"})
        ).status_code == 422
        created = await http.post("/sandbox/faults", json={"reply": "421 4.3.2 shutting down"})
        assert created.status_code == 201
        assert created.json()["stage"] == "mail"
        assert (
            await http.post("/sandbox/faults", json={"recipient": "a@b", "reply": "550 no"})
        ).json()["stage"] == "rcpt"
        assert (
            await http.post("/sandbox/faults", json={"after_data": True, "reply": "451 x"})
        ).json()["stage"] == "data"
        assert len((await http.get("/sandbox/faults")).json()["faults"]) == 3
        assert (await http.delete("/sandbox/faults")).json() == {"deleted": 3}
        assert (await http.delete("/sandbox/messages")).json() == {"deleted": 0}


def test_cli_build_binds_smtp_and_serves_both() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    add_arguments(parser)
    args = parser.parse_args(["--smtp-port", "0", "--username", "demo"])
    app, facts = build(args)
    assert facts["smtp_host"] == "127.0.0.1"
    assert int(facts["smtp_port"]) > 0
    assert facts["username"] == "demo"
    assert len(facts["password"]) >= 12
    server = BackgroundServer(app)
    base_url = server.start()
    try:
        with smtplib.SMTP("127.0.0.1", int(facts["smtp_port"]), timeout=5) as client:
            client.login("demo", facts["password"])
            client.send_message(invoice_mail("x@example.se"))
        with SmtpSandboxAdmin(base_url) as admin:
            assert len(admin.messages(to="x@example.se")) == 1
            assert admin.clear_messages() == 1
    finally:
        server.stop()


def test_a_message_is_parsed_once_when_first_inspected_not_while_the_client_waits(
    sandbox: RunningSmtpSandbox, admin: SmtpSandboxAdmin, rcpt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []

    def counting(raw: bytes) -> state.Description:
        parsed.append(raw)
        return real(raw)

    real = state.describe
    monkeypatch.setattr(state, "describe", counting)
    with smtp(sandbox) as client:
        assert client.send_message(invoice_mail(rcpt, "<lazy-7@nordflow>"), to_addrs=[rcpt]) == {}
    assert parsed == []  # accepted and stored, not parsed

    [stored] = admin.messages(to=rcpt)
    assert stored["message_id"] == "<lazy-7@nordflow>"
    assert [a["filename"] for a in stored["attachments"]] == ["Faktura 7 Åkesson.pdf", "7.xml"]
    assert admin.messages(to=rcpt, message_id="<lazy-7@nordflow>") == [stored]
    assert len(parsed) == 1  # once, however often it is inspected
    assert hashlib.sha256(parsed[0]).hexdigest() == stored["sha256"]


def test_a_message_that_cannot_be_parsed_is_kept_with_its_bytes(
    sandbox: RunningSmtpSandbox,
    admin: SmtpSandboxAdmin,
    rcpt: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(raw: bytes) -> state.Description:
        raise ValueError("unparseable")

    monkeypatch.setattr(state, "describe", broken)
    mail = invoice_mail(rcpt, "<broken-7@nordflow>")
    with smtp(sandbox) as client:
        assert client.send_message(mail, to_addrs=[rcpt]) == {}
    [stored] = admin.messages(to=rcpt)
    assert (stored["message_id"], stored["headers"], stored["attachments"]) == (None, [], [])
    assert b"Message-ID: <broken-7@nordflow>" in admin.raw(stored["id"])
    assert f"cannot parse message {stored['id']}" in caplog.text
