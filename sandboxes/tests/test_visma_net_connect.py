"""Visma Connect in the Visma.net sandbox: client-credentials tokens for service integrations."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from nordflow_sandboxes.kit.testing import ManualClock
from nordflow_sandboxes.visma_net import VismaNetState, create_app
from nordflow_sandboxes.visma_net.connect import DEFAULT_SCOPE, TOKEN_PATH


@pytest.fixture
def connect_clock() -> ManualClock:
    return ManualClock(datetime(2025, 5, 6, 9, 0, tzinfo=UTC))


@pytest.fixture
def connect_state(connect_clock: ManualClock) -> VismaNetState:
    return VismaNetState(clock=connect_clock)


@pytest.fixture
async def http(connect_state: VismaNetState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(connect_state))
    async with httpx.AsyncClient(transport=transport, base_url="http://vn.test") as client:
        yield client


async def service_client(http: httpx.AsyncClient) -> dict[str, str]:
    company = (await http.post("/sandbox/companies", json={"name": "Fjord AS"})).json()
    registered = await http.post(
        "/sandbox/connect/clients", json={"company_id": company["company_id"]}
    )
    assert registered.status_code == 201, registered.text
    return {**registered.json(), "fixed_token": company["token"]}


def form(client: dict[str, str], **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": DEFAULT_SCOPE,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "tenant_id": client["tenant_id"],
        **overrides,
    }


async def test_a_service_token_opens_the_tenants_company(http: httpx.AsyncClient) -> None:
    client = await service_client(http)
    assert client["token_url"].endswith(TOKEN_PATH)
    answer = await http.post(TOKEN_PATH, data=form(client))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert "refresh_token" not in body
    headers = {
        "Authorization": f"Bearer {body['access_token']}",
        "ipp-company-id": client["company_id"],
    }
    assert (await http.get("/v1/customer", headers=headers)).status_code == 200
    stats = await http.get("/sandbox/connect/stats", params={"company_id": client["company_id"]})
    assert stats.json() == {"tokens_issued": 1}
    # The company's fixed token keeps working beside it.
    fixed = {**headers, "Authorization": f"Bearer {client['fixed_token']}"}
    assert (await http.get("/v1/customer", headers=fixed)).status_code == 200


async def test_basic_client_authentication_is_accepted_too(http: httpx.AsyncClient) -> None:
    client = await service_client(http)
    pair = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    data = {k: v for k, v in form(client).items() if k not in {"client_id", "client_secret"}}
    answer = await http.post(TOKEN_PATH, data=data, headers={"Authorization": f"Basic {pair}"})
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"client_secret": "wrong-secret"}, 401, "invalid_client"),
        ({"tenant_id": ""}, 400, "invalid_request"),
        ({"tenant_id": "0b8e7a59-0000-0000-0000-000000000000"}, 400, "invalid_tenant"),
        ({"scope": "ea:api"}, 400, "invalid_scope"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
async def test_refusals_are_rfc6749_errors(
    http: httpx.AsyncClient, overrides: dict[str, str], status: int, error: str
) -> None:
    client = await service_client(http)
    answer = await http.post(TOKEN_PATH, data=form(client, **overrides))
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert client["client_secret"] not in answer.text


async def test_an_access_token_expires_and_the_admin_can_end_it_early(
    http: httpx.AsyncClient, connect_clock: ManualClock
) -> None:
    client = await service_client(http)

    async def token() -> dict[str, str]:
        access = (await http.post(TOKEN_PATH, data=form(client))).json()["access_token"]
        return {"Authorization": f"Bearer {access}", "ipp-company-id": client["company_id"]}

    headers = await token()
    connect_clock.advance(seconds=3600)
    assert (await http.get("/v1/customer", headers=headers)).status_code == 401

    headers = await token()
    assert (await http.get("/v1/customer", headers=headers)).status_code == 200
    ended = await http.post("/sandbox/connect/expire", json={"company_id": client["company_id"]})
    assert ended.json() == {"expired": 1}
    assert (await http.get("/v1/customer", headers=headers)).status_code == 401


async def test_a_client_approved_for_two_tenants_reaches_each_only_with_its_tenant_id(
    http: httpx.AsyncClient,
) -> None:
    first = await service_client(http)
    second_company = (await http.post("/sandbox/companies", json={"name": "Fjell AS"})).json()
    second = (
        await http.post(
            "/sandbox/connect/clients",
            json={
                "company_id": second_company["company_id"],
                "client_id": first["client_id"],
                "client_secret": first["client_secret"],
            },
        )
    ).json()
    assert second["tenant_id"] != first["tenant_id"]
    access = (await http.post(TOKEN_PATH, data=form(first))).json()["access_token"]
    other = {"Authorization": f"Bearer {access}", "ipp-company-id": second["company_id"]}
    assert (await http.get("/v1/customer", headers=other)).status_code == 400
