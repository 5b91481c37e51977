"""The channels API on the real PostgreSQL: overrides, suggestions, deliveries, statistics,
and that a tenant sees only its own data."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import asyncpg
import httpx
import pytest
from distribution_router.deps import Deps
from distribution_router.testing import bearer
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.testing import tenant_profile

pytestmark = pytest.mark.integration

CET = dt.timezone(dt.timedelta(hours=1))


async def auth(pool: asyncpg.Pool, tenant: str) -> dict[str, str]:
    return await bearer(pool, tenant)


def tenant_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def delivery(
    pool: asyncpg.Pool,
    tenant: str,
    *,
    channel: str,
    status: str,
    completed_at: dt.datetime | None,
    cost: Decimal | None = None,
    test_mode: bool = False,
) -> str:
    """A deliveries row as routing and the send job leave it."""
    invoice_id = f"inv_{uuid.uuid4().hex}"
    await pool.execute(
        "INSERT INTO deliveries (invoice_id, tenant_id, number, channel, recipient, test_mode, "
        "distributed_at, status, document_format, customer_key, route, completed_at, cost) "
        "VALUES ($1, $2, '1', $3, 'x', $4, $5, $6, 'pdf', '42', $7::jsonb, $5, $8)",
        invoice_id,
        tenant,
        channel,
        test_mode,
        completed_at or dt.datetime.now(dt.UTC),
        status,
        json.dumps([{"channel": channel, "recipient": "x", "document_format": "pdf"}]),
        cost,
    )
    if completed_at is None:
        await pool.execute(
            "UPDATE deliveries SET completed_at = NULL WHERE invoice_id = $1", invoice_id
        )
    return invoice_id


async def test_the_api_needs_a_valid_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/channel-overrides")).status_code == 401
    bad = {"Authorization": "Bearer nf_nope"}
    assert (await client.get("/api/v1/deliveries", headers=bad)).status_code == 401


async def test_overrides_are_set_listed_replaced_and_deleted(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    tenant = tenant_id()
    headers = await auth(pool, tenant)
    put = await client.put("/api/v1/channel-overrides", json={"channel": "paper"}, headers=headers)
    assert put.status_code == 200
    assert put.json()["customer_key"] is None
    await client.put(
        "/api/v1/channel-overrides",
        json={"customer_key": "42", "channel": "email"},
        headers=headers,
    )
    await client.put(
        "/api/v1/channel-overrides",
        json={"customer_key": "42", "channel": "peppol"},
        headers=headers,
    )
    listed = (await client.get("/api/v1/channel-overrides", headers=headers)).json()
    assert listed["default"]["channel"] == "paper"
    assert [(c["customer_key"], c["channel"]) for c in listed["customers"]] == [("42", "peppol")]

    bad = await client.put("/api/v1/channel-overrides", json={"channel": "fax"}, headers=headers)
    assert bad.status_code == 422
    deleted = await client.delete(
        "/api/v1/channel-overrides", params={"customer_key": "42"}, headers=headers
    )
    assert deleted.status_code == 204
    assert (await client.delete("/api/v1/channel-overrides", headers=headers)).status_code == 204
    assert (await client.delete("/api/v1/channel-overrides", headers=headers)).status_code == 404
    listed = (await client.get("/api/v1/channel-overrides", headers=headers)).json()
    assert listed == {"default": None, "customers": []}


async def suggestion(pool: asyncpg.Pool, tenant: str, customer: str = "42") -> int:
    value: int = await pool.fetchval(
        "INSERT INTO channel_suggestions (tenant_id, customer_key, invoice_id, current_channel, "
        "suggested_channel, recipient, suggested_at) "
        "VALUES ($1, $2, 'inv_1', 'paper', 'peppol', '0007:5560360793', now()) "
        "RETURNING suggestion_id",
        tenant,
        customer,
    )
    return value


async def test_accepting_a_suggestion_makes_it_the_customers_override(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    tenant = tenant_id()
    headers = await auth(pool, tenant)
    sid = await suggestion(pool, tenant)
    (listed,) = (await client.get("/api/v1/suggestions", headers=headers)).json()
    assert (listed["suggestion_id"], listed["suggested_channel"], listed["state"]) == (
        sid,
        "peppol",
        "open",
    )
    accepted = await client.post(f"/api/v1/suggestions/{sid}/accept", headers=headers)
    assert accepted.status_code == 200
    assert accepted.json()["state"] == "accepted"
    overrides = (await client.get("/api/v1/channel-overrides", headers=headers)).json()
    assert [(c["customer_key"], c["channel"]) for c in overrides["customers"]] == [("42", "peppol")]
    again = await client.post(f"/api/v1/suggestions/{sid}/dismiss", headers=headers)
    assert again.status_code == 409
    assert (await client.get("/api/v1/suggestions", headers=headers)).json() == []


async def test_dismissing_a_suggestion_closes_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    tenant = tenant_id()
    headers = await auth(pool, tenant)
    sid = await suggestion(pool, tenant)
    dismissed = await client.post(f"/api/v1/suggestions/{sid}/dismiss", headers=headers)
    assert dismissed.json()["state"] == "dismissed"
    assert dismissed.json()["decided_at"] is not None
    everything = await client.get("/api/v1/suggestions", params={"state": "all"}, headers=headers)
    assert [s["state"] for s in everything.json()] == ["dismissed"]
    overrides = (await client.get("/api/v1/channel-overrides", headers=headers)).json()
    assert overrides["customers"] == []


async def test_deliveries_show_attempts_fallbacks_and_errors(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    tenant = tenant_id()
    headers = await auth(pool, tenant)
    invoice_id = await delivery(
        pool, tenant, channel="paper", status="sent", completed_at=None, cost=Decimal("9.50")
    )
    await pool.execute(
        "INSERT INTO delivery_attempts (idempotency_key, tenant_id, invoice_id, channel, attempt, "
        "recipient, state, error, started_at) VALUES "
        "($1 || ':email:1', $2, $1, 'email', 1, 'a@b.example', 'fallback', '550 bounced', "
        "now() - interval '1 minute'), "
        "($1 || ':paper:1', $2, $1, 'paper', 1, 'post: Luleå', 'sent', NULL, now())",
        invoice_id,
        tenant,
    )
    response = await client.get(
        "/api/v1/deliveries", params={"invoice_id": invoice_id}, headers=headers
    )
    assert response.status_code == 200
    (body,) = response.json()
    assert (body["status"], body["channel"], body["cost"]) == ("sent", "paper", "9.5000")
    assert [(a["channel"], a["state"]) for a in body["attempts"]] == [
        ("email", "fallback"),
        ("paper", "sent"),
    ]
    assert body["fallbacks"] == [{"channel": "email", "reason": "550 bounced"}]
    assert body["attempts"][0]["idempotency_key"] == f"{invoice_id}:email:1"
    one = await client.get(f"/api/v1/deliveries/{invoice_id}", headers=headers)
    assert one.json()["invoice_id"] == invoice_id


async def test_a_tenant_never_sees_another_tenants_data(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    mine, theirs = tenant_id(), tenant_id()
    headers = await auth(pool, mine)
    invoice_id = await delivery(pool, theirs, channel="email", status="sent", completed_at=None)
    sid = await suggestion(pool, theirs)
    await pool.execute(
        "INSERT INTO channel_overrides (tenant_id, customer_key, channel) "
        "VALUES ($1, '7', 'paper')",
        theirs,
    )
    assert (
        await client.get("/api/v1/deliveries", params={"invoice_id": invoice_id}, headers=headers)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/deliveries/{invoice_id}", headers=headers)
    ).status_code == 404
    assert (await client.get("/api/v1/deliveries", headers=headers)).json() == []
    assert (await client.get("/api/v1/suggestions", headers=headers)).json() == []
    assert (
        await client.post(f"/api/v1/suggestions/{sid}/dismiss", headers=headers)
    ).status_code == 404
    assert (
        await client.post(f"/api/v1/suggestions/{sid}/accept", headers=headers)
    ).status_code == 404
    assert (await client.get("/api/v1/channel-overrides", headers=headers)).json() == {
        "default": None,
        "customers": [],
    }
    assert (
        await client.delete(
            "/api/v1/channel-overrides", params={"customer_key": "7"}, headers=headers
        )
    ).status_code == 404
    state = await pool.fetchval(
        "SELECT state FROM channel_suggestions WHERE suggestion_id = $1", sid
    )
    assert state == "open"


async def test_statistics_count_sent_failed_cost_and_electronic_share_per_period(
    client: httpx.AsyncClient, pool: asyncpg.Pool, harness: ServiceHarness[Deps]
) -> None:
    tenant = tenant_id()
    await harness.tenant(tenant, tenant_profile("SE"))  # its days are Stockholm's
    headers = await auth(pool, tenant)
    march_3 = dt.datetime(2025, 3, 3, 12, tzinfo=CET)
    # 23:30 UTC on 4 March is 5 March in Stockholm: counted on the 5th.
    march_5 = dt.datetime(2025, 3, 4, 23, 30, tzinfo=dt.UTC)
    for channel, cost in [("peppol", "0.50"), ("peppol", "0.50"), ("paper", "9.50")]:
        await delivery(
            pool, tenant, channel=channel, status="sent", completed_at=march_3, cost=Decimal(cost)
        )
    await delivery(pool, tenant, channel="email", status="failed", completed_at=march_3)
    await delivery(
        pool, tenant, channel="b2c_bank", status="sent", completed_at=march_5, cost=Decimal("0.80")
    )
    await delivery(pool, tenant, channel="email", status="uncertain", completed_at=march_5)
    # Not counted: test mode, still scheduled, another tenant, outside the range.
    await delivery(
        pool, tenant, channel="peppol", status="test", completed_at=march_3, test_mode=True
    )
    await delivery(pool, tenant, channel="peppol", status="scheduled", completed_at=None)
    await delivery(
        pool, tenant_id(), channel="paper", status="sent", completed_at=march_3, cost=Decimal(1)
    )
    await delivery(
        pool,
        tenant,
        channel="paper",
        status="sent",
        completed_at=dt.datetime(2025, 3, 6, 12, tzinfo=dt.UTC),
        cost=Decimal(1),
    )

    response = await client.get(
        "/api/v1/statistics",
        params={"from": "2025-03-03", "to": "2025-03-05", "granularity": "day"},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"], body["currency"]) == ("2025-03-03", "2025-03-05", "SEK")
    assert body["time_zone"] == "Europe/Stockholm"
    days = {p["period"]: p for p in body["periods"]}
    assert list(days) == ["2025-03-03", "2025-03-04", "2025-03-05"]
    third = days["2025-03-03"]
    assert third["channels"]["peppol"] == {
        "sent": 2,
        "failed": 0,
        "uncertain": 0,
        "cost": "1.00",
    }
    assert third["channels"]["paper"]["cost"] == "9.50"
    assert third["channels"]["email"]["failed"] == 1
    assert (third["sent"], third["failed"], third["cost"]) == (3, 1, "10.50")
    assert third["electronic_share"] == "0.6667"
    assert days["2025-03-04"]["sent"] == 0
    assert days["2025-03-04"]["electronic_share"] is None
    fifth = days["2025-03-05"]
    assert fifth["channels"]["b2c_bank"]["sent"] == 1
    assert fifth["channels"]["email"]["uncertain"] == 1
    assert fifth["electronic_share"] == "1.0000"
    total = body["total"]
    assert (total["sent"], total["failed"], total["cost"]) == (4, 1, "11.30")
    assert total["electronic_share"] == "0.7500"

    monthly = await client.get(
        "/api/v1/statistics",
        params={"from": "2025-02-01", "to": "2025-03-31", "granularity": "month"},
        headers=headers,
    )
    months = {p["period"]: p for p in monthly.json()["periods"]}
    assert list(months) == ["2025-02-01", "2025-03-01"]
    assert months["2025-03-01"]["sent"] == 5
    assert months["2025-02-01"]["sent"] == 0


async def test_statistics_refuse_a_reversed_or_too_long_range(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    headers = await auth(pool, tenant_id())
    reversed_range = await client.get(
        "/api/v1/statistics", params={"from": "2025-03-05", "to": "2025-03-01"}, headers=headers
    )
    assert reversed_range.status_code == 422
    too_long = await client.get(
        "/api/v1/statistics", params={"from": "2020-01-01", "to": "2025-01-01"}, headers=headers
    )
    assert too_long.status_code == 422
    assert "granularity=month" in too_long.json()["detail"]


async def daily(client: httpx.AsyncClient, headers: dict[str, str], day: str) -> dict[str, int]:
    """Sent per day around ``day`` (the day before, the day, the day after)."""
    before = dt.date.fromisoformat(day) - dt.timedelta(days=1)
    after = dt.date.fromisoformat(day) + dt.timedelta(days=1)
    response = await client.get(
        "/api/v1/statistics",
        params={"from": before.isoformat(), "to": after.isoformat()},
        headers=headers,
    )
    assert response.status_code == 200
    return {p["period"]: p["sent"] for p in response.json()["periods"]} | {
        "zone": response.json()["time_zone"]
    }


async def test_a_norwegian_tenants_statistics_days_follow_europe_oslo(
    client: httpx.AsyncClient, pool: asyncpg.Pool, harness: ServiceHarness[Deps]
) -> None:
    """23:30 UTC on 4 March is 00:30 on 5 March in Oslo: counted on the 5th. A tenant whose
    profile says UTC (Atlantic/Reykjavik) counts the same send on the 4th."""
    oslo, reykjavik = tenant_id(), tenant_id()
    await harness.tenant(oslo, tenant_profile("NO"))
    await harness.tenant(reykjavik, tenant_profile("NO", time_zone="Atlantic/Reykjavik"))
    late = dt.datetime(2025, 3, 4, 23, 30, tzinfo=dt.UTC)
    for tenant in (oslo, reykjavik):
        await delivery(pool, tenant, channel="peppol", status="sent", completed_at=late)

    in_oslo = await daily(client, await auth(pool, oslo), "2025-03-04")
    in_reykjavik = await daily(client, await auth(pool, reykjavik), "2025-03-04")

    assert in_oslo == {
        "2025-03-03": 0,
        "2025-03-04": 0,
        "2025-03-05": 1,
        "zone": "Europe/Oslo",
    }
    assert in_reykjavik["2025-03-04"] == 1
    assert in_reykjavik["2025-03-05"] == 0


async def test_statistics_use_the_profiles_zone_even_behind_utc(
    client: httpx.AsyncClient, pool: asyncpg.Pool, harness: ServiceHarness[Deps]
) -> None:
    """A Swedish company whose profile says America/New_York: a send at 02:00 UTC on 5 March
    is 21:00 on 4 March there, so it counts on the 4th (in Stockholm it would be the 5th)."""
    tenant = tenant_id()
    await harness.tenant(tenant, tenant_profile("SE", time_zone="America/New_York"))
    early = dt.datetime(2025, 3, 5, 2, 0, tzinfo=dt.UTC)
    await delivery(pool, tenant, channel="email", status="sent", completed_at=early)

    days = await daily(client, await auth(pool, tenant), "2025-03-04")

    assert days == {"2025-03-03": 0, "2025-03-04": 1, "2025-03-05": 0, "zone": "America/New_York"}
