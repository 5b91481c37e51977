"""ledger-closer writes through its own Fortnox OAuth grant while erp-poller reads through
another: two chains of rotating refresh tokens, one per service, neither spending the other's.

One database holds both services' schemas (as in production), the Fortnox sandbox runs
in-process; erp-poller is driven by its own scheduler steps, ledger-closer by its job worker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.app import create_app as create_poller
from erp_poller.config import Settings as PollerSettings
from erp_poller.domain.credentials import seal_form
from erp_poller.testing import given_profile, steps_on
from ledger_closer.app import EntryPoster, create_app
from ledger_closer.cli import main
from ledger_closer.config import Settings
from ledger_closer.credentials import sealed_text
from ledger_closer.repository import upsert_connection
from ledger_closer.service import POST_ENTRY, schedule_closing
from nordflow_runtime import db, jobs
from nordflow_runtime.crypto import SecretBox
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import (
    RunningFortnoxSandbox,
    SandboxAuthorization,
    SandboxCompany,
    running_fortnox_sandbox,
)
from nordflow_schemas.common import ConnectionMode, SourceRef, SourceSystem
from nordflow_schemas.events import AgreementKind, InvoiceTransferred
from nordflow_schemas.invoice import DocumentType
from pydantic import SecretStr

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fortnox() -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox(FortnoxState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
async def pools(
    fresh_database_url: str, key: str
) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool, SecretBox]]:
    """ledger-closer's and erp-poller's schemas, migrated, in one database."""
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": "unused:9092",
        "database_url": SecretStr(fresh_database_url),
        "encryption_key": SecretStr(key),
    }
    await create_app(Settings(**common, closing_delay_seconds=0)).migrate()
    await create_poller(PollerSettings(**common)).migrate()
    closer = await db.create_pool(fresh_database_url, "ledger_closer")
    poller = await db.create_pool(fresh_database_url, "erp_poller")
    yield closer, poller, SecretBox(SecretStr(key))
    await closer.close()
    await poller.close()


def make_invoice(sandbox: RunningFortnoxSandbox, company: SandboxCompany) -> tuple[str, Decimal]:
    with httpx.Client(base_url=f"{sandbox.base_url}/3/", headers=company.headers) as http:
        customer = http.post("customers", json={"Customer": {"Name": "Kund AB"}}).json()
        rows = [{"Description": "Tjänst", "DeliveredQuantity": 2, "Price": 500, "VAT": 25}]
        body = {"CustomerNumber": customer["Customer"]["CustomerNumber"], "InvoiceRows": rows}
        invoice = http.post("invoices", json={"Invoice": body}).json()["Invoice"]
    return str(invoice["DocumentNumber"]), Decimal(str(invoice["Total"]))


def erp_payments(sandbox: RunningFortnoxSandbox, company: SandboxCompany, number: str) -> int:
    response = httpx.get(
        f"{sandbox.base_url}/3/invoicepayments",
        params={"invoicenumber": number},
        headers=company.headers,
    )
    return sum(1 for p in response.json()["InvoicePayments"] if str(p["InvoiceNumber"]) == number)


async def schedule(
    conn: asyncpg.Connection, tenant: str, connection_id: str, number: str, total: Decimal
) -> None:
    event = InvoiceTransferred(
        tenant_id=tenant,
        invoice_id=f"inv_{tenant}_{number}",
        source=SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id=connection_id,
            document_id=number,
            document_number=number,
        ),
        document_type=DocumentType.INVOICE,
        number=number,
        provider="nordea-finans",
        agreement_kind=AgreementKind.FACTORING,
        transfer_id=f"tr-{number}",
        amount=total,
        currency="SEK",
        transferred_at=dt.datetime.now(dt.UTC),
    )
    assert await schedule_closing(conn, event, dt.timedelta(0))


async def run_jobs(
    pool: asyncpg.Pool, poster: EntryPoster, tenant: str, count: int
) -> list[dict[str, Any]]:
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
            rows = await pool.fetch("SELECT * FROM jobs WHERE tenant_id = $1", tenant)
            if len(rows) == count and all(r["state"] != "pending" for r in rows):
                return [dict(r) for r in rows]
            await asyncio.sleep(0.05)
        raise AssertionError(f"jobs still pending: {[dict(r) for r in rows]}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def refused(grant: SandboxAuthorization, refresh_token: str) -> bool:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            grant.token_url,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(grant.client_id, grant.client_secret),
        )
    return answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_each_service_rotates_its_own_grant_and_both_keep_working(
    fortnox: RunningFortnoxSandbox, pools: tuple[asyncpg.Pool, asyncpg.Pool, SecretBox]
) -> None:
    closer_pool, poller_pool, box = pools
    company = fortnox.create_company()
    first_number, first_total = make_invoice(fortnox, company)
    # The same integration (client) authorized twice: one grant per service.
    poller_grant = fortnox.authorize(company, client_id=f"nordflow-{uuid.uuid4().hex[:6]}")
    closer_grant = fortnox.authorize(company, client_id=poller_grant.client_id)
    assert poller_grant.refresh_token != closer_grant.refresh_token

    tenant, connection_id = f"t-{uuid.uuid4().hex[:8]}", f"fx-{uuid.uuid4().hex[:8]}"
    await PgConnectionRepository(poller_pool).add(
        connection_id=connection_id,
        tenant_id=tenant,
        system=SourceSystem.FORTNOX,
        base_url=fortnox.base_url,
        token_sealed=box.seal(seal_form(SourceSystem.FORTNOX, poller_grant.credentials())),
        mode=ConnectionMode.AUTOMATIC,
        cutoff_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10),
    )
    await given_profile(PgUnitOfWork(poller_pool), tenant)
    async with closer_pool.acquire() as conn:
        await upsert_connection(
            conn,
            connection_id=connection_id,
            tenant_id=tenant,
            system="fortnox",
            base_url=fortnox.base_url,
            token_sealed=box.seal(sealed_text(json.dumps(closer_grant.credentials()))),
            mode_of_payment="FACT",
            factoring_account=1512,
            bank_account=1930,
        )
        await schedule(conn, tenant, connection_id, first_number, first_total)

    runner = steps_on(poller_pool, box)
    poster = EntryPoster(box, closer_pool)
    try:
        assert await runner.poll_one()
        [job] = await run_jobs(closer_pool, poster, tenant, 1)
        assert job["state"] == "done", job["last_error"]
        assert erp_payments(fortnox, company, first_number) == 1

        # The hour ends for both; each refreshes with its own chain, independently.
        assert fortnox.expire_access_tokens(company) == 2
        second_number, second_total = make_invoice(fortnox, company)
        async with closer_pool.acquire() as conn:
            await schedule(conn, tenant, connection_id, second_number, second_total)
        done = await run_jobs(closer_pool, poster, tenant, 2)
        assert all(j["state"] == "done" for j in done), done
        assert await runner.poll_one()
        assert erp_payments(fortnox, company, second_number) == 1
    finally:
        await poster.aclose()
        await runner.sources.aclose()

    poller_error = await poller_pool.fetchval(
        "SELECT last_error FROM connections WHERE connection_id = $1", connection_id
    )
    assert poller_error is None
    assert fortnox.refresh_tokens_redeemed(company) == 4
    rows = {}
    for name, pool in (("poller", poller_pool), ("closer", closer_pool)):
        row = await pool.fetchrow(
            "SELECT * FROM oauth_tokens WHERE connection_id = $1", connection_id
        )
        assert row is not None
        assert row["rotations"] == 2
        assert row["tenant_id"] == tenant
        rows[name] = row
    assert rows["poller"]["grant_id"] != rows["closer"]["grant_id"]
    assert closer_grant.refresh_token.encode() not in bytes(rows["closer"]["tokens_sealed"])
    assert await refused(closer_grant, closer_grant.refresh_token)
    assert await refused(poller_grant, poller_grant.refresh_token)


async def test_a_spent_grant_fails_the_job_naming_reauthorization_without_secrets(
    fortnox: RunningFortnoxSandbox, pools: tuple[asyncpg.Pool, asyncpg.Pool, SecretBox]
) -> None:
    closer_pool, _, box = pools
    company = fortnox.create_company()
    number, total = make_invoice(fortnox, company)
    grant = fortnox.authorize(company)
    assert not await refused(grant, grant.refresh_token)  # spent elsewhere
    tenant, connection_id = f"t-{uuid.uuid4().hex[:8]}", f"fx-{uuid.uuid4().hex[:8]}"
    async with closer_pool.acquire() as conn:
        await upsert_connection(
            conn,
            connection_id=connection_id,
            tenant_id=tenant,
            system="fortnox",
            base_url=fortnox.base_url,
            token_sealed=box.seal(sealed_text(json.dumps(grant.credentials()))),
            mode_of_payment="FACT",
            factoring_account=1512,
            bank_account=1930,
        )
        await schedule(conn, tenant, connection_id, number, total)
    poster = EntryPoster(box, closer_pool)
    try:
        [job] = await run_jobs(closer_pool, poster, tenant, 1)
    finally:
        await poster.aclose()
    assert job["state"] == "failed"
    assert "ERP authorization refused" in job["last_error"]
    assert "invalid_grant" in job["last_error"]
    for secret in (grant.refresh_token, grant.client_secret):
        assert secret not in job["last_error"]
    assert erp_payments(fortnox, company, number) == 0


def test_connections_add_takes_a_plain_token_or_oauth_json(
    fresh_database_url: str,
    key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("ENCRYPTION_KEY", key)
    oauth = {"client_id": "nordflow", "client_secret": "closer-secret", "refresh_token": "rt-1"}
    monkeypatch.setenv("PLAIN_TOKEN", "demo-token-1")
    monkeypatch.setenv("OAUTH_JSON", json.dumps(oauth))
    monkeypatch.setenv(
        "BAD_JSON", json.dumps({"client_id": "nordflow", "client_secret": "closer-secret"})
    )

    def add(connection_id: str, env: str) -> int:
        return main(
            [
                "connections", "add", "--tenant", "t-cli", "--connection-id", connection_id,
                "--base-url", "http://fortnox.invalid", "--token-env", env,
            ]
        )  # fmt: skip

    assert add("fx-plain", "PLAIN_TOKEN") == 0
    assert add("fx-oauth", "OAUTH_JSON") == 0
    with pytest.raises(SystemExit) as refused_add:
        add("fx-bad", "BAD_JSON")
    assert "credentials.refresh_token" in str(refused_add.value)
    assert "closer-secret" not in str(refused_add.value)
    assert "closer-secret" not in capsys.readouterr().out

    async def sealed() -> dict[str, str]:
        conn = await asyncpg.connect(
            fresh_database_url, server_settings={"search_path": "ledger_closer"}
        )
        try:
            rows = await conn.fetch("SELECT connection_id, token_sealed FROM erp_connections")
        finally:
            await conn.close()
        box = SecretBox(SecretStr(key))
        return {
            r["connection_id"]: box.open(bytes(r["token_sealed"])).get_secret_value() for r in rows
        }

    stored = asyncio.run(sealed())
    assert stored["fx-plain"] == "demo-token-1"
    assert json.loads(stored["fx-oauth"]) == oauth
    assert "fx-bad" not in stored
