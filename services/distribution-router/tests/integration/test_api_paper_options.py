"""The paper options API on the real PostgreSQL: validation naming the field, replace and
delete, and that a tenant sees and changes only its own options."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from distribution_router.adapters.repositories import PgPaperOptionsRepository
from distribution_router.service import paper
from distribution_router.testing import bearer

pytestmark = pytest.mark.integration

URL = "/api/v1/paper-options"
DEFAULTS = {"postage": "B", "colour": False, "duplex": True}
UNSET = {
    "postage": None,
    "colour": None,
    "duplex": None,
    "updated_at": None,
    "effective": DEFAULTS,
}


async def auth(pool: asyncpg.Pool, tenant: str) -> dict[str, str]:
    return await bearer(pool, tenant)


def tenant_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def refused_fields(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {".".join(str(p) for p in e["loc"][1:]): e["msg"] for e in response.json()["detail"]}


async def test_the_options_need_a_valid_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401
    assert (await client.put(URL, json={"postage": "A"})).status_code == 401


async def test_unset_options_are_the_service_defaults(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    got = await client.get(URL, headers=await auth(pool, tenant_id()))
    assert got.status_code == 200
    assert got.json() == UNSET


async def test_options_are_set_replaced_and_deleted(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    tenant = tenant_id()
    headers = await auth(pool, tenant)
    put = await client.put(
        URL, json={"postage": "priority", "colour": True, "duplex": False}, headers=headers
    )
    assert put.status_code == 200
    body = put.json()
    assert (body["postage"], body["colour"], body["duplex"]) == ("A", True, False)
    assert body["updated_at"] is not None
    assert (await client.get(URL, headers=headers)).json() == body

    # PUT replaces: what is left out goes back to the default.
    again = (await client.put(URL, json={"postage": "b", "color": False}, headers=headers)).json()
    assert (again["postage"], again["colour"], again["duplex"]) == ("B", False, None)
    # What letters use now: the tenant's values, the service's default for the rest.
    assert again["effective"] == {"postage": "B", "colour": False, "duplex": True}
    async with pool.acquire() as conn:
        stored = await paper.paper_options(PgPaperOptionsRepository(conn), tenant)
    assert stored.channel_options() == {"postage": "B", "colour": "false"}

    assert (await client.delete(URL, headers=headers)).status_code == 204
    assert (await client.get(URL, headers=headers)).json() == UNSET
    assert (await client.delete(URL, headers=headers)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"postage": "C"}, "postage", "postage must be A (priority) or B (economy)"),
        ({"postage": 1}, "postage", "postage must be A (priority) or B (economy)"),
        ({"colour": "yes"}, "colour", "valid boolean"),
        ({"color": 1}, "colour", "valid boolean"),
        ({"duplex": "false"}, "duplex", "valid boolean"),
        ({"ink": "blue"}, "ink", "Extra inputs are not permitted"),
    ],
)
async def test_a_bad_value_is_refused_naming_the_field(
    client: httpx.AsyncClient, pool: asyncpg.Pool, body: dict[str, Any], field: str, message: str
) -> None:
    headers = await auth(pool, tenant_id())
    refused = refused_fields(await client.put(URL, json=body, headers=headers))
    assert list(refused) == [field]
    assert message in refused[field]
    assert (await client.get(URL, headers=headers)).json() == UNSET  # nothing was stored


async def test_a_tenant_sees_and_changes_only_its_own_options(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    first, second = tenant_id(), tenant_id()
    first_headers, second_headers = await auth(pool, first), await auth(pool, second)
    await client.put(URL, json={"postage": "A", "colour": True}, headers=first_headers)

    assert (await client.get(URL, headers=second_headers)).json() == UNSET
    assert (await client.delete(URL, headers=second_headers)).status_code == 404
    await client.put(URL, json={"postage": "B"}, headers=second_headers)

    mine = (await client.get(URL, headers=first_headers)).json()
    assert (mine["postage"], mine["colour"]) == ("A", True)
    theirs = (await client.get(URL, headers=second_headers)).json()
    assert (theirs["postage"], theirs["colour"]) == ("B", None)
