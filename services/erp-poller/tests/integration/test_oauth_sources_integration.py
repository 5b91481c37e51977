"""Fortnox OAuth2 and Visma.net client-credentials connections, polled end to end.

Real PostgreSQL, each partner's sandbox in-process. "Processes" are separate client caches
over one database, as two replicas (or a restart) would be.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator

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
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.domain import Company, RequestRecord
from nordflow_sandboxes.fortnox.testing import (
    RunningFortnoxSandbox,
    SandboxAuthorization,
    SandboxCompany,
    running_fortnox_sandbox,
)
from nordflow_sandboxes.visma_net.connect import register_service_client
from nordflow_sandboxes.visma_net.testing import RunningVismaNetSandbox
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.envelope import decode
from nordflow_schemas.events import ErpDocumentFetched
from pydantic import SecretStr

pytestmark = pytest.mark.integration

PROFILE = seller_profile("Nordflow Test AB", organisation_number="556036-0793")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class HourEndsState(FortnoxState):
    """Fortnox whose access tokens run out after a set number of a company's API calls: the
    hour ends in the middle of a poll."""

    def __init__(self) -> None:
        super().__init__(rate_limit=100_000)
        self.calls_left: dict[str, int] = {}

    def record_request(self, company: Company, record: RequestRecord) -> None:
        super().record_request(company, record)
        with self.lock:
            left = self.calls_left.get(company.company_id)
            if left is None:
                return
            if left > 1:
                self.calls_left[company.company_id] = left - 1
                return
            del self.calls_left[company.company_id]
            self.oauth.expire_access_tokens(company)


@pytest.fixture(scope="module")
def oauth_sandbox() -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox(HourEndsState()) as running:
        yield running


def hour_ends_after(sandbox: RunningFortnoxSandbox, company: SandboxCompany, calls: int) -> None:
    state = sandbox.state
    assert isinstance(state, HourEndsState)
    with state.lock:
        state.calls_left[company.company_id] = calls


def seed_invoices(sandbox: RunningFortnoxSandbox, company: SandboxCompany, count: int) -> list[str]:
    with httpx.Client(base_url=f"{sandbox.base_url}/3/", headers=company.headers) as http:
        customer = http.post("customers", json={"Customer": {"Name": "Kund AB"}}).json()
        number = customer["Customer"]["CustomerNumber"]
        numbers = []
        for _ in range(count):
            rows = [{"Description": "Tjänst", "DeliveredQuantity": 1, "Price": 100}]
            body = {"Invoice": {"CustomerNumber": number, "InvoiceRows": rows}}
            numbers.append(
                str(http.post("invoices", json=body).json()["Invoice"]["DocumentNumber"])
            )
    return numbers


async def add_connection(
    pool: asyncpg.Pool,
    box: SecretBox,
    system: SourceSystem,
    base_url: str,
    credentials: dict[str, str],
) -> tuple[str, str]:
    connection_id, tenant = f"conn-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:8]}"
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=connection_id,
            tenant_id=tenant,
            system=system,
            base_url=base_url,
            token_sealed=box.seal(seal_form(system, credentials)),
            mode=ConnectionMode.AUTOMATIC,
            cutoff_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10),
        )
    )
    await given_profile(PgUnitOfWork(pool), tenant, PROFILE)
    return connection_id, tenant


def process(pool: asyncpg.Pool, box: SecretBox) -> Steps:
    return steps_on(pool, box, page_size=2)


async def emitted(pool: asyncpg.Pool, connection_id: str) -> list[ErpDocumentFetched]:
    out = []
    for row in await pool.fetch(
        "SELECT value, headers FROM outbox WHERE topic = 'erp.document.fetched' ORDER BY seq"
    ):
        headers = [(name, base64.b64decode(value)) for name, value in json.loads(row["headers"])]
        body = decode(bytes(row["value"]), headers).body
        assert isinstance(body, ErpDocumentFetched)
        if body.source.connection_id == connection_id:
            out.append(body)
    return out


async def state_of(pool: asyncpg.Pool, connection_id: str) -> tuple[str | None, int | None]:
    row = await pool.fetchrow(
        "SELECT c.last_error, t.rotations FROM connections c "
        "LEFT JOIN oauth_tokens t USING (connection_id) WHERE c.connection_id = $1",
        connection_id,
    )
    assert row is not None
    return row["last_error"], row["rotations"]


async def refused(grant: SandboxAuthorization, refresh_token: str) -> bool:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            grant.token_url,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(grant.client_id, grant.client_secret),
        )
    return answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


# ----------------------------------------------------------------------------- Fortnox


async def test_a_fortnox_poll_survives_the_access_token_expiring_mid_poll(
    pool: asyncpg.Pool, box: SecretBox, oauth_sandbox: RunningFortnoxSandbox
) -> None:
    company = oauth_sandbox.create_company()
    documents = seed_invoices(oauth_sandbox, company, 5)
    grant = oauth_sandbox.authorize(company)
    connection_id, tenant = await add_connection(
        pool, box, SourceSystem.FORTNOX, oauth_sandbox.base_url, grant.credentials()
    )
    hour_ends_after(oauth_sandbox, company, 4)  # after the listing's pages, among the reads

    first = process(pool, box)
    assert await first.poll_one()
    assert await state_of(pool, connection_id) == (None, 2)  # first use, and after the 401
    assert sorted(e.source.document_id for e in await emitted(pool, connection_id)) == sorted(
        documents
    )
    assert oauth_sandbox.refresh_tokens_redeemed(company) == 2
    assert await refused(grant, grant.refresh_token)
    sealed = await pool.fetchval(
        "SELECT tokens_sealed FROM oauth_tokens WHERE connection_id = $1", connection_id
    )
    assert grant.refresh_token.encode() not in bytes(sealed)

    # A restarted process starts from the stored tokens, not the spent initial grant.
    stored = await PgTokenStore(
        pool,
        box,
        connection_id,
        tenant,
        Tokens(SecretStr(""), SecretStr(grant.refresh_token), EPOCH),
    ).load()
    assert stored is not None
    oauth_sandbox.expire_access_tokens(company)
    second = process(pool, box)
    assert await second.poll_one()
    assert await state_of(pool, connection_id) == (None, 3)
    assert await refused(grant, stored.refresh_token.get_secret_value())
    await first.sources.aclose()
    await second.sources.aclose()


async def test_two_replicas_refreshing_at_once_redeem_the_refresh_token_once(
    pool: asyncpg.Pool, box: SecretBox, oauth_sandbox: RunningFortnoxSandbox
) -> None:
    company = oauth_sandbox.create_company()
    grant = oauth_sandbox.authorize(company)
    connection_id, tenant = await add_connection(
        pool, box, SourceSystem.FORTNOX, oauth_sandbox.base_url, grant.credentials()
    )
    initial = Tokens(SecretStr(""), SecretStr(grant.refresh_token), EPOCH)
    sessions = [
        OAuthSession(
            grant.token_url,
            grant.client_id,
            SecretStr(grant.client_secret),
            PgTokenStore(pool, box, connection_id, tenant, initial),
        )
        for _ in range(2)
    ]
    try:
        tokens = await asyncio.gather(*(s.access_token() for s in sessions))
    finally:
        for session in sessions:
            await session.aclose()
    assert len({t.get_secret_value() for t in tokens}) == 1
    assert oauth_sandbox.refresh_tokens_redeemed(company) == 1
    assert sum(s.refreshes for s in sessions) == 1
    assert (await state_of(pool, connection_id))[1] == 1


async def test_a_spent_grant_is_reported_without_secrets_and_asks_for_a_new_authorization(
    pool: asyncpg.Pool, box: SecretBox, oauth_sandbox: RunningFortnoxSandbox
) -> None:
    company = oauth_sandbox.create_company()
    seed_invoices(oauth_sandbox, company, 1)
    grant = oauth_sandbox.authorize(company)
    # Someone else redeemed this refresh token (e.g. it was given to another service too).
    assert not await refused(grant, grant.refresh_token)
    connection_id, _ = await add_connection(
        pool, box, SourceSystem.FORTNOX, oauth_sandbox.base_url, grant.credentials()
    )
    steps = process(pool, box)
    assert await steps.poll_one()
    error, rotations = await state_of(pool, connection_id)
    assert rotations is None
    assert error is not None
    assert "invalid_grant" in error
    assert "authorize erp-poller again" in error
    for secret in (grant.refresh_token, grant.client_secret):
        assert secret not in error
    await steps.sources.aclose()


# --------------------------------------------------------------------------- Visma.net


async def test_a_visma_net_service_integration_fetches_one_token_and_reuses_it(
    pool: asyncpg.Pool, box: SecretBox, visma_net_sandbox: RunningVismaNetSandbox
) -> None:
    company = visma_net_sandbox.create_company()
    with visma_net_sandbox.admin() as admin:
        customer = admin.seed_customer(company)
        documents = [admin.seed_invoice(company, customer) for _ in range(3)]
    service = register_service_client(
        visma_net_sandbox.state, visma_net_sandbox.base_url, company.company_id
    )
    connection_id, _ = await add_connection(
        pool, box, SourceSystem.VISMA_NET, visma_net_sandbox.base_url, service.credentials()
    )
    connect = visma_net_sandbox.state.connect
    steps = process(pool, box)
    assert await steps.poll_one()
    assert await steps.poll_one()
    assert (await state_of(pool, connection_id))[0] is None
    assert connect.tokens_issued(company.company_id) == 1
    assert sorted(e.source.document_id for e in await emitted(pool, connection_id)) == sorted(
        documents
    )

    connect.expire_access_tokens(company.company_id)  # answered 401: fetched again, resent
    assert await steps.poll_one()
    assert (await state_of(pool, connection_id))[0] is None
    assert connect.tokens_issued(company.company_id) == 2
    await steps.sources.aclose()
