"""Visma Connect client credentials: one token fetched, reused, fetched again after expiry or
a 401; errors and reprs never show the secret. Against the Visma.net sandbox on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from nordflow_connectors.client_credentials import (
    VISMA_CONNECT_TOKEN_URL,
    ClientCredentialsSession,
)
from nordflow_connectors.oauth import OAuthError
from nordflow_connectors.resilience import PartnerError
from nordflow_connectors.visma_net import VismaNetClient
from nordflow_sandboxes.visma_net.connect import (
    DEFAULT_SCOPE,
    SandboxServiceClient,
    register_service_client,
)
from nordflow_sandboxes.visma_net.testing import RunningVismaNetSandbox, running_visma_net_sandbox
from pydantic import SecretStr


@dataclass
class Clock:
    """Our side's wall clock, moved by the tests."""

    current: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.current


@pytest.fixture(scope="module")
def connect_sandbox() -> Iterator[RunningVismaNetSandbox]:
    with running_visma_net_sandbox() as running:
        yield running


@pytest.fixture
def service(connect_sandbox: RunningVismaNetSandbox) -> SandboxServiceClient:
    company = connect_sandbox.create_company()
    return register_service_client(
        connect_sandbox.state, connect_sandbox.base_url, company.company_id
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime.now(dt.UTC))


@pytest.fixture
async def tokens(
    service: SandboxServiceClient, clock: Clock
) -> AsyncIterator[ClientCredentialsSession]:
    session = ClientCredentialsSession(
        service.token_url,
        service.client_id,
        SecretStr(service.client_secret),
        scope=DEFAULT_SCOPE,
        tenant_id=service.tenant_id,
        clock=clock,
    )
    yield session
    await session.aclose()


LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


async def listed(client: VismaNetClient) -> list[dict[str, Any]]:
    return [item async for item in client.invoices_modified_since(LONG_AGO)]


def issued(sandbox: RunningVismaNetSandbox, service: SandboxServiceClient) -> int:
    return sandbox.state.connect.tokens_issued(service.company_id)


def test_visma_connect_is_the_default_endpoint() -> None:
    assert VISMA_CONNECT_TOKEN_URL == "https://connect.visma.com/connect/token"


async def test_one_token_is_fetched_and_reused_until_shortly_before_expiry(
    connect_sandbox: RunningVismaNetSandbox,
    service: SandboxServiceClient,
    tokens: ClientCredentialsSession,
    clock: Clock,
) -> None:
    async with VismaNetClient(connect_sandbox.base_url, tokens, service.company_id) as client:
        for _ in range(3):
            assert await listed(client) == []
        assert (tokens.fetches, issued(connect_sandbox, service)) == (1, 1)

        clock.current += dt.timedelta(seconds=3600 - 61)
        await listed(client)
        assert tokens.fetches == 1
        clock.current += dt.timedelta(seconds=2)  # within the 60 s margin: fetched anew
        await listed(client)
        assert (tokens.fetches, issued(connect_sandbox, service)) == (2, 2)


async def test_a_401_fetches_a_new_token_and_resends_once(
    connect_sandbox: RunningVismaNetSandbox,
    service: SandboxServiceClient,
    tokens: ClientCredentialsSession,
) -> None:
    async with VismaNetClient(connect_sandbox.base_url, tokens, service.company_id) as client:
        await listed(client)
        # Visma Connect ended the token early (revoked, or our clock is behind theirs).
        assert connect_sandbox.state.connect.expire_access_tokens(service.company_id) == 1
        assert await listed(client) == []
    assert tokens.fetches == 2


async def test_concurrent_callers_share_one_fetch(
    connect_sandbox: RunningVismaNetSandbox,
    service: SandboxServiceClient,
    tokens: ClientCredentialsSession,
) -> None:
    got = await asyncio.gather(*(tokens() for _ in range(8)))
    assert len({t.get_secret_value() for t in got}) == 1
    assert issued(connect_sandbox, service) == 1
    stale = got[0]
    connect_sandbox.state.connect.expire_access_tokens(service.company_id)
    renewed = await asyncio.gather(*(tokens.refresh(rejected=stale) for _ in range(4)))
    assert len({t.get_secret_value() for t in renewed}) == 1
    assert tokens.fetches == 2


async def test_refusals_name_the_error_never_the_secret(
    connect_sandbox: RunningVismaNetSandbox, service: SandboxServiceClient
) -> None:
    wrong = ClientCredentialsSession(
        service.token_url,
        service.client_id,
        SecretStr("definitely-not-the-secret"),
        scope=DEFAULT_SCOPE,
        tenant_id=service.tenant_id,
    )
    foreign = ClientCredentialsSession(
        service.token_url,
        service.client_id,
        SecretStr(service.client_secret),
        scope=DEFAULT_SCOPE,
        tenant_id="00000000-0000-0000-0000-000000000000",
    )
    try:
        with pytest.raises(OAuthError) as bad_client:
            await wrong()
        with pytest.raises(OAuthError) as bad_tenant:
            await foreign()
    finally:
        await wrong.aclose()
        await foreign.aclose()
    assert (bad_client.value.status, bad_client.value.error) == (401, "invalid_client")
    assert bad_client.value.permanent
    assert (bad_tenant.value.status, bad_tenant.value.error) == (400, "invalid_tenant")
    for caught, secret in (
        (bad_client, "definitely-not-the-secret"),
        (bad_tenant, service.client_secret),
    ):
        assert secret not in str(caught.value)
    assert service.client_secret not in repr(foreign)
    assert service.client_secret not in repr(service)


async def test_a_fixed_token_client_keeps_its_behaviour(
    connect_sandbox: RunningVismaNetSandbox,
) -> None:
    company = connect_sandbox.create_company()
    async with VismaNetClient(
        connect_sandbox.base_url, SecretStr(company.token), company.company_id
    ) as client:
        assert await listed(client) == []
    async with VismaNetClient(
        connect_sandbox.base_url, SecretStr("unknown-token-1"), company.company_id
    ) as client:
        with pytest.raises(PartnerError) as caught:
            await listed(client)
    assert caught.value.status == 401
