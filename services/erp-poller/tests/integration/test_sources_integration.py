"""Every polled source system, end to end: real PostgreSQL, each partner's sandbox in-process.

The same scenarios run for Fortnox, Visma eAccounting, Visma.net and Sirvoy through one
small driver per system (create a document, change it, inject 429s, check what the mapper
needs). Work is driven by the service's own scheduler `Steps`, so claiming, locking, recording
and the per-connection client cache are the production ones; clients page two at a time so
every listing spans several pages.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import httpx
import pytest
from erp_poller.adapters.repository import (
    PgConnectionRepository,
    PgRequestRepository,
    PgUnitOfWork,
)
from erp_poller.domain.connections import BackfillRequest, ConnectionConfig
from erp_poller.domain.credentials import seal_form
from erp_poller.domain.documents import content_version
from erp_poller.entrypoints.loops import Steps
from erp_poller.testing import given_profile, seller_profile, steps_on
from nordflow_connectors.oauth import InMemoryTokenStore, OAuthSession, Tokens
from nordflow_connectors.visma_eaccounting import VismaEAccountingClient
from nordflow_connectors.visma_net import PaymentApplication, VismaNetClient
from nordflow_runtime.crypto import SecretBox
from nordflow_sandboxes.fortnox import testing as fortnox_testing
from nordflow_sandboxes.fortnox.testing import AsyncFortnoxSandboxAdmin, RunningFortnoxSandbox
from nordflow_sandboxes.sirvoy import testing as sirvoy_testing
from nordflow_sandboxes.sirvoy.testing import RunningSirvoySandbox
from nordflow_sandboxes.visma_eaccounting import testing as eaccounting_testing
from nordflow_sandboxes.visma_eaccounting.testing import RunningVismaEAccountingSandbox
from nordflow_sandboxes.visma_net import testing as visma_net_testing
from nordflow_sandboxes.visma_net.testing import RunningVismaNetSandbox
from nordflow_schemas.common import ConnectionMode, SourceSystem, canonical_invoice_id
from nordflow_schemas.envelope import decode
from nordflow_schemas.events import RELATED_TENANT, DocumentKind, ErpDocumentFetched
from pydantic import SecretStr

pytestmark = pytest.mark.integration

PROFILE = seller_profile("Nordflow Test AB", organisation_number="556036-0793")
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


# ------------------------------------------------------------------------------ drivers


class Driver:
    """One sandbox account of a source system, written to the way a user of it would."""

    system: SourceSystem
    base_url: str
    credentials: dict[str, str]

    async def create(self) -> str:
        """A new invoice; its document id as events carry it."""
        raise NotImplementedError

    async def change(self, document_id: str) -> set[str]:
        """Change the document; the document ids that change makes new versions of."""
        raise NotImplementedError

    async def fault_429(self, count: int) -> None:
        """The next ``count`` invoice listing/reads answer 429 with Retry-After."""
        raise NotImplementedError

    def check(self, body: ErpDocumentFetched) -> None:
        """The payload and related records are what this system's mapper reads."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close what the driver opened."""


class FortnoxDriver(Driver):
    system = SourceSystem.FORTNOX

    def __init__(self, sandbox: RunningFortnoxSandbox) -> None:
        self.sandbox = sandbox
        self.company = sandbox.create_company()
        self.base_url = sandbox.base_url
        self.credentials = {"access_token": self.company.token}
        self.http = httpx.AsyncClient(
            base_url=f"{sandbox.base_url}/3/", headers=self.company.headers, timeout=10
        )
        self.customer: str | None = None

    async def create(self) -> str:
        if self.customer is None:
            answer = await self.http.post("customers", json={"Customer": {"Name": "Kund AB"}})
            self.customer = str(answer.json()["Customer"]["CustomerNumber"])
        body = {"CustomerNumber": self.customer, "InvoiceRows": [{"Description": "x", "Price": 9}]}
        answer = await self.http.post("invoices", json={"Invoice": body})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["Invoice"]["DocumentNumber"])

    async def change(self, document_id: str) -> set[str]:
        body = {"Invoice": {"Remarks": f"ändrad {secrets.token_hex(2)}"}}
        assert (await self.http.put(f"invoices/{document_id}", json=body)).status_code == 200
        return {document_id}

    async def fault_429(self, count: int) -> None:
        fault = fortnox_testing.FaultSpec(status=429, count=count, path_prefix="/3/invoices")
        async with AsyncFortnoxSandboxAdmin(self.base_url) as admin:
            await admin.inject_fault(self.company.token, fault)

    def check(self, body: ErpDocumentFetched) -> None:
        assert body.payload["DocumentNumber"] == body.source.document_id
        assert body.source.document_number == body.source.document_id
        assert body.related["customer"]["CustomerNumber"] == self.customer

    async def aclose(self) -> None:
        await self.http.aclose()


