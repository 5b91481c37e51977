"""One payment per entry in the ERP, also when the ERP applied it but answered with an error."""

import asyncio
import datetime as dt
import uuid
from decimal import Decimal

import httpx
import pytest
from cryptography.fernet import Fernet
from ledger_closer.app import EntryPoster, create_app
from ledger_closer.config import Settings
from ledger_closer.repository import upsert_connection
from ledger_closer.service import POST_ENTRY, schedule_closing, schedule_payment
from nordflow_runtime import db, jobs
from nordflow_runtime.crypto import SecretBox
from nordflow_sandboxes.fortnox.testing import FaultSpec, running_fortnox_sandbox
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import AgreementKind, InvoiceTransferred, PaymentReceived
from nordflow_schemas.invoice import DocumentType
from pydantic import SecretStr

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox():
    with running_fortnox_sandbox() as running:
        yield running


@pytest.fixture
async def closer(fresh_database_url):
    key = Fernet.generate_key().decode()
    settings = Settings(
        kafka_bootstrap_servers="unused:9092",
        database_url=fresh_database_url,
        encryption_key=key,
        closing_delay_seconds=0,
    )
    await create_app(settings).migrate()
    pool = await db.create_pool(fresh_database_url, "ledger_closer")
    yield pool, SecretBox(SecretStr(key))
    await pool.close()


def make_invoice(sandbox, token: str) -> tuple[str, Decimal]:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{sandbox.base_url}/3/", headers=auth) as http:
        customer = http.post("customers", json={"Customer": {"Name": "Kund AB"}}).json()
        invoice = http.post(
            "invoices",
            json={
                "Invoice": {
                    "CustomerNumber": customer["Customer"]["CustomerNumber"],
                    "InvoiceRows": [
                        {"Description": "Tjänst", "DeliveredQuantity": 2, "Price": 500, "VAT": 25}
                    ],
                }
            },
        ).json()["Invoice"]
    return str(invoice["DocumentNumber"]), Decimal(str(invoice["Total"]))


def erp_payments(sandbox, token: str, number: str) -> list[dict]:
    response = httpx.get(
        f"{sandbox.base_url}/3/invoicepayments",
        params={"invoicenumber": number},
        headers={"Authorization": f"Bearer {token}"},
    )
    return [p for p in response.json()["InvoicePayments"] if str(p["InvoiceNumber"]) == number]


async def schedule(pool, box, sandbox, token, number, total) -> str:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        await upsert_connection(
            conn,
            connection_id=f"{tenant}-fx",
            tenant_id=tenant,
            system="fortnox",
            base_url=sandbox.base_url,
            token_sealed=box.seal(token),
            mode_of_payment="FACT",
            factoring_account=1512,
            bank_account=1930,
        )
        event = InvoiceTransferred(
            tenant_id=tenant,
            invoice_id=f"inv_{tenant}",
            source=SourceRef(
                system=SourceSystem.FORTNOX,
                connection_id=f"{tenant}-fx",
                document_id=number,
                document_number=number,
            ),
            document_type=DocumentType.INVOICE,
            number=number,
            provider="nordea-finans",
            agreement_kind=AgreementKind.FACTORING,
            transfer_id="tr",
            amount=total,
            currency="SEK",
            transferred_at=dt.datetime.now(dt.UTC),
        )
        assert await schedule_closing(conn, event, dt.timedelta(0))
        assert not await schedule_closing(conn, event, dt.timedelta(0))  # once per invoice
    return tenant


async def run_until_finished(pool, box, tenant: str) -> dict:
    poster = EntryPoster(box, pool)
    worker = jobs.JobWorker(
        pool,
        "ledger-closer",
        POST_ENTRY,
        poster,
        idle_seconds=0.05,
        retry_initial=0.05,
        retry_max=0.2,
    )
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            row = await pool.fetchrow("SELECT * FROM jobs WHERE tenant_id = $1", tenant)
            if row["state"] != "pending":
                return dict(row)
            await asyncio.sleep(0.05)
        raise AssertionError(f"job still pending: {dict(row)}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await poster.aclose()


async def test_payment_posted_once_with_event(sandbox, closer):
    pool, box = closer
    company = sandbox.create_company()
    number, total = make_invoice(sandbox, company.token)
    tenant = await schedule(pool, box, sandbox, company.token, number, total)
    job = await run_until_finished(pool, box, tenant)
    assert job["state"] == "done"
    payments = erp_payments(sandbox, company.token, number)
    assert len(payments) == 1
    entry = await pool.fetchrow("SELECT * FROM entries WHERE tenant_id = $1", tenant)
    assert entry["erp_reference"] == str(payments[0]["Number"])
    assert not entry["adopted"]
    rows = await pool.fetch("SELECT value, headers FROM outbox WHERE tenant_id = $1", tenant)
    assert len(rows) == 1


async def test_erp_applied_but_answered_500_is_adopted_not_doubled(sandbox, closer):
    pool, box = closer
    company = sandbox.create_company()
    number, total = make_invoice(sandbox, company.token)
    sandbox.admin().inject_fault(
        company.token,
        FaultSpec(
            status=500, count=1, path_prefix="/3/invoicepayments", method="POST", after_commit=True
        ),
    )
    tenant = await schedule(pool, box, sandbox, company.token, number, total)
    job = await run_until_finished(pool, box, tenant)
    assert job["state"] == "done", job["last_error"]
    assert job["attempts"] == 2
    payments = erp_payments(sandbox, company.token, number)
    assert len(payments) == 1, payments
    entry = await pool.fetchrow("SELECT * FROM entries WHERE tenant_id = $1", tenant)
    assert entry["adopted"]
    assert entry["attempts"] == 1  # the intent row survived the failed first attempt
    assert entry["erp_reference"] == str(payments[0]["Number"])


async def test_a_refusal_fails_the_job_visibly_without_writing(sandbox, closer):
    pool, box = closer
    company = sandbox.create_company()
    tenant = await schedule(pool, box, sandbox, company.token, "99999", Decimal("10"))
    job = await run_until_finished(pool, box, tenant)
    assert job["state"] == "failed"
    assert "ERP refused the entry" in job["last_error"]
    assert company.token not in job["last_error"]
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE tenant_id = $1", tenant) == 0


@pytest.mark.parametrize(("test_mode", "recorded_at_source"), [(False, True), (True, False)])
async def test_payment_already_in_the_erp_or_in_test_mode_is_not_booked(
    closer, test_mode, recorded_at_source
):
    pool, _ = closer
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    payment = PaymentReceived(
        tenant_id=tenant,
        invoice_id=f"inv_{tenant}",
        test_mode=test_mode,
        source=SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id=f"{tenant}-fx",
            document_id="1",
            document_number="1",
        ),
        payment_id="p1",
        amount=Decimal("100.00"),
        currency="SEK",
        paid_on=dt.date(2026, 11, 20),
        payer="Kund AB",
        recorded_at_source=recorded_at_source,
    )
    async with pool.acquire() as conn:
        assert not await schedule_payment(conn, payment)
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE tenant_id = $1", tenant) == 0
        booked = payment.model_copy(update={"test_mode": False, "recorded_at_source": False})
        assert await schedule_payment(conn, booked)  # the same payment, reported by a bank
