"""Rotating eAccounting refresh tokens in PostgreSQL: durable, shared by processes, never reused.

"Processes" are separate client caches, sessions and token stores over one database, each
knowing only what it reads from PostgreSQL, exactly as two replicas (or a restart) would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import httpx
import pytest
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.adapters.tokens import PgTokenStore
from erp_poller.domain.connections import ConnectionConfig
from erp_poller.domain.credentials import seal_form
from erp_poller.entrypoints.loops import Steps
from erp_poller.testing import given_profile, seller_profile, steps_on
from nordflow_connectors.oauth import OAuthSession, Tokens
from nordflow_runtime.crypto import SecretBox
from nordflow_sandboxes.visma_eaccounting.testing import (
    RunningVismaEAccountingSandbox,
    SandboxCompany,
)
from nordflow_schemas.common import ConnectionMode, SourceSystem
from pydantic import SecretStr

pytestmark = pytest.mark.integration

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


async def connect(
    pool: asyncpg.Pool, box: SecretBox, sandbox: RunningVismaEAccountingSandbox
) -> tuple[str, str, SandboxCompany]:
    company = sandbox.create_company()
    connection_id, tenant = f"conn-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:8]}"
    credentials = {
        "client_id": company.client_id,
        "client_secret": company.client_secret,
        "refresh_token": company.refresh_token,
        "token_url": sandbox.token_url,
    }
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=connection_id,
            tenant_id=tenant,
            system=SourceSystem.VISMA_EACCOUNTING,
            base_url=sandbox.base_url,
            token_sealed=box.seal(seal_form(SourceSystem.VISMA_EACCOUNTING, credentials)),
            mode=ConnectionMode.AUTOMATIC,
            cutoff_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
        )
    )
    await given_profile(PgUnitOfWork(pool), tenant, seller_profile("Säljare AB"))
    return connection_id, tenant, company


def process(pool: asyncpg.Pool, box: SecretBox) -> Steps:
    return steps_on(pool, box)


def initial(company: SandboxCompany) -> Tokens:
    return Tokens(SecretStr(""), SecretStr(company.refresh_token), EPOCH)


async def redeemed(sandbox: RunningVismaEAccountingSandbox, company: SandboxCompany) -> int:
    with sandbox.admin() as admin:
        return int(admin.stats(company.company_id)["refresh_tokens_redeemed"])


async def test_rotated_tokens_survive_a_restart_and_the_spent_one_is_refused(
    pool: asyncpg.Pool, box: SecretBox, eaccounting_sandbox: RunningVismaEAccountingSandbox
) -> None:
    connection_id, tenant, company = await connect(pool, box, eaccounting_sandbox)
    eaccounting_sandbox.seed_invoice(
        company.company_id, str(eaccounting_sandbox.seed_customer(company.company_id)["Id"])
    )
    first = process(pool, box)
    assert await first.poll_one()
    error = await pool.fetchval(
        "SELECT last_error FROM connections WHERE connection_id = $1", connection_id
    )
    assert error is None
    row = await pool.fetchrow("SELECT * FROM oauth_tokens WHERE connection_id = $1", connection_id)
    assert row is not None
    assert row["rotations"] == 1
    assert row["tenant_id"] == tenant
    assert company.refresh_token.encode() not in bytes(row["tokens_sealed"])

    # The initial refresh token is spent: the sandbox refuses it.
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            eaccounting_sandbox.token_url,
            data={"grant_type": "refresh_token", "refresh_token": company.refresh_token},
            auth=(company.client_id, company.client_secret),
        )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"

    # Another process (or this one restarted) reads the rotated tokens from PostgreSQL.
    stored = await PgTokenStore(pool, box, connection_id, tenant, initial(company)).load()
    assert stored is not None
    assert stored.refresh_token.get_secret_value() != company.refresh_token

    # Its access token ends; the second process refreshes with the stored refresh token.
    with eaccounting_sandbox.admin() as admin:
        admin.expire_access_tokens(company.company_id)
    second = process(pool, box)
    assert await second.poll_one()
    assert (
        await pool.fetchval(
            "SELECT last_error FROM connections WHERE connection_id = $1", connection_id
        )
        is None
    )
    assert (
        await pool.fetchval(
            "SELECT rotations FROM oauth_tokens WHERE connection_id = $1", connection_id
        )
        == 2
    )
    assert await redeemed(eaccounting_sandbox, company) == 2

    # The first process still holds the spent token in memory: on the 401 it adopts the
    # stored tokens instead of redeeming a dead refresh token.
    assert await first.poll_one()
    assert (
        await pool.fetchval(
            "SELECT last_error FROM connections WHERE connection_id = $1", connection_id
        )
        is None
    )
    assert await redeemed(eaccounting_sandbox, company) == 2
    await first.sources.aclose()
    await second.sources.aclose()


async def test_two_processes_refreshing_at_once_redeem_the_refresh_token_once(
    pool: asyncpg.Pool, box: SecretBox, eaccounting_sandbox: RunningVismaEAccountingSandbox
) -> None:
    connection_id, tenant, company = await connect(pool, box, eaccounting_sandbox)
    sessions = [
        OAuthSession(
            eaccounting_sandbox.token_url,
            company.client_id,
            SecretStr(company.client_secret),
            PgTokenStore(pool, box, connection_id, tenant, initial(company)),
        )
        for _ in range(3)
    ]
    try:
        tokens = await asyncio.gather(*(s.refresh() for s in sessions))
    finally:
        for session in sessions:
            await session.aclose()
    assert len({t.get_secret_value() for t in tokens}) == 1
    assert await redeemed(eaccounting_sandbox, company) == 1
    assert sum(s.refreshes for s in sessions) == 1


async def test_re_adding_a_connection_with_a_new_grant_starts_from_it(
    pool: asyncpg.Pool, box: SecretBox, eaccounting_sandbox: RunningVismaEAccountingSandbox
) -> None:
    connection_id, tenant, company = await connect(pool, box, eaccounting_sandbox)
    store = PgTokenStore(pool, box, connection_id, tenant, initial(company))
    session = OAuthSession(
        eaccounting_sandbox.token_url, company.client_id, SecretStr(company.client_secret), store
    )
    try:
        await session.access_token()
    finally:
        await session.aclose()
    loaded = await store.load()
    assert loaded is not None
    assert loaded.refresh_token.get_secret_value() != company.refresh_token

    with eaccounting_sandbox.admin() as admin:
        fresh = admin.new_refresh_token(company.company_id)
    regranted = PgTokenStore(
        pool, box, connection_id, tenant, Tokens(SecretStr(""), SecretStr(fresh), EPOCH)
    )
    again = await regranted.load()
    assert again is not None
    assert again.refresh_token.get_secret_value() == fresh