class EAccountingDriver(Driver):
    system = SourceSystem.VISMA_EACCOUNTING

    def __init__(self, sandbox: RunningVismaEAccountingSandbox) -> None:
        self.sandbox = sandbox
        self.company = sandbox.create_company()
        self.base_url = sandbox.base_url
        self.credentials = {
            "client_id": self.company.client_id,
            "client_secret": self.company.client_secret,
            "refresh_token": self.company.refresh_token,
            "token_url": sandbox.token_url,
        }
        self.customer = str(sandbox.seed_customer(self.company.company_id)["Id"])

    async def create(self) -> str:
        return str(self.sandbox.seed_invoice(self.company.company_id, self.customer)["Id"])

    async def change(self, document_id: str) -> set[str]:
        """A payment registered by another application (its own grant) lowers the balance."""
        with self.sandbox.admin() as admin:
            refresh = admin.new_refresh_token(self.company.company_id)
        store = InMemoryTokenStore(Tokens(SecretStr("x"), SecretStr(refresh), LONG_AGO))
        session = OAuthSession(
            self.sandbox.token_url,
            self.company.client_id,
            SecretStr(self.company.client_secret),
            store,
        )
        client = VismaEAccountingClient(self.base_url, session)
        try:
            await client.create_payment(
                invoice_id=document_id,
                amount=Decimal(10),
                currency="SEK",
                payment_date=dt.date.today(),
                bank_account_id=self.company.bank_account_id,
            )
        finally:
            await client.aclose()
            await session.aclose()
        return {document_id}

    async def fault_429(self, count: int) -> None:
        fault = eaccounting_testing.FaultSpec(
            status=429, count=count, path_prefix="/v2/customerinvoices"
        )
        with self.sandbox.admin() as admin:
            admin.inject_fault(self.company.company_id, fault)

    def check(self, body: ErpDocumentFetched) -> None:
        assert body.payload["Id"] == body.source.document_id
        assert body.source.document_number == str(body.payload["InvoiceNumber"])
        assert body.related["customer"]["Id"] == self.customer


class VismaNetDriver(Driver):
    system = SourceSystem.VISMA_NET

    def __init__(self, sandbox: RunningVismaNetSandbox) -> None:
        self.sandbox = sandbox
        self.company = sandbox.create_company()
        self.base_url = sandbox.base_url
        self.credentials = {"token": self.company.token, "company_id": self.company.company_id}
        with sandbox.admin() as admin:
            self.customer = admin.seed_customer(self.company)

    def client(self) -> VismaNetClient:
        return VismaNetClient(self.base_url, SecretStr(self.company.token), self.company.company_id)

    async def create(self) -> str:
        with self.sandbox.admin() as admin:
            return admin.seed_invoice(self.company, self.customer)

    async def change(self, document_id: str) -> set[str]:
        async with self.client() as client:
            due = dt.date.today() + dt.timedelta(days=40 + secrets.randbelow(100))
            await client.update_due_date(document_id, due)
        return {document_id}

    async def pay(self, document_id: str, amount: Decimal) -> str:
        async with self.client() as client:
            number = await client.create_payment(
                customer_number=self.customer,
                applications=[PaymentApplication(document_id, amount)],
                payment_date=dt.date.today(),
                payment_ref=f"NF-{secrets.token_hex(3)}",
            )
            await client.release_payment(number)
        return number

    async def fault_429(self, count: int) -> None:
        fault = visma_net_testing.FaultSpec(
            status=429, count=count, path_prefix="/v1/customerinvoice"
        )
        with self.sandbox.admin() as admin:
            admin.inject_fault(self.company, fault)

    def check(self, body: ErpDocumentFetched) -> None:
        assert body.payload["referenceNumber"] == body.source.document_id
        assert body.related["customer"]["number"] == self.customer


