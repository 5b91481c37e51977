"""FortnoxClient with Fortnox's OAuth2 against the sandbox: refreshed after a 401, rotated
refresh tokens saved, and no secret in errors or reprs."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from nordflow_connectors.fortnox import DEFAULT_TOKEN_URL, FortnoxClient
from nordflow_connectors.oauth import InMemoryTokenStore, OAuthError, OAuthSession, Tokens
from nordflow_connectors.resilience import PartnerError
from nordflow_sandboxes.fortnox.testing import (
    RunningFortnoxSandbox,
    SandboxAuthorization,
    SandboxCompany,
)
from nordflow_sandboxes.kit.values import stockholm_today
from pydantic import SecretStr

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def initial(grant: SandboxAuthorization) -> InMemoryTokenStore:
    return InMemoryTokenStore(Tokens(SecretStr(""), SecretStr(grant.refresh_token), LONG_AGO))


@pytest.fixture
def grant(
    bulk_sandbox: RunningFortnoxSandbox, bulk_company: SandboxCompany
) -> SandboxAuthorization:
    return bulk_sandbox.authorize(bulk_company)


@pytest.fixture
def store(grant: SandboxAuthorization) -> InMemoryTokenStore:
    return initial(grant)


@pytest.fixture
async def session(
    grant: SandboxAuthorization, store: InMemoryTokenStore
) -> AsyncIterator[OAuthSession]:
    oauth = OAuthSession(grant.token_url, grant.client_id, SecretStr(grant.client_secret), store)
    yield oauth
    await oauth.aclose()


async def seed(sandbox: RunningFortnoxSandbox, company: SandboxCompany, count: int) -> None:
    async with httpx.AsyncClient(
        base_url=f"{sandbox.base_url}/3/", headers=company.headers
    ) as http:
        customer = (await http.post("customers", json={"Customer": {"Name": "Kund AB"}})).json()
        number = customer["Customer"]["CustomerNumber"]
        for _ in range(count):
            body = {
                "CustomerNumber": number,
                "InvoiceRows": [{"Description": "x", "DeliveredQuantity": 1, "Price": 100}],
            }
            assert (await http.post("invoices", json={"Invoice": body})).status_code == 201


def test_the_documented_endpoint_is_the_default() -> None:
    assert DEFAULT_TOKEN_URL == "https://apps.fortnox.se/oauth-v1/token"


async def test_an_access_token_expiring_mid_listing_is_refreshed_and_the_rotation_saved(
    bulk_sandbox: RunningFortnoxSandbox,
    bulk_company: SandboxCompany,
    grant: SandboxAuthorization,
    session: OAuthSession,
    store: InMemoryTokenStore,
) -> None:
    await seed(bulk_sandbox, bulk_company, 5)
    client = FortnoxClient(bulk_sandbox.base_url, session, page_size=2)
    try:
        listed = []
        async for item in client.invoices_modified_since(LONG_AGO):
            listed.append(item["DocumentNumber"])
            if len(listed) == 1:
                # The hour is over while the listing is between pages.
                assert bulk_sandbox.expire_access_tokens(bulk_company) == 1
        assert len(listed) == 5
    finally:
        await client.aclose()
    assert session.refreshes == 2  # the first use, and once after the 401
    assert len(store.saved) == 2
    assert bulk_sandbox.refresh_tokens_redeemed(bulk_company) == 2
    chain = [grant.refresh_token, *(t.refresh_token.get_secret_value() for t in store.saved)]
    assert len(set(chain)) == 3  # every refresh rotated the refresh token

    async with httpx.AsyncClient() as http:
        for spent in chain[:2]:
            answer = await http.post(
                grant.token_url,
                data={"grant_type": "refresh_token", "refresh_token": spent},
                auth=(grant.client_id, grant.client_secret),
            )
            assert answer.status_code == 400
            assert answer.json()["error"] == "invalid_grant"


async def test_a_create_refused_with_401_is_sent_once_more_after_refreshing(
    bulk_sandbox: RunningFortnoxSandbox,
    bulk_company: SandboxCompany,
    session: OAuthSession,
) -> None:
    await seed(bulk_sandbox, bulk_company, 1)
    client = FortnoxClient(bulk_sandbox.base_url, session)
    try:
        await session.access_token()
        bulk_sandbox.expire_access_tokens(bulk_company)
        listed = [i async for i in client.invoices_modified_since(LONG_AGO)]
        number = str(listed[-1]["DocumentNumber"])
        bulk_sandbox.expire_access_tokens(bulk_company)
        payment = await client.create_payment(
            document_number=number,
            amount=Decimal("5.00"),
            payment_date=stockholm_today(dt.datetime.now(dt.UTC)),  # Fortnox's dates are Swedish
            mode_of_payment="FACT",
            account=1512,
        )
        assert len(await client.payments_for_invoice(number)) == 1
        assert payment["InvoiceNumber"] == int(number)
    finally:
        await client.aclose()
    assert session.refreshes == 3


async def test_a_spent_grant_is_an_oauth_error_without_secrets(
    bulk_sandbox: RunningFortnoxSandbox, grant: SandboxAuthorization
) -> None:
    first = OAuthSession(
        grant.token_url, grant.client_id, SecretStr(grant.client_secret), initial(grant)
    )
    second = OAuthSession(
        grant.token_url, grant.client_id, SecretStr(grant.client_secret), initial(grant)
    )
    client = FortnoxClient(bulk_sandbox.base_url, second)
    try:
        await first.access_token()
        # A second holder of the same refresh token (e.g. another service given the same
        # authorization) is locked out: the token was spent by the first.
        with pytest.raises(OAuthError) as caught:
            await client.customer("1")
    finally:
        await client.aclose()
        await first.aclose()
        await second.aclose()
    assert caught.value.error == "invalid_grant"
    assert caught.value.reauthorization_required
    for secret in (grant.refresh_token, grant.client_secret):
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)
    assert grant.client_secret not in repr(grant)
    assert grant.refresh_token not in repr(grant)


async def test_a_static_token_still_works_and_its_401_is_a_partner_error(
    bulk_sandbox: RunningFortnoxSandbox, bulk_company: SandboxCompany
) -> None:
    await seed(bulk_sandbox, bulk_company, 1)
    client = FortnoxClient(bulk_sandbox.base_url, SecretStr(bulk_company.token))
    try:
        assert [i async for i in client.invoices_modified_since(LONG_AGO)]
    finally:
        await client.aclose()
    wrong = FortnoxClient(bulk_sandbox.base_url, SecretStr("not-a-token-at-all"))
    try:
        with pytest.raises(PartnerError) as caught:
            await wrong.customer("1")
    finally:
        await wrong.aclose()
    assert caught.value.status == 401
    assert "not-a-token-at-all" not in str(caught.value)
