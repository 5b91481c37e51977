"""An invoice to be factored, through the consumer and the send job to the SMTP sandbox: it
waits for its factoring decision, then its PDF tells the buyer to pay the factor."""

from __future__ import annotations

import datetime as dt
import io
import secrets
from collections.abc import Iterator

import pytest
from distribution_router.adapters.channels.email import EmailChannelSender
from distribution_router.adapters.email_sender import EmailSender
from distribution_router.testing import start_harness
from distribution_router.testing.invoices import company, created_event
from nordflow_sandboxes.smtp.testing import RunningSmtpSandbox, running_smtp_sandbox
from nordflow_schemas.events import (
    AgreementKind,
    Channel,
    InvoiceDistributed,
    InvoiceFactoringDecided,
    PayeeAccount,
)
from pypdf import PdfReader

pytestmark = pytest.mark.integration

NOTICE = "Fordran har överlåtits till Nordisk Factoring AB. Betala endast till dem."


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSmtpSandbox]:
    with running_smtp_sandbox() as running:
        yield running


async def test_the_buyer_is_told_to_pay_the_factor(
    database_url: str, sandbox: RunningSmtpSandbox
) -> None:
    email = EmailChannelSender(
        EmailSender(
            host=sandbox.smtp_host,
            port=sandbox.smtp_port,
            username=None,
            password=None,
            starttls=False,
            from_address="faktura@saljare.example",
            timeout=5.0,
        )
    )
    harness = await start_harness(database_url, senders={Channel.EMAIL: email})
    try:
        recipient = f"ekonomi-{secrets.token_hex(4)}@kund.example"
        created = created_event(company(email=recipient))
        decided = InvoiceFactoringDecided(
            tenant_id=created.tenant_id,
            invoice_id=created.invoice_id,
            number=created.invoice.number,
            eligible=True,
            reason="eligible",
            agreement_id="nf-1",
            agreement_kind=AgreementKind.FACTORING,
            provider="Nordisk Factoring AB",
            payee=PayeeAccount(
                name="Nordisk Factoring AB", scheme="SE:BANKGIRO", account_id="5555-5556"
            ),
            payment_reference="12345678903",
            assignment_text=NOTICE,
            decided_at=dt.datetime.now(dt.UTC),
        )

        await harness.publish(created)
        assert (await harness.run_jobs()).events == []  # nothing to send before the decision
        await harness.publish(decided)
        [distributed] = (await harness.run_jobs()).of(InvoiceDistributed)

        assert distributed.channel is Channel.EMAIL
        async with sandbox.async_admin() as admin:
            [stored] = await admin.messages(message_id=distributed.partner_reference)
            pdf = await admin.attachment(stored["id"], stored["attachments"][0]["index"])
        text = " ".join(
            " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split()
        )
        assert "Nordisk Factoring AB" in text
        assert "5555-5556" in text
        assert "12345678903" in text
        assert "Fordran har överlåtits till Nordisk Factoring AB." in text
    finally:
        await harness.close()