class SirvoyDriver(Driver):
    system = SourceSystem.SIRVOY

    def __init__(self, sandbox: RunningSirvoySandbox) -> None:
        self.sandbox = sandbox
        self.account = sandbox.create_account()
        self.base_url = sandbox.base_url
        self.credentials = {
            "api_token": self.account.token,
            "webhook_secret": self.account.webhook_secret,
        }
        with sandbox.admin() as admin:
            self.booking = int(admin.create_booking(self.account.token)["bookingId"])

    async def create(self) -> str:
        rows = [{"description": "Dubbelrum", "unit_price": 1200, "quantity": 2}]
        with self.sandbox.admin() as admin:
            invoice = admin.create_invoice(self.account.token, self.booking, rows=rows)
        return str(invoice["invoiceId"])

    async def change(self, document_id: str) -> set[str]:
        """A payment on the invoice: the invoice changes (paid amount) and the payment flows."""
        with self.sandbox.admin() as admin:
            payment = admin.register_payment(
                self.account.token, invoice_id=int(document_id), amount=100
            )
        return {document_id, f"payment:{payment['paymentId']}"}

    async def fault_429(self, count: int) -> None:
        fault = sirvoy_testing.FaultSpec(status=429, count=count, path_prefix="/api/v1/invoices")
        with self.sandbox.admin() as admin:
            admin.inject_fault(self.account.token, fault)

    def check(self, body: ErpDocumentFetched) -> None:
        if body.kind is DocumentKind.PAYMENT:
            assert body.payload["paymentId"] == int(body.source.document_id.split(":")[1])
            return
        assert str(body.payload["invoiceId"]) == body.source.document_id
        assert body.source.document_number == str(body.payload["invoiceNumber"])
        assert body.related["booking"]["bookingId"] == self.booking


@pytest.fixture(params=["fortnox", "visma-eaccounting", "visma-net", "sirvoy"])
async def driver(
    request: pytest.FixtureRequest,
    sandbox: RunningFortnoxSandbox,
    eaccounting_sandbox: RunningVismaEAccountingSandbox,
    visma_net_sandbox: RunningVismaNetSandbox,
    sirvoy_sandbox: RunningSirvoySandbox,
) -> AsyncIterator[Driver]:
    made: Driver
    if request.param == "fortnox":
        made = FortnoxDriver(sandbox)
    elif request.param == "visma-eaccounting":
        made = EAccountingDriver(eaccounting_sandbox)
    elif request.param == "visma-net":
        made = VismaNetDriver(visma_net_sandbox)
    else:
        made = SirvoyDriver(sirvoy_sandbox)
    yield made
    await made.aclose()


# ------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class Added:
    connection_id: str
    tenant_id: str


async def add_connection(
    pool: asyncpg.Pool,
    box: SecretBox,
    driver: Driver,
    *,
    mode: ConnectionMode = ConnectionMode.AUTOMATIC,
    cutoff: dt.datetime | None = None,
) -> Added:
    added = Added(f"conn-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}")
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=added.connection_id,
            tenant_id=added.tenant_id,
            system=driver.system,
            base_url=driver.base_url,
            token_sealed=box.seal(seal_form(driver.system, driver.credentials)),
            mode=mode,
            cutoff_at=cutoff or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10),
        )
    )
    await given_profile(PgUnitOfWork(pool), added.tenant_id, PROFILE)
    return added


