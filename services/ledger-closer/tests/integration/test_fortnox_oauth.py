"""ledger-closer writes through its own Fortnox OAuth grant while erp-poller reads through
another: two chains of rotating refresh tokens, one per service, neither spending the other's.

One database holds both services' schemas (as in production), the Fortnox sandbox runs
in-process; erp-poller is driven by its own scheduler steps, ledger-closer through
`ServiceHarness` (its consumer's batch processing and its post-entry job).
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
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.app import create_app as create_poller
from erp_poller.config import Settings as PollerSettings
from erp_poller.domain.connections import ConnectionConfig
from erp_poller.domain.credentials import seal_form
from erp_poller.testing import given_profile, steps_on
from ledger_closer.adapters.repository import PgConnectionRepository as PgWriteConnections
from ledger_closer.credentials import sealed_text
from ledger_closer.deps import Deps
from ledger_closer.entrypoints.cli import main
from ledger_closer.testing import (
    app_for,
    sandbox_invoice,
    sandbox_payments,
    source,
    transferred,
    write_connection,
)
from nordflow_runtime import db
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import (
    RunningFortnoxSandbox,
    SandboxAuthorization,
    SandboxCompany,
    running_fortnox_sandbox,
)
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import JobFailed, LedgerEntryPosted
from pydantic import SecretStr

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fortnox() -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox(FortnoxState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture
async def services(
    fresh_database_url: str, key: str
) -> AsyncIterator[tuple[ServiceHarness[Deps], asyncpg.Pool, SecretBox]]:
    """ledger-closer (a harness on its own schema) and erp-poller's migrated schema, in one
    database."""
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": "unused:9092",
        "database_url": SecretStr(fresh_database_url),
        "encryption_key": SecretStr(key),
    }
    await create_poller(PollerSettings(**common)).migrate()
    closer = await ServiceHarness.start(
        app_for(fresh_database_url, encryption_key=key), fresh_database_url
    )
    poller = await db.create_pool(fresh_database_url, "erp_poller")
    yield closer, poller, SecretBox(SecretStr(key))
    await closer.close()  # closes the writers' clients and OAuth sessions (Deps.aclose)
    await poller.close()


def erp_payments(sandbox: RunningFortnoxSandbox, company: SandboxCompany, number: str) -> int:
    return len(sandbox_payments(sandbox.base_url, company.headers, number))


async def add_write_connection(
    closer: ServiceHarness[Deps],
    box: SecretBox,
    fortnox: RunningFortnoxSandbox,
    tenant: str,
    connection_id: str,
    grant: SandboxAuthorization,
) -> None:
    await PgWriteConnections(closer.pool).save(
        write_connection(
            tenant,
            connection_id,
            base_url=fortnox.base_url,
            token_sealed=box.seal(sealed_text(json.dumps(grant.credentials()))),
        )
    )


async def close_invoice(
    closer: ServiceHarness[Deps], tenant: str, connection_id: str, number: str, total: Decimal
) -> None:
    """invoice.transferred for the invoice, then its post-entry job (and any retry) to the end."""
    await closer.publish(
        transferred(
            tenant,
            invoice_id=f"inv_{tenant}_{number}",
            source_ref=source(connection_id, number),
            amount=total,
        )
    )
    for _ in range(20):
        await closer.run_jobs(include_future=True)
        if all(j["state"] != "pending" for j in await closer.jobs()):
            return


async def job_of(closer: ServiceHarness[Deps], number: str) -> dict[str, Any]:
    [job] = [dict(j) for j in await closer.jobs() if j["job_key"].endswith(f"_{number}")]
    return job


async def refused(grant: SandboxAuthorization, refresh_token: str) -> bool:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            grant.token_url,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(grant.client_id, grant.client_secret),
        )
    return answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_each_service_rotates_its_own_grant_and_both_keep_working(
    fortnox: RunningFortnoxSandbox,
    services: tuple[ServiceHarness[Deps], asyncpg.Pool, SecretBox],
) -> None:
    closer, poller_pool, box = services
    company = fortnox.create_company()
    first_number, first_total = sandbox_invoice(fortnox.base_url, company.headers)
    # The same integration (client) authorized twice: one grant per service.
    poller_grant = fortnox.authorize(company, client_id=f"nordflow-{uuid.uuid4().hex[:6]}")
    closer_grant = fortnox.authorize(company, client_id=poller_grant.client_id)
    assert poller_grant.refresh_token != closer_grant.refresh_token

    tenant, connection_id = f"t-{uuid.uuid4().hex[:8]}", f"fx-{uuid.uuid4().hex[:8]}"
    await PgConnectionRepository(poller_pool).add(
        ConnectionConfig(
            connection_id=connection_id,
            tenant_id=tenant,
            system=SourceSystem.FORTNOX,
            base_url=fortnox.base_url,
            token_sealed=box.seal(seal_form(SourceSystem.FORTNOX, poller_grant.credentials())),
            mode=ConnectionMode.AUTOMATIC,
            cutoff_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10),
        )
    )
    await given_profile(PgUnitOfWork(poller_pool), tenant)
    await add_write_connection(closer, box, fortnox, tenant, connection_id, closer_grant)

    runner = steps_on(poller_pool, box)
    try:
        assert await runner.poll_one()
        await close_invoice(closer, tenant, connection_id, first_number, first_total)
        job = await job_of(closer, first_number)
        assert job["state"] == "done", job["last_error"]
        assert erp_payments(fortnox, company, first_number) == 1

        # The hour ends for both; each refreshes with its own chain, independently.
        assert fortnox.expire_access_tokens(company) == 2
        second_number, second_total = sandbox_invoice(fortnox.base_url, company.headers)
        await close_invoice(closer, tenant, connection_id, second_number, second_total)
        done = [dict(j) for j in await closer.jobs()]
        assert len(done) == 2
        assert all(j["state"] == "done" for j in done), done
        assert await runner.poll_one()
        assert erp_payments(fortnox, company, second_number) == 1
    finally:
        await runner.sources.aclose()

    poller_error = await poller_pool.fetchval(
        "SELECT last_error FROM connections WHERE connection_id = $1", connection_id
    )
    assert poller_error is None
    assert fortnox.refresh_tokens_redeemed(company) == 4
    rows = {}
    for name, pool in (("poller", poller_pool), ("closer", closer.pool)):
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
    fortnox: RunningFortnoxSandbox,
    services: tuple[ServiceHarness[Deps], asyncpg.Pool, SecretBox],
) -> None:
    closer, _, box = services
    company = fortnox.create_company()
    number, total = sandbox_invoice(fortnox.base_url, company.headers)
    grant = fortnox.authorize(company)
    assert not await refused(grant, grant.refresh_token)  # spent elsewhere
    tenant, connection_id = f"t-{uuid.uuid4().hex[:8]}", f"fx-{uuid.uuid4().hex[:8]}"
    await add_write_connection(closer, box, fortnox, tenant, connection_id, grant)

    await close_invoice(closer, tenant, connection_id, number, total)

    job = await job_of(closer, number)
    assert job["state"] == "failed"
    assert "ERP authorization refused" in job["last_error"]
    assert "invalid_grant" in job["last_error"]
    for secret in (grant.refresh_token, grant.client_secret):
        assert secret not in job["last_error"]
    assert erp_payments(fortnox, company, number) == 0
    emitted = await closer.emitted()
    assert emitted.of(LedgerEntryPosted) == []
    [failed] = emitted.of(JobFailed)  # the runtime announces it to operators, no secret in it
    for secret in (grant.refresh_token, grant.client_secret):
        assert secret not in failed.error


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

    def add(connection_id: str, env: str, tenant: str = "t-cli") -> int:
        return main(
            [
                "connections", "add", "--tenant", tenant, "--connection-id", connection_id,
                "--base-url", "http://fortnox.invalid", "--token-env", env,
            ]
        )  # fmt: skip

    assert add("fx-plain", "PLAIN_TOKEN") == 0
    assert "ledger connection fx-plain for tenant t-cli" in capsys.readouterr().out
    assert add("fx-oauth", "OAUTH_JSON") == 0
    assert add("fx-oauth", "PLAIN_TOKEN", tenant="t-other") == 1
    assert (
        "ledger-closer: connection 'fx-oauth' belongs to another tenant" in capsys.readouterr().err
    )
    assert add("fx-bad", "BAD_JSON") == 1
    refused = capsys.readouterr()
    assert "credentials.refresh_token" in refused.err
    assert "closer-secret" not in refused.err
    assert "closer-secret" not in refused.out

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
