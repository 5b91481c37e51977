"""Tenant API tokens on the real PostgreSQL server: expiry, revocation, listing, scopes, the
tokens API, and the upgrade of a service's existing `api_tokens` table."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import APIRouter
from nordflow_runtime import db, tenants
from nordflow_runtime.http import build_http_app
from nordflow_runtime.tenants import Scope, Tenant

pytestmark = pytest.mark.integration

# The table as erp-poller, factoring-gateway and distribution-router created it before the
# runtime's `api-tokens` migrations.
LEGACY_TABLE = """
CREATE TABLE api_tokens (
    token_hash  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
)"""

toy = APIRouter(prefix="/api/v1")


@toy.get("/things")
async def things(tenant: Tenant) -> dict[str, str]:
    return {"tenant": tenant}


@toy.post("/things")
async def make_thing(tenant: Tenant) -> dict[str, str]:
    return {"made_for": tenant}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    schema = f"tokens_t{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(database_url, schema, min_size=1, max_size=2)
    await pool.execute(LEGACY_TABLE)
    await pool.execute(
        "INSERT INTO api_tokens (token_hash, tenant_id, name) VALUES ($1, 'old', 'legacy')",
        tenants.token_hash("nf_legacy"),
    )
    await db.migrate(
        pool, schema, db.load_migrations("nordflow_runtime.token_schema", "api-tokens")
    )
    yield pool
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


@pytest.fixture
async def http(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = build_http_app("toy", {}, [tenants.tokens_router(), toy])
    app.state.pool = pool
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://toy"
    ) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_made_before_expiry_existed_get_a_year(pool: asyncpg.Pool) -> None:
    legacy = await tenants.principal_for(pool, "nf_legacy")
    assert legacy is not None
    assert legacy.scope is Scope.OPERATE
    assert dt.timedelta(days=364) < legacy.expires_at - tenants.utc_now() <= dt.timedelta(days=365)


async def test_an_expired_or_revoked_token_is_refused(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    long_ago = tenants.utc_now() - dt.timedelta(days=30)
    expired = await tenants.create_token(
        pool, "acme", "old", expires_in=dt.timedelta(days=1), now=long_ago
    )
    answer = await http.get("/api/v1/things", headers=bearer(expired))
    assert answer.status_code == 401
    assert answer.json()["detail"] == "unknown, revoked or expired API token"

    token = await tenants.create_token(pool, "acme", "ci")
    assert (await http.get("/api/v1/things", headers=bearer(token))).json() == {"tenant": "acme"}
    listed = await tenants.list_tokens(pool, "acme")
    mine = next(t for t in listed if t.name == "ci")
    assert await tenants.revoke_token(pool, mine.token_id, "other-tenant") is False
    assert await tenants.revoke_token(pool, mine.token_id, "acme") is True
    assert (await http.get("/api/v1/things", headers=bearer(token))).status_code == 401
    assert await tenants.revoke_token(pool, mine.token_id) is False  # already revoked


async def test_a_read_token_reads_and_never_changes(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    reader = await tenants.create_token(pool, "acme", "dashboard", scope=Scope.READ)
    assert (await http.get("/api/v1/things", headers=bearer(reader))).status_code == 200
    refused = await http.post("/api/v1/things", headers=bearer(reader))
    assert refused.status_code == 403
    assert "read" in refused.json()["detail"]
    operator = await tenants.create_token(pool, "acme", "ops", scope=Scope.OPERATE)
    assert (await http.post("/api/v1/things", headers=bearer(operator))).status_code == 200


async def test_the_tokens_api_lists_creates_and_revokes_the_tenants_own(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    admin = await tenants.create_token(pool, "acme", "admin", expires_in=dt.timedelta(days=10))
    await tenants.create_token(pool, "globex", "theirs")
    created = await http.post(
        "/api/v1/tokens",
        json={"name": "dashboard", "scope": "read", "expires_in_days": 365},
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["scope"] == "read"
    assert body["token"].startswith("nf_")
    # Never outlives the token that made it.
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert expires - tenants.utc_now() <= dt.timedelta(days=10)

    listed = (await http.get("/api/v1/tokens", headers=bearer(admin))).json()
    assert {t["name"] for t in listed} == {"admin", "dashboard"}  # never globex's
    assert all("token" not in t for t in listed)

    reader = body["token"]
    refused = await http.post("/api/v1/tokens", json={"name": "x"}, headers=bearer(reader))
    assert refused.status_code == 403  # a read token mints nothing

    theirs = next(t for t in await tenants.list_tokens(pool, "globex"))
    assert (
        await http.delete(f"/api/v1/tokens/{theirs.token_id}", headers=bearer(admin))
    ).status_code == 404
    gone = await http.delete(f"/api/v1/tokens/{body['token_id']}", headers=bearer(admin))
    assert gone.status_code == 204
    assert (await http.get("/api/v1/things", headers=bearer(reader))).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "a\x1b[31m"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "x", "scope": "admin"}, "scope"),
        ({"name": "x", "expires_in_days": 10_000}, "expires_in_days"),
        ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
    ],
)
async def test_a_bad_token_request_names_the_field(
    pool: asyncpg.Pool, http: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    admin = await tenants.create_token(pool, "acme", "admin")
    answer = await http.post("/api/v1/tokens", json=body, headers=bearer(admin))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", field]