def runner(pool: asyncpg.Pool, box: SecretBox) -> Steps:
    """A scheduler's steps over a client cache of its own (one process), due again at once."""
    return steps_on(pool, box, page_size=2)


async def events(pool: asyncpg.Pool) -> list[ErpDocumentFetched]:
    out = []
    for row in await pool.fetch(
        "SELECT key, value, headers FROM outbox WHERE topic = 'erp.document.fetched' ORDER BY seq"
    ):
        headers = [(name, base64.b64decode(value)) for name, value in json.loads(row["headers"])]
        body = decode(bytes(row["value"]), headers).body
        assert isinstance(body, ErpDocumentFetched)
        assert bytes(row["key"]).decode() == body.invoice_id
        out.append(body)
    return out


async def last_error(pool: asyncpg.Pool, connection_id: str) -> str | None:
    error: str | None = await pool.fetchval(
        "SELECT last_error FROM connections WHERE connection_id = $1", connection_id
    )
    return error


# ---------------------------------------------------------------------- every system


async def test_a_poll_emits_each_document_once_across_pages_and_a_change_once_more(
    pool: asyncpg.Pool, box: SecretBox, driver: Driver
) -> None:
    documents = [await driver.create() for _ in range(5)]
    added = await add_connection(pool, box, driver)
    steps = runner(pool, box)

    assert await steps.poll_one()
    assert await last_error(pool, added.connection_id) is None
    first = await events(pool)
    assert sorted(e.source.document_id for e in first) == sorted(documents)
    for body in first:
        assert body.tenant_id == added.tenant_id
        assert body.source.system is driver.system
        assert body.source.connection_id == added.connection_id
        assert body.invoice_id == canonical_invoice_id(
            added.tenant_id, driver.system, added.connection_id, body.source.document_id
        )
        assert body.kind is DocumentKind.INVOICE
        assert body.test_mode is False
        assert body.version == content_version(body.payload)
        assert body.related[RELATED_TENANT] == PROFILE.model_dump(mode="json")
        driver.check(body)

    # the overlap is read again: nothing twice
    assert await steps.poll_one()
    assert len(await events(pool)) == 5

    expected = await driver.change(documents[1])
    assert await steps.poll_one()
    assert await last_error(pool, added.connection_id) is None
    later = (await events(pool))[5:]
    assert {e.source.document_id for e in later} == expected
    changed = next(e for e in later if e.source.document_id == documents[1])
    before = next(e for e in first if e.source.document_id == documents[1])
    assert changed.invoice_id == before.invoice_id
    assert changed.version != before.version
    for body in later:
        driver.check(body)

    assert await steps.poll_one()  # quiet again
    assert len(await events(pool)) == 5 + len(expected)


async def test_a_test_mode_connection_marks_its_events(
    pool: asyncpg.Pool, box: SecretBox, driver: Driver
) -> None:
    await driver.create()
    await driver.create()
    await add_connection(pool, box, driver, mode=ConnectionMode.TEST)
    assert await runner(pool, box).poll_one()
    emitted = await events(pool)
    assert len(emitted) == 2
    assert all(e.test_mode for e in emitted)


async def test_manual_mode_polls_nothing_until_a_sync_asks(
    pool: asyncpg.Pool, box: SecretBox, driver: Driver
) -> None:
    documents = [await driver.create() for _ in range(4)]
    added = await add_connection(pool, box, driver, mode=ConnectionMode.MANUAL)
    steps = runner(pool, box)
    assert not await steps.poll_one()
    assert await events(pool) == []

    tenants = PgRequestRepository(pool)
    limited = (await tenants.request_sync(added.tenant_id, added.connection_id, 2, [])).request_id
    named = (
        await tenants.request_sync(added.tenant_id, added.connection_id, None, [documents[3]])
    ).request_id
    assert await steps.sync_one()
    assert await steps.sync_one()
    assert not await steps.sync_one()
    for request_id, count in ((limited, 2), (named, 1)):
        row = await tenants.sync_request(added.tenant_id, request_id)
        assert row is not None
        assert (row.emitted, row.error) == (count, None)
    emitted = await events(pool)
    assert len(emitted) == 3
    assert documents[3] in {e.source.document_id for e in emitted}
    assert not await steps.poll_one()


