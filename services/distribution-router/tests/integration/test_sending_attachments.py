"""Attachments travel on every channel, and the tenant's paper options reach the letter: the
send job on the real PostgreSQL, sending to the real print-and-post, bank and SMTP sandboxes
(in-process). A held invoice gets its files through the hold, is released, and sent.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from io import BytesIO
from typing import Any

import asyncpg
import httpx
import pytest
from distribution_router.adapters.channels.b2c_bank import B2cBankSender
from distribution_router.adapters.channels.email import EmailChannelSender
from distribution_router.adapters.channels.print_post import PrintPostSender
from distribution_router.adapters.email_sender import EmailSender
from distribution_router.adapters.repositories import PgHoldRepository, pg_repositories
from distribution_router.deps import Deps
from distribution_router.service import holds
from distribution_router.service.ports import Sender
from distribution_router.service.routing import distribute_invoice
from distribution_router.testing import NotInPeppol, bearer, send_worker
from distribution_router.testing.invoices import one_line_invoice, swedish_seller
from nordflow_documents.testing.files import CSV, encrypted_pdf, text_pdf
from nordflow_documents.testing.files import image as png
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.b2c_bank.testing import (
    B2cBankSandboxAdmin,
    RunningB2cBankSandbox,
    ocr_reference,
    random_swedish_personal_number,
    running_b2c_bank_sandbox,
)
from nordflow_sandboxes.print_post.testing import (
    PrintPostSandboxAdmin,
    RunningPrintPostSandbox,
    running_print_post_sandbox,
)
from nordflow_sandboxes.smtp.testing import RunningSmtpSandbox, running_smtp_sandbox
from nordflow_schemas.events import Channel, InvoiceCreated
from nordflow_schemas.invoice import Address, Party, PartyType, PaymentInstructions
from pydantic import SecretStr
from pypdf import PdfReader

pytestmark = pytest.mark.integration

ISSUER_ORG = "556732-1707"
BANKGIRO = "5555-5551"


def company(email: str | None = None) -> Party:
    return Party(
        name="Kund AB",
        company_id="556036-0793",
        customer_number="17",
        email=email,
        address=Address(
            lines=("Kundvägen 2",), city="Luleå", postal_code="97231", country_code="SE"
        ),
    )


def consumer(personal_number: str) -> Party:
    return Party(
        name="Anna Andersson",
        party_type=PartyType.PRIVATE,
        company_id=personal_number,
        address=Address(
            lines=("Byvägen 3",), city="Kiruna", postal_code="98131", country_code="SE"
        ),
    )


def created(buyer: Party, tenant: str) -> InvoiceCreated:
    invoice = one_line_invoice(
        tenant_id=tenant,
        buyer=buyer,
        seller=swedish_seller(ISSUER_ORG, "SE556732170701"),
        net="1000.00",
        description="Köksrenovering",
        issue_date=dt.datetime.now(dt.UTC).date(),
        payment=PaymentInstructions(
            payment_reference=ocr_reference(), account_id=BANKGIRO, account_scheme="SE:BANKGIRO"
        ),
    )
    return InvoiceCreated(
        tenant_id=tenant, invoice_id=invoice.invoice_id, version="v1", invoice=invoice
    )


@pytest.fixture(scope="module")
def post() -> Iterator[RunningPrintPostSandbox]:
    with running_print_post_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def bank() -> Iterator[RunningB2cBankSandbox]:
    with running_b2c_bank_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def smtp() -> Iterator[RunningSmtpSandbox]:
    with running_smtp_sandbox() as running:
        yield running


@pytest.fixture
def post_admin(post: RunningPrintPostSandbox) -> Iterator[PrintPostSandboxAdmin]:
    with PrintPostSandboxAdmin(post.base_url) as client:
        yield client


@pytest.fixture
def bank_admin(bank: RunningB2cBankSandbox) -> Iterator[B2cBankSandboxAdmin]:
    with B2cBankSandboxAdmin(bank.base_url) as client:
        yield client


class Router:
    """distribution-router's routing and send job, with the real paper, bank and e-mail
    adapters, on a harness of its own."""

    def __init__(
        self,
        harness: ServiceHarness[Deps],
        post: RunningPrintPostSandbox,
        bank: RunningB2cBankSandbox,
        smtp: RunningSmtpSandbox,
    ) -> None:
        self.pool = harness.pool
        self.post_token = post.create_account().token
        self.bank_token = bank.create_account(organisation_number=ISSUER_ORG).token
        self.paper = PrintPostSender(post.api_url, SecretStr(self.post_token), timeout=10.0)
        self.bank = B2cBankSender(bank.api_url, SecretStr(self.bank_token), timeout=10.0)
        self.email = EmailChannelSender(
            EmailSender(
                smtp.smtp_host,
                smtp.smtp_port,
                None,
                None,
                False,
                "faktura@saljare.example",
                timeout=10.0,
            )
        )
        senders: dict[Channel, Sender] = {
            Channel.PAPER: self.paper,
            Channel.B2C_BANK: self.bank,
            Channel.EMAIL: self.email,
        }
        harness.deps = dataclasses.replace(
            harness.deps, senders=senders, lookup=NotInPeppol(), registry=self.bank
        )
        self.harness = harness
        self.deps = harness.deps

    async def hold_for(self, tenant: str) -> None:
        async with self.pool.acquire() as conn:
            await holds.set_policy(
                PgHoldRepository(conn),
                tenant_id=tenant,
                customer_key=None,
                enabled=True,
                duration=dt.timedelta(hours=1),
            )

    async def route(self, event: InvoiceCreated) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await distribute_invoice(
                self.deps.repositories(conn),
                self.deps.partners,
                event,
                dt.datetime.now(dt.UTC),
            )

    async def attach(self, event: InvoiceCreated, filename: str, kind: str, data: bytes) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await holds.add_attachment(
                pg_repositories(conn),
                tenant_id=event.tenant_id,
                invoice_id=event.invoice_id,
                filename=filename,
                content_type=kind,
                content=data,
            )

    async def release_and_send(self, event: InvoiceCreated) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await holds.release_hold(
                pg_repositories(conn),
                tenant_id=event.tenant_id,
                invoice_id=event.invoice_id,
                released_by="test",
            )
        assert await send_worker(self.harness).run_one()

    async def send(self, event: InvoiceCreated) -> None:
        await self.route(event)
        assert await send_worker(self.harness).run_one()

    async def delivery(self, invoice_id: str) -> asyncpg.Record:
        row = await self.pool.fetchrow("SELECT * FROM deliveries WHERE invoice_id = $1", invoice_id)
        assert row is not None
        return row

    async def archived(self, invoice_id: str) -> bytes:
        content = await self.pool.fetchval(
            "SELECT content FROM archived_documents WHERE invoice_id = $1", invoice_id
        )
        assert content is not None
        return bytes(content)


@pytest.fixture
def router(
    harness: ServiceHarness[Deps],
    post: RunningPrintPostSandbox,
    bank: RunningB2cBankSandbox,
    smtp: RunningSmtpSandbox,
) -> Router:
    return Router(harness, post, bank, smtp)  # the harness closes the senders


@pytest.fixture
def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    return client


async def auth(pool: asyncpg.Pool, tenant: str) -> dict[str, str]:
    return await bearer(pool, tenant)


def letter_of(admin: PrintPostSandboxAdmin, token: str, invoice_id: str) -> dict[str, Any]:
    (letter,) = [
        d for d in admin.deliveries(token) if d["client_reference"] == f"{invoice_id}:paper:1"
    ]
    return letter


def tenant_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def test_a_held_invoice_with_a_pdf_and_a_png_is_one_letter_with_every_page(
    router: Router, post_admin: PrintPostSandboxAdmin, api: httpx.AsyncClient
) -> None:
    tenant = tenant_id()
    await router.hold_for(tenant)
    event = created(company(), tenant)
    await router.route(event)
    await router.attach(
        event, "villkor.pdf", "application/pdf", text_pdf("Villkor sida 1", "Villkor sida 2")
    )
    await router.attach(event, "ritning.png", "image/png", png())
    await router.attach(event, "underlag.csv", "text/csv", CSV)
    await router.release_and_send(event)

    (letter,) = post_admin.deliveries(router.post_token)  # ONE letter for the invoice and files
    assert letter["client_reference"] == f"{event.invoice_id}:paper:1"
    assert letter["pages"] == 4
    posted = post_admin.delivery_content(router.post_token, letter["id"])
    pages = [page.extract_text() for page in PdfReader(BytesIO(posted)).pages]
    assert len(pages) == 4
    assert event.invoice.number in pages[0]
    assert "villkor.pdf" in pages[0]
    assert "ritning.png" in pages[0]
    assert "underlag.csv (20 B): ej utskriven: filtypen kan inte skrivas ut" in pages[0]
    assert "Villkor sida 1" in pages[1]
    assert "Villkor sida 2" in pages[2]
    assert "ritning.png" in pages[3]
    assert len(PdfReader(BytesIO(posted)).pages[3].images) == 1

    row = await router.delivery(event.invoice_id)
    assert row["status"] == "sent"
    assert row["channel"] == "paper"
    assert await router.archived(event.invoice_id) == posted  # exactly what was posted
    assert json.loads(row["attachments"]) == [
        {
            "filename": "villkor.pdf",
            "content_type": "application/pdf",
            "size": len(text_pdf("Villkor sida 1", "Villkor sida 2")),
            "handling": "printed",
            "pages": 2,
            "reason": None,
        },
        {
            "filename": "ritning.png",
            "content_type": "image/png",
            "size": len(png()),
            "handling": "printed",
            "pages": 1,
            "reason": None,
        },
        {
            "filename": "underlag.csv",
            "content_type": "text/csv",
            "size": len(CSV),
            "handling": "not_printed",
            "pages": None,
            "reason": "a text/csv file cannot be printed",
        },
    ]
    shown = await api.get(
        f"/api/v1/deliveries/{event.invoice_id}", headers=await auth(router.pool, tenant)
    )
    assert shown.status_code == 200
    assert [(a["filename"], a["handling"]) for a in shown.json()["attachments"]] == [
        ("villkor.pdf", "printed"),
        ("ritning.png", "printed"),
        ("underlag.csv", "not_printed"),
    ]


async def test_a_locked_or_damaged_pdf_is_not_printed_and_the_letter_still_goes(
    router: Router, post_admin: PrintPostSandboxAdmin
) -> None:
    tenant = tenant_id()
    await router.hold_for(tenant)
    event = created(company(), tenant)
    await router.route(event)
    await router.attach(event, "låst.pdf", "application/pdf", encrypted_pdf())
    await router.attach(event, "trasig.pdf", "application/pdf", b"%PDF-1.7\n1 0 obj <<\n")
    await router.attach(event, "ritning.png", "image/png", png())
    await router.release_and_send(event)

    letter = letter_of(post_admin, router.post_token, event.invoice_id)
    assert letter["pages"] == 2  # the invoice and the image
    posted = post_admin.delivery_content(router.post_token, letter["id"])
    first = PdfReader(BytesIO(posted)).pages[0].extract_text()
    assert "ej utskriven: lösenordsskyddad PDF" in first
    assert "ej utskriven: filen kan inte läsas" in first
    row = await router.delivery(event.invoice_id)
    assert row["status"] == "sent"
    locked, damaged, image = json.loads(row["attachments"])
    assert (locked["handling"], damaged["handling"], image["handling"]) == (
        "not_printed",
        "not_printed",
        "printed",
    )
    assert "password-protected" in locked["reason"]
    assert damaged["reason"].startswith("the PDF cannot be read")
    assert await router.archived(event.invoice_id) == posted


async def test_the_tenants_postage_and_colour_reach_the_letter_and_its_price(
    router: Router, post_admin: PrintPostSandboxAdmin, api: httpx.AsyncClient
) -> None:
    chooser, other = tenant_id(), tenant_id()
    put = await api.put(
        "/api/v1/paper-options",
        json={"postage": "priority", "colour": True},
        headers=await auth(router.pool, chooser),
    )
    assert put.status_code == 200
    chosen, default = created(company(), chooser), created(company(), other)
    await router.send(chosen)
    await router.send(default)

    first = letter_of(post_admin, router.post_token, chosen.invoice_id)
    second = letter_of(post_admin, router.post_token, default.invoice_id)
    assert (first["postage"], first["colour"], first["duplex"]) == ("A", True, True)
    assert (second["postage"], second["colour"], second["duplex"]) == ("B", False, True)
    assert first["pages"] == second["pages"] == 1
    first_cost = (await router.delivery(chosen.invoice_id))["cost"]
    second_cost = (await router.delivery(default.invoice_id))["cost"]
    assert first_cost == Decimal(first["price"]["total"])
    assert second_cost == Decimal(second["price"]["total"])
    # A-post up to 50 g (16.00) and a colour side (1.90), against B-post (13.50) and 0.40.
    assert first_cost - second_cost == Decimal("4.00")


async def test_duplex_set_by_the_tenant_and_back_to_the_defaults(
    router: Router, post_admin: PrintPostSandboxAdmin, api: httpx.AsyncClient
) -> None:
    tenant = tenant_id()
    headers = await auth(router.pool, tenant)
    await api.put("/api/v1/paper-options", json={"duplex": False}, headers=headers)
    simplex = created(company(), tenant)
    await router.send(simplex)
    assert (await api.delete("/api/v1/paper-options", headers=headers)).status_code == 204
    again = created(company(), tenant)
    await router.send(again)

    first = letter_of(post_admin, router.post_token, simplex.invoice_id)
    second = letter_of(post_admin, router.post_token, again.invoice_id)
    assert (first["postage"], first["colour"], first["duplex"]) == ("B", False, False)
    assert (second["postage"], second["colour"], second["duplex"]) == ("B", False, True)


async def test_the_bank_gets_the_attachments_embedded_in_the_pdf(
    router: Router, bank_admin: B2cBankSandboxAdmin
) -> None:
    personal_number = random_swedish_personal_number()
    bank_admin.register_consumer(personal_number)
    tenant = tenant_id()
    await router.hold_for(tenant)
    event = created(consumer(personal_number), tenant)
    await router.route(event)
    terms = text_pdf("Villkor")
    await router.attach(event, "villkor.pdf", "application/pdf", terms)
    await router.attach(event, "ritning.png", "image/png", png())
    await router.attach(event, "underlag.csv", "text/csv", CSV)
    await router.release_and_send(event)

    (einvoice,) = bank_admin.deliveries(router.bank_token)
    assert einvoice["client_reference"] == f"{event.invoice_id}:b2c_bank:1"
    assert einvoice["has_pdf"] is True
    body = json.loads(bank_admin.delivery_content(router.bank_token, einvoice["id"]))
    sent = base64.b64decode(body["pdf"])
    reader = PdfReader(BytesIO(sent))
    assert reader.attachments == {
        "villkor.pdf": [terms],
        "ritning.png": [png()],
        "underlag.csv": [CSV],
    }
    assert "Bilagor (bifogade i denna PDF)" in reader.pages[-1].extract_text()
    row = await router.delivery(event.invoice_id)
    assert (row["status"], row["channel"]) == ("sent", "b2c_bank")
    assert [a["handling"] for a in json.loads(row["attachments"])] == ["embedded"] * 3
    assert await router.archived(event.invoice_id) == sent


async def test_an_email_carries_the_attachments_as_files_beside_the_pdf(
    router: Router, smtp: RunningSmtpSandbox
) -> None:
    address = f"ekonomi-{uuid.uuid4().hex[:8]}@kund.example"
    tenant = tenant_id()
    await router.hold_for(tenant)
    event = created(company(email=address), tenant)
    await router.route(event)
    terms = text_pdf("Villkor")
    await router.attach(event, "villkor.pdf", "application/pdf", terms)
    await router.attach(event, "underlag.csv", "text/csv", CSV)
    await router.release_and_send(event)

    async with smtp.async_admin() as admin:
        (message,) = await admin.messages(to=address)
        names = [a["filename"] for a in message["attachments"]]
        invoice_pdf = await admin.attachment(message["id"], message["attachments"][0]["index"])
        files = [
            await admin.attachment(message["id"], a["index"]) for a in message["attachments"][1:]
        ]
    assert names == [f"invoice-{event.invoice.number}.pdf", "villkor.pdf", "underlag.csv"]
    assert files == [terms, CSV]
    assert PdfReader(BytesIO(invoice_pdf)).attachments == {}  # beside the PDF, not inside
    row = await router.delivery(event.invoice_id)
    assert (row["status"], row["channel"]) == ("sent", "email")
    assert [a["handling"] for a in json.loads(row["attachments"])] == ["attached", "attached"]
