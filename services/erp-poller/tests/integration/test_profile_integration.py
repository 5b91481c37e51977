"""The tenant profile on the real PostgreSQL: its API (revisions published on tenant.updated
through the outbox, 422 naming the field), pushes that wait for it, and the upgrade that turns
connections' sellers into profiles."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from typing import Any

import asyncpg
import pytest
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.deps import Deps
from erp_poller.domain.connections import ConnectionConfig
from erp_poller.domain.profiles import profile_from_seller
from erp_poller.service.connections import announce_unpublished
from erp_poller.service.profiles import adopt_legacy_sellers
from erp_poller.testing import app_for, seller_profile
from nordflow_runtime import db, tenants
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import (
    RELATED_TENANT,
    ConnectionUpdated,
    ErpDocumentFetched,
    TenantUpdated,
)
from nordflow_signing import signature_headers

pytestmark = pytest.mark.integration

SECRET = "push-secret-0123456789abcdef"
PROFILE = seller_profile("Kök & Bad AB", bankgiro="5050-1055")


async def token_for(pool: asyncpg.Pool, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await tenants.create_token(pool, tenant, 'test')}"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def test_the_profile_api_keeps_revisions_and_publishes_each_change(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    auth = await token_for(harness.pool, tenant)
    async with harness.http() as client:
        assert (await client.get("/api/v1/profile")).status_code == 401
        missing = await client.get("/api/v1/profile", headers=auth)
        assert missing.status_code == 404
        assert "set the tenant profile first" in missing.json()["detail"]

        body = PROFILE.model_dump(mode="json")
        created = await client.put("/api/v1/profile", json=body, headers=auth)
        assert created.status_code == 200, created.text
        assert (created.json()["tenant_id"], created.json()["revision"]) == (tenant, 1)
        assert created.json()["profile"] == body
        [published] = (await harness.emitted()).of(TenantUpdated)
        assert (published.tenant_id, published.revision, published.profile) == (tenant, 1, PROFILE)

        same = await client.put("/api/v1/profile", json=body, headers=auth)
        assert same.json()["revision"] == 1
        assert len((await harness.emitted()).of(TenantUpdated)) == 1  # nothing changed

        oslo = {**body, "time_zone": "Europe/Oslo"}
        changed = await client.put("/api/v1/profile", json=oslo, headers=auth)
        assert changed.json()["revision"] == 2
        latest = (await harness.emitted()).of(TenantUpdated)[-1]
        assert (latest.revision, latest.profile.time_zone) == (2, "Europe/Oslo")
        shown = await client.get("/api/v1/profile", headers=auth)
        assert (shown.json()["revision"], shown.json()["profile"]["time_zone"]) == (
            2,
            "Europe/Oslo",
        )

        other = await token_for(harness.pool, f"t-{uuid.uuid4().hex[:8]}")
        assert (await client.get("/api/v1/profile", headers=other)).status_code == 404

        openapi = (await client.get("/openapi.json")).json()
        assert {"get", "put"} <= set(openapi["paths"]["/api/v1/profile"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["seller"].pop("name"), ("seller", "name")),
        (lambda p: p.update(time_zone="Europe/Atlantis"), ("time_zone",)),
        (lambda p: p.update(accounting_currency="kronor"), ("accounting_currency",)),
        (
            lambda p: p.update(bank_accounts=[{"scheme": "SWISH", "account_id": "1"}]),
            ("bank_accounts", 0, "scheme"),
        ),
    ],
    ids=["seller-name", "zone", "currency", "account-scheme"],
)
async def test_an_invalid_profile_is_422_naming_the_field(
    harness: ServiceHarness[Deps], change: Any, field: tuple[Any, ...]
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    body = PROFILE.model_dump(mode="json")
    change(body)
    async with harness.http() as client:
        answer = await client.put(
            "/api/v1/profile", json=body, headers=await token_for(harness.pool, tenant)
        )
    assert answer.status_code == 422
    assert field in {tuple(e["loc"][1:]) for e in answer.json()["detail"]}
    assert (await harness.emitted()).of(TenantUpdated) == []


async def test_a_push_before_the_profile_waits_for_it_and_then_carries_it(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    auth = await token_for(harness.pool, tenant)
    await PgConnectionRepository(harness.pool).add(
        ConnectionConfig(
            connection_id=f"{tenant}-winner",
            tenant_id=tenant,
            system=SourceSystem.WINNER,
            base_url="https://push.invalid",
            token_sealed=harness.deps.box.seal(SECRET),
            mode=ConnectionMode.AUTOMATIC,
            cutoff_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        )
    )
    order = {
        "quote_number": "Q7",
        "order_date": "2025-03-10",
        "customer": {"customer_number": "K1", "name": "Anna Andersson"},
        "project": {"number": "P7", "name": "Kök"},
        "line_mode": "total",
        "total_article_number": "KOK",
        "lines": [{"description": "Kök", "amount": "10000.00"}],
    }
    raw = json.dumps(order).encode()
    headers = {"Content-Type": "application/json", **signature_headers(SECRET, raw)}
    async with harness.http() as client:
        listed = await client.get("/api/v1/connections", headers=auth)
        assert "set the tenant profile first" in listed.json()[0]["waiting_for"]
        pushed = await client.post(
            f"/api/v1/ingest/winner/{tenant}-winner", content=raw, headers=headers
        )
        assert pushed.status_code == 200, pushed.text
        [outcome] = pushed.json()["documents"]
        assert outcome["outcome"] == "pending"
        assert "profile" in outcome["reason"]
        assert (await harness.emitted()).of(ErpDocumentFetched) == []

        body = PROFILE.model_dump(mode="json")
        assert (await client.put("/api/v1/profile", json=body, headers=auth)).status_code == 200
        listed = await client.get("/api/v1/connections", headers=auth)
        assert listed.json()[0]["waiting_for"] is None
    [released] = (await harness.emitted()).of(ErpDocumentFetched)
    assert released.source.document_id == "Q7-1"
    assert released.related[RELATED_TENANT] == body
    assert "seller" not in released.related


SELLERS = {
    "first": {"name": "Nordflow Demo AB", "organisation_number": "556036-0793",
              "country_code": "SE", "bankgiro": "5050-1055", "email": "faktura@demo.example"},
    "second": {"name": "Ett Annat Namn AB", "country_code": "SE"},
    "fjord": {"name": "Demo Fjord AS", "organisation_number": "974760673",
              "address1": "Storgata 1", "zip_code": "0155", "city": "Oslo", "country_code": "NO"},
}  # fmt: skip


async def test_the_upgrade_turns_each_tenants_first_connection_seller_into_its_profile(
    database_url: str,
) -> None:
    """Connections stored before migration 008 carried a seller; after it, each tenant without
    a profile gets one from its first connection's seller, published on tenant.updated."""
    app = app_for(database_url)
    schema = f"{app.schema}_t{secrets.token_hex(4)}"
    migrations = app.migrations()
    before = [m for m in migrations if not (m.scope == "erp-poller" and m.version >= 8)]
    pool = await db.create_pool(database_url, schema, min_size=1, max_size=4)
    try:
        await db.migrate(pool, schema, before)
        demo, fjord, kept = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(3))
        rows = [
            (f"{demo}-b", demo, "second", dt.datetime(2025, 2, 1, tzinfo=dt.UTC)),
            (f"{demo}-a", demo, "first", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
            (f"{fjord}-net", fjord, "fjord", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
            (f"{kept}-fx", kept, "second", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
        ]
        for connection_id, tenant, seller, created in rows:
            await pool.execute(
                """INSERT INTO connections (connection_id, tenant_id, system, base_url,
                       token_sealed, mode, seller, cutoff_at, created_at)
                   VALUES ($1, $2, 'fortnox', 'https://api.fortnox.se/3', '\\x00', 'automatic',
                       $3::jsonb, now(), $4)""",
                connection_id,
                tenant,
                json.dumps(SELLERS[seller]),
                created,
            )
        # One was polled: its last poll counts as its last success (migration 010).
        await pool.execute(
            "UPDATE connections SET last_poll_at = $2 WHERE connection_id = $1",
            f"{demo}-a",
            dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
        )
        set_by_hand = seller_profile("Satt För Hand AB")
        await pool.execute(
            "INSERT INTO tenant_profiles (tenant_id, revision, profile, updated_at) "
            "VALUES ($1, 3, $2::jsonb, now())",
            kept,
            set_by_hand.model_dump_json(),
        )

        applied = await db.migrate(pool, schema, migrations)
        assert applied == [
            "erp-poller/008_tenant_profiles",
            "erp-poller/009_flows",
            "erp-poller/010_connection_updates",
        ]
        columns = await pool.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'connections'",
            schema,
        )
        assert "seller" not in {c["column_name"] for c in columns}

        uow = PgUnitOfWork(pool)
        assert await adopt_legacy_sellers(uow, now) == 2
        assert await adopt_legacy_sellers(uow, now) == 0
        async with uow.transaction() as repos:
            demo_profile = await repos.profiles.stored(demo)
            fjord_profile = await repos.profiles.stored(fjord)
            kept_profile = await repos.profiles.stored(kept)
        assert demo_profile is not None
        assert fjord_profile is not None
        assert kept_profile is not None
        assert (demo_profile.revision, demo_profile.profile) == (
            1,
            profile_from_seller(SELLERS["first"]),
        )
        assert demo_profile.profile.bank_accounts[0].account_id == "5050-1055"
        assert (fjord_profile.profile.time_zone, fjord_profile.profile.locale.value) == (
            "Europe/Oslo",
            "nb",
        )
        assert fjord_profile.profile.accounting_currency == "NOK"
        assert (kept_profile.revision, kept_profile.profile) == (3, set_by_hand)
        assert await pool.fetchval("SELECT count(*) FROM legacy_sellers") == 0
        topics = await pool.fetch("SELECT topic, tenant_id FROM outbox ORDER BY seq")
        assert sorted((r["topic"], r["tenant_id"]) for r in topics) == sorted(
            [("tenant.updated", demo), ("tenant.updated", fjord)]
        )

        # The start-up step publishes every connection once on connection.updated.
        assert await announce_unpublished(uow, now) == 4
        assert await announce_unpublished(uow, now) == 0
        harness = ServiceHarness(app, pool, schema, None)
        states = {
            e.body.connection_id: e.body
            for e in (await harness.emitted()).events
            if isinstance(e.body, ConnectionUpdated)
        }
        assert sorted(states) == sorted(r[0] for r in rows)
        assert {s.revision for s in states.values()} == {1}
        polled = states[f"{demo}-a"]
        assert (
            polled.last_poll_at == polled.last_success_at == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
        )
        assert states[f"{demo}-b"].last_success_at is None
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()