async def test_429s_are_waited_out_and_the_poll_completes(
    pool: asyncpg.Pool, box: SecretBox, driver: Driver
) -> None:
    documents = [await driver.create() for _ in range(3)]
    added = await add_connection(pool, box, driver)
    await driver.fault_429(2)
    assert await runner(pool, box).poll_one()
    assert await last_error(pool, added.connection_id) is None
    assert sorted(e.source.document_id for e in await events(pool)) == sorted(documents)
    cursor = await pool.fetchval(
        "SELECT cursor_at FROM connections WHERE connection_id = $1", added.connection_id
    )
    assert cursor is not None


async def test_a_backfill_re_reads_since_its_date_and_emits_only_what_is_new_or_changed(
    pool: asyncpg.Pool, box: SecretBox, driver: Driver
) -> None:
    documents = [await driver.create() for _ in range(3)]
    # Cut off after the documents (minute-grained sources: a whole minute later).
    cutoff = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    added = await add_connection(pool, box, driver, cutoff=cutoff)
    steps = runner(pool, box)
    assert await steps.poll_one()
    assert await events(pool) == []

    tenants = PgRequestRepository(pool)

    async def backfill() -> BackfillRequest:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        request = await tenants.request_backfill(added.tenant_id, added.connection_id, since)
        request_id = request.request_id
        assert await steps.backfill_one()
        row = await tenants.backfill_request(added.tenant_id, request_id)
        assert row is not None
        assert row.finished_at is not None
        assert row.error is None
        return row

    first = await backfill()
    assert (first.listed, first.emitted, first.attempts) == (3, 3, 1)
    assert sorted(e.source.document_id for e in await events(pool)) == sorted(documents)

    again = await backfill()
    assert (again.listed, again.emitted) == (3, 0)

    expected = await driver.change(documents[0])
    third = await backfill()
    assert third.emitted == len(expected)
    assert {e.source.document_id for e in (await events(pool))[3:]} == expected
    assert not await steps.backfill_one()
    # the cursor of scheduled polls is not the backfill's business
    assert (
        await pool.fetchval(
            "SELECT cursor_at FROM connections WHERE connection_id = $1", added.connection_id
        )
        is not None
    )


# ------------------------------------------------------------------------ per system


async def test_sirvoy_credit_invoices_and_payments_flow_with_their_invoice(
    pool: asyncpg.Pool, box: SecretBox, sirvoy_sandbox: RunningSirvoySandbox
) -> None:
    driver = SirvoyDriver(sirvoy_sandbox)
    original = await driver.create()
    token = driver.account.token
    with sirvoy_sandbox.admin() as admin:
        credit = str(admin.credit_invoice(token, int(original))["invoiceId"])
        paid = await driver.create()
        payment = admin.register_payment(token, invoice_id=int(paid), amount=250)
        admin.register_payment(token, booking_id=driver.booking, amount=50)  # a prepayment
    await add_connection(pool, box, driver)
    steps = runner(pool, box)
    assert await steps.poll_one()

    emitted = {e.source.document_id: e for e in await events(pool)}
    payment_id = f"payment:{payment['paymentId']}"
    assert set(emitted) == {original, credit, paid, payment_id}
    assert emitted[credit].kind is DocumentKind.CREDIT_NOTE
    assert emitted[credit].payload["creditedInvoiceId"] == int(original)
    assert emitted[original].kind is DocumentKind.INVOICE
    paying = emitted[payment_id]
    assert paying.kind is DocumentKind.PAYMENT
    assert paying.payload["amount"] == 250
    assert paying.related["invoice"] == {
        "document_id": paid,
        "document_number": emitted[paid].source.document_number,
    }
    assert paying.related[RELATED_TENANT] == PROFILE.model_dump(mode="json")
    assert paying.related["booking"]["bookingId"] == driver.booking
    assert paying.invoice_id != emitted[paid].invoice_id  # its own document, its own key

    with sirvoy_sandbox.admin() as admin:
        admin.void_payment(token, payment["paymentId"])
    assert await steps.poll_one()
    voided = [e for e in (await events(pool))[4:] if e.source.document_id == payment_id]
    assert len(voided) == 1
    assert voided[0].payload["voided"] is True


