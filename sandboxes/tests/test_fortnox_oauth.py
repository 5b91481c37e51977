"""Fortnox OAuth2 in the sandbox: Basic client auth, rotating refresh tokens, expiring access."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import httpx
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.oauth import TOKEN_PATH

if TYPE_CHECKING:
    from conftest import FakeClock


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


async def authorize(client: httpx.AsyncClient, token: str, **body: str) -> dict[str, str]:
    response = await client.post(
        "/sandbox/oauth/authorizations", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def redeem(client: httpx.AsyncClient, grant: dict[str, str], refresh: str) -> httpx.Response:
    return await client.post(
        TOKEN_PATH,
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        headers=basic(grant["client_id"], grant["client_secret"]),
    )


async def test_a_refresh_rotates_and_the_old_refresh_token_is_refused(
    client: httpx.AsyncClient, token: str
) -> None:
    grant = await authorize(client, token)
    assert grant["token_url"].endswith("/oauth-v1/token")
    first = await redeem(client, grant, grant["refresh_token"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] != grant["refresh_token"]
    assert first.headers["cache-control"] == "no-store"

    again = await redeem(client, grant, grant["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"

    api = await client.get(
        "/3/companyinformation", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert api.status_code == 200
    second = await redeem(client, grant, body["refresh_token"])
    assert second.status_code == 200


async def test_the_client_must_authenticate_with_basic(
    client: httpx.AsyncClient, token: str
) -> None:
    grant = await authorize(client, token)
    posted = await client.post(
        TOKEN_PATH,
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
            "client_id": grant["client_id"],
            "client_secret": grant["client_secret"],
        },
    )
    assert posted.status_code == 401
    assert posted.json()["error"] == "invalid_client"
    wrong = await client.post(
        TOKEN_PATH,
        data={"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]},
        headers=basic(grant["client_id"], "not-the-secret"),
    )
    assert wrong.status_code == 401
    # Refused attempts spend nothing.
    assert (await redeem(client, grant, grant["refresh_token"])).status_code == 200


async def test_another_clients_refresh_token_and_other_grants_are_refused(
    client: httpx.AsyncClient, token: str
) -> None:
    mine = await authorize(client, token)
    other = await authorize(client, token)
    assert mine["client_id"] != other["client_id"]
    stolen = await redeem(client, other, mine["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    code = await client.post(
        TOKEN_PATH,
        data={"grant_type": "authorization_code", "code": "x"},
        headers=basic(mine["client_id"], mine["client_secret"]),
    )
    assert code.json()["error"] == "unsupported_grant_type"


async def test_two_authorizations_of_one_client_are_independent_chains(
    client: httpx.AsyncClient, token: str
) -> None:
    reader = await authorize(client, token, client_id="nordflow-app", client_secret="s3cret-app")
    writer = await authorize(client, token, client_id="nordflow-app")
    assert writer["client_secret"] == "s3cret-app"
    assert (await redeem(client, reader, reader["refresh_token"])).status_code == 200
    assert (await redeem(client, writer, writer["refresh_token"])).status_code == 200
    clash = await client.post(
        "/sandbox/oauth/authorizations",
        json={"client_id": "nordflow-app", "client_secret": "another-secret"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert clash.status_code == 409


async def test_an_expired_access_token_answers_401_and_fixed_tokens_keep_working(
    client: httpx.AsyncClient, token: str, clock: FakeClock
) -> None:
    grant = await authorize(client, token)
    access = (await redeem(client, grant, grant["refresh_token"])).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    assert (await client.get("/3/invoices", headers=headers)).status_code == 200

    clock.advance(seconds=3601)
    expired = await client.get("/3/invoices", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["ErrorInformation"]["code"] == 2000310
    fixed = await client.get("/3/invoices", headers={"Authorization": f"Bearer {token}"})
    assert fixed.status_code == 200


async def test_the_admin_route_expires_access_tokens_now(
    client: httpx.AsyncClient, token: str, state: FortnoxState
) -> None:
    grant = await authorize(client, token)
    access = (await redeem(client, grant, grant["refresh_token"])).json()["access_token"]
    ended = await client.post(
        "/sandbox/oauth/expire", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert ended.json() == {"expired": 1}
    denied = await client.get("/3/invoices", headers={"Authorization": f"Bearer {access}"})
    assert denied.status_code == 401
    stats = (
        await client.get("/sandbox/stats", headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert (stats["authorizations"], stats["refresh_tokens_redeemed"]) == (1, 1)
    assert state.token_expired(access)


async def test_a_refresh_token_older_than_45_days_is_refused(
    client: httpx.AsyncClient, token: str, clock: FakeClock
) -> None:
    grant = await authorize(client, token)
    clock.advance(days=45, seconds=1)
    late = await redeem(client, grant, grant["refresh_token"])
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"