async def test_visma_net_payments_flow_with_the_invoice_they_pay(
    pool: asyncpg.Pool, box: SecretBox, visma_net_sandbox: RunningVismaNetSandbox
) -> None:
    driver = VismaNetDriver(visma_net_sandbox)
    invoice = await driver.create()
    await add_connection(pool, box, driver)
    steps = runner(pool, box)
    assert await steps.poll_one()
    assert [e.source.document_id for e in await events(pool)] == [invoice]

    number = await driver.pay(invoice, Decimal(50))
    assert await steps.poll_one()
    later = {e.source.document_id: e for e in (await events(pool))[1:]}
    paid = f"payment:{number}@{invoice}"
    assert set(later) == {invoice, paid}  # the balance changed, and the payment
    paying = later[paid]
    assert paying.kind is DocumentKind.PAYMENT
    assert paying.payload["refNbr"] == number
    assert paying.related["invoice"] == {"document_id": invoice, "document_number": invoice}

    # One payment of two invoices: each invoice gets a document of its own share.
    first, second = await driver.create(), await driver.create()
    async with driver.client() as client:
        both = await client.create_payment(
            customer_number=driver.customer,
            applications=[
                PaymentApplication(first, Decimal(10)),
                PaymentApplication(second, Decimal(20)),
            ],
            payment_date=dt.date.today(),
            payment_ref="NF-both",
        )
        await client.release_payment(both)
    seen = len(await events(pool))
    assert await steps.poll_one()
    shares = [e for e in (await events(pool))[seen:] if e.kind is DocumentKind.PAYMENT]
    assert {(e.source.document_id, e.related["invoice"]["document_id"]) for e in shares} == {
        (f"payment:{both}@{first}", first),
        (f"payment:{both}@{second}", second),
    }


async def test_visma_eaccounting_credit_invoices_are_credit_notes_and_the_cursor_is_server_time(
    pool: asyncpg.Pool,
    box: SecretBox,
    eaccounting_sandbox: RunningVismaEAccountingSandbox,
) -> None:
    driver = EAccountingDriver(eaccounting_sandbox)
    company = driver.company.company_id
    row = {"ArticleId": driver.company.article(25), "Quantity": -1, "UnitPrice": 100}
    credit = str(
        eaccounting_sandbox.seed_invoice(
            company, driver.customer, rows=[row], IsCreditInvoice=True
        )["Id"]
    )
    added = await add_connection(pool, box, driver)
    assert await runner(pool, box).poll_one()
    [body] = await events(pool)
    assert body.source.document_id == credit
    assert body.kind is DocumentKind.CREDIT_NOTE
    with eaccounting_sandbox.admin() as admin:
        listings = [
            r
            for r in admin.requests(company, 200)
            if r["path"] == "/v2/customerinvoices" and r["status"] == 200
        ]
    assert listings
    cursor = await pool.fetchval(
        "SELECT cursor_at FROM connections WHERE connection_id = $1", added.connection_id
    )
    assert cursor <= dt.datetime.now(dt.UTC)


async def test_a_push_connection_is_never_polled(
    pool: asyncpg.Pool, box: SecretBox, sandbox: RunningFortnoxSandbox
) -> None:
    for system in (SourceSystem.WINNER, SourceSystem.ON_PREMISE):
        await PgConnectionRepository(pool).add(
            ConnectionConfig(
                connection_id=f"push-{uuid.uuid4().hex[:8]}",
                tenant_id="t-push",
                system=system,
                base_url="http://agent.invalid",
                token_sealed=box.seal(seal_form(system, {"signing_secret": "s3cret-signing"})),
                mode=ConnectionMode.AUTOMATIC,
                cutoff_at=LONG_AGO,
            )
        )
    await given_profile(PgUnitOfWork(pool), "t-push", PROFILE)
    async with pool.acquire() as conn, conn.transaction():
        assert await PgConnectionRepository(conn).claim_due() is None
    assert not await runner(pool, box).poll_one()


async def test_a_credit_note_comes_with_the_invoice_it_credits(
    pool: asyncpg.Pool,
    box: SecretBox,
    eaccounting_sandbox: RunningVismaEAccountingSandbox,
    visma_net_sandbox: RunningVismaNetSandbox,
) -> None:
    """The source names the original only by id or application: the poller fetches it, so
    the mapper can state the credited invoice's number and date."""
    bygg = EAccountingDriver(eaccounting_sandbox)
    original = await bygg.create()
    credit = str(eaccounting_sandbox.seed_credit_invoice(bygg.company.company_id, original)["Id"])
    fjord = VismaNetDriver(visma_net_sandbox)
    invoice = await fjord.create()
    with visma_net_sandbox.admin() as admin:
        credit_note = admin.seed_credit_note(
            fjord.company, fjord.customer, credited=[(invoice, Decimal(125))]
        )
    for driver in (bygg, fjord):
        await add_connection(pool, box, driver)
    steps = runner(pool, box)
    assert await steps.poll_one()
    assert await steps.poll_one()
    by_id = {e.source.document_id: e for e in await events(pool)}
    eaccounting = by_id[credit]
    assert eaccounting.kind is DocumentKind.CREDIT_NOTE
    assert eaccounting.related["credited_invoice"]["Id"] == original
    visma_net = by_id[credit_note]
    assert visma_net.kind is DocumentKind.CREDIT_NOTE
    assert visma_net.related["credited_invoice"]["referenceNumber"] == invoice


async def test_fortnox_payments_flow_with_the_invoice_they_pay(
    pool: asyncpg.Pool, box: SecretBox, sandbox: RunningFortnoxSandbox
) -> None:
    driver = FortnoxDriver(sandbox)
    try:
        customer = await driver.http.post("customers", json={"Customer": {"Name": "Kund AB"}})
        row = {"Description": "Tjänst", "DeliveredQuantity": 2, "Price": 100}
        created = await driver.http.post(
            "invoices",
            json={
                "Invoice": {
                    "CustomerNumber": customer.json()["Customer"]["CustomerNumber"],
                    "InvoiceRows": [row],
                }
            },
        )
        invoice = str(created.json()["Invoice"]["DocumentNumber"])
        await add_connection(pool, box, driver)
        steps = runner(pool, box)
        assert await steps.poll_one()
        assert [e.source.document_id for e in await events(pool)] == [invoice]
        body = {"InvoicePayment": {"InvoiceNumber": int(invoice), "Amount": 5}}
        answer = await driver.http.post("invoicepayments", json=body)
        assert answer.status_code == 201, answer.text
        number = str(answer.json()["InvoicePayment"]["Number"])
        assert await steps.poll_one()
        later = {e.source.document_id: e for e in (await events(pool))[1:]}
        paying = later[f"payment:{number}"]
        assert paying.kind is DocumentKind.PAYMENT
        assert paying.payload["Number"] in (number, int(number))
        assert "ModeOfPayment" in paying.payload  # the full record, not the list item
        assert paying.related["invoice"] == {"document_id": invoice, "document_number": invoice}
        assert await steps.poll_one()  # the overlap re-reads it: nothing new
        assert len(await events(pool)) == 1 + len(later)
    finally:
        await driver.aclose()
