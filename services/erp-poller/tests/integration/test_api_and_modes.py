"""The tenant API and the manual mode, on the real PostgreSQL and the Fortnox sandbox."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

import httpx
import pytest
from erp_poller.adapters.repository import (
    PgConnectionRepository,
    PgRequestRepository,
    PgUnitOfWork,
)
from erp_poller.adapters.sources import ClientOptions, FortnoxSource, open_source
from erp_poller.domain.connections import Connection, ConnectionConfig, internal_host
from erp_poller.domain.documents import Document
from erp_poller.service import polling
from erp_poller.service.documents import ingest_documents
from erp_poller.testing import given_profile, steps_on
from nordflow_connectors.egress import ForbiddenDestinationError
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_runtime import tenants
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import DocumentKind
from pydantic import SecretStr

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(harness):
    """A client on the service's routers, and the scheduler's wake-up call (set when woken)."""
    async with harness.http() as client:
        yield client, harness.deps.wakeup


async def token_for(pool, tenant: str) -> dict[str, str]:
    token = await tenants.create_token(pool, tenant, "test")
    return {"Authorization": f"Bearer {token}"}


def connection_body(connection_id: str, sandbox, token: str, mode: str = "manual") -> dict:
    return {
        "connection_id": connection_id,
        "system": "fortnox",
        "base_url": sandbox.base_url,
        "token": token,
        "mode": mode,
        "cutoff_at": "2000-01-01T00:00:00+00:00",
    }


def make_invoices(sandbox, token: str, count: int) -> list[str]:
    with httpx.Client(
        base_url=f"{sandbox.base_url}/3/", headers={"Authorization": f"Bearer {token}"}
    ) as http:
        customer = http.post("customers", json={"Customer": {"Name": "Kund AB"}}).json()
        return [
            str(
                http.post(
                    "invoices",
                    json={
                        "Invoice": {
                            "CustomerNumber": customer["Customer"]["CustomerNumber"],
                            "InvoiceRows": [
                                {"Description": "x", "DeliveredQuantity": 1, "Price": 10, "VAT": 25}
                            ],
                        }
                    },
                ).json()["Invoice"]["DocumentNumber"]
            )
            for _ in range(count)
        ]


async def test_api_needs_a_token_and_shows_only_the_tenants_own(api, pool, sandbox):
    client, _ = api
    assert (await client.get("/api/v1/connections")).status_code == 401
    bad = {"Authorization": "Bearer nf_not-a-token"}
    assert (await client.get("/api/v1/connections", headers=bad)).status_code == 401
    a, b = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    auth_a, auth_b = await token_for(pool, a), await token_for(pool, b)
    company = sandbox.create_company()
    created = await client.put(
        f"/api/v1/connections/{a}-fx",
        json=connection_body(f"{a}-fx", sandbox, company.token),
        headers=auth_a,
    )
    assert created.status_code == 200, created.text
    assert company.token not in created.text  # the ERP token is write-only
    assert "set the tenant profile first" in created.json()["waiting_for"]
    assert [
        c["connection_id"] for c in (await client.get("/api/v1/connections", headers=auth_a)).json()
    ] == [f"{a}-fx"]
    assert (await client.get("/api/v1/connections", headers=auth_b)).json() == []
    assert (await client.get(f"/api/v1/connections/{a}-fx", headers=auth_b)).status_code == 404
    taken = await client.put(
        f"/api/v1/connections/{a}-fx", json=connection_body(f"{a}-fx", sandbox, "x"), headers=auth_b
    )
    assert taken.status_code == 409
    sealed = await pool.fetchval(
        "SELECT token_sealed FROM connections WHERE connection_id = $1", f"{a}-fx"
    )
    assert company.token.encode() not in bytes(sealed)


async def test_bad_input_names_the_field(api, pool, sandbox):
    client, _ = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    auth = await token_for(pool, tenant)
    body = connection_body("c1", sandbox, "tok")
    body["mode"] = "sometimes"
    body["seller"] = {"name": "Säljare AB"}  # the tenant's profile's now, not a connection's
    response = await client.put("/api/v1/connections/c1", json=body, headers=auth)
    assert response.status_code == 422
    fields = {tuple(e["loc"][1:]) for e in response.json()["detail"]}
    assert ("mode",) in fields
    assert ("seller",) in fields
    no_size = await client.post("/api/v1/connections/c1/sync", json={}, headers=auth)
    assert no_size.status_code in {404, 422}


async def test_manual_mode_flows_only_what_is_asked(api, pool, sandbox, box):
    client, woken = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    auth = await token_for(pool, tenant)
    uow = PgUnitOfWork(pool)
    profile = await given_profile(uow, tenant)
    company = sandbox.create_company()
    numbers = make_invoices(sandbox, company.token, 5)
    cid = f"{tenant}-fx"
    await client.put(
        f"/api/v1/connections/{cid}",
        json=connection_body(cid, sandbox, company.token),
        headers=auth,
    )
    # Manual: the scheduler never polls it on its own.
    due = await pool.fetchval(
        "SELECT count(*) FROM connections WHERE connection_id = $1 "
        "AND mode IN ('test', 'automatic')",
        cid,
    )
    assert due == 0

    first = await client.post(f"/api/v1/connections/{cid}/sync", json={"limit": 2}, headers=auth)
    assert first.status_code == 202
    named = await client.post(
        f"/api/v1/connections/{cid}/sync", json={"documents": [numbers[4]]}, headers=auth
    )
    assert woken.is_set()
    for request in (first.json(), named.json()):
        async with uow.transaction() as lock:
            claimed = await lock.requests.claim_sync()
            assert claimed is not None
            row, connection = claimed
            assert row.request_id == request["request_id"]
            client_ = FortnoxSource(FortnoxClient(sandbox.base_url, SecretStr(company.token)))
            try:
                emitted = await polling.sync_documents(
                    uow,
                    connection,
                    profile,
                    client_,
                    limit=row.limit,
                    documents=list(row.documents),
                )
            finally:
                await client_.aclose()
            await lock.requests.finish_sync(row.request_id, emitted, None)
    done = await client.get(
        f"/api/v1/connections/{cid}/sync/{first.json()['request_id']}", headers=auth
    )
    assert done.json()["emitted"] == 2
    assert done.json()["finished_at"] is not None
    emitted = await pool.fetch(
        "SELECT convert_from(key, 'UTF8') AS key FROM outbox "
        "WHERE tenant_id = $1 AND topic = 'erp.document.fetched'",
        tenant,
    )
    assert len(emitted) == 3
    seen = await pool.fetch("SELECT document_id FROM documents WHERE tenant_id = $1", tenant)
    assert sorted(r["document_id"] for r in seen) == sorted([numbers[0], numbers[1], numbers[4]])

    switched = await client.patch(
        f"/api/v1/connections/{cid}", json={"mode": "automatic"}, headers=auth
    )
    assert switched.json()["mode"] == "automatic"


async def test_credentials_are_checked_per_system_and_name_the_missing_key(api, pool):
    client, _ = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    auth = await token_for(pool, tenant)
    base = {
        "connection_id": f"{tenant}-ea",
        "system": "visma-eaccounting",
        "base_url": "http://eaccounting.invalid",
    }
    missing = await client.put(
        f"/api/v1/connections/{tenant}-ea",
        json={**base, "credentials": {"client_id": "c", "client_secret": "s3cr3t-value",
                                      "token_url": "http://x/connect/token"}},
        headers=auth,
    )  # fmt: skip
    assert missing.status_code == 422
    [problem] = missing.json()["detail"]
    assert problem["loc"] == ["body", "credentials", "refresh_token"]
    assert "s3cr3t-value" not in missing.text

    credentials = {
        "client_id": "c",
        "client_secret": "s3cr3t-value",
        "refresh_token": "r-initial",
        "token_url": "http://x/connect/token",
    }
    created = await client.put(
        f"/api/v1/connections/{tenant}-ea", json={**base, "credentials": credentials}, headers=auth
    )
    assert created.status_code == 200, created.text
    assert "s3cr3t-value" not in created.text
    sealed = await pool.fetchval(
        "SELECT token_sealed FROM connections WHERE connection_id = $1", f"{tenant}-ea"
    )
    assert b"s3cr3t-value" not in bytes(sealed)

    # The JSON text in `token` works too (the CLI's form); a Sirvoy one needs webhook_secret.
    sirvoy = {**base, "connection_id": f"{tenant}-sv", "system": "sirvoy"}
    no_secret = await client.put(
        f"/api/v1/connections/{tenant}-sv",
        json={**sirvoy, "token": json.dumps({"api_token": "a"})},
        headers=auth,
    )
    assert no_secret.status_code == 422
    assert no_secret.json()["detail"][0]["loc"] == ["body", "credentials", "webhook_secret"]
    both = await client.put(
        f"/api/v1/connections/{tenant}-sv",
        json={**sirvoy, "token": "x", "credentials": {"api_token": "a"}},
        headers=auth,
    )
    assert both.status_code == 422


async def test_a_backfill_is_queued_and_its_progress_shown(api, pool, sandbox, box):
    client, woken = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    auth = await token_for(pool, tenant)
    await given_profile(PgUnitOfWork(pool), tenant)
    company = sandbox.create_company()
    make_invoices(sandbox, company.token, 3)
    cid = f"{tenant}-fx"
    body = connection_body(cid, sandbox, company.token)
    body["cutoff_at"] = "2099-01-01T00:00:00+00:00"  # far ahead: nothing is polled
    await client.put(f"/api/v1/connections/{cid}", json=body, headers=auth)

    naive = await client.post(
        f"/api/v1/connections/{cid}/backfill", json={"since": "2020-01-01T00:00:00"}, headers=auth
    )
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["loc"] == ["body", "since"]
    other = await token_for(pool, f"t-{uuid.uuid4().hex[:8]}")
    refused = await client.post(
        f"/api/v1/connections/{cid}/backfill", json={"since": "2020-01-01T00:00:00Z"}, headers=other
    )
    assert refused.status_code == 404

    queued = await client.post(
        f"/api/v1/connections/{cid}/backfill", json={"since": "2020-01-01T00:00:00Z"}, headers=auth
    )
    assert queued.status_code == 202
    assert woken.is_set()
    request = queued.json()
    assert (request["done"], request["finished_at"], request["listed"]) == (False, None, 0)

    steps = steps_on(pool, box)
    assert await steps.backfill_one()
    done = await client.get(
        f"/api/v1/connections/{cid}/backfill/{request['request_id']}", headers=auth
    )
    assert done.status_code == 200
    result = done.json()
    assert (result["done"], result["listed"], result["emitted"], result["error"]) == (
        True,
        3,
        3,
        None,
    )
    assert (
        await client.get(
            f"/api/v1/connections/{cid}/backfill/{request['request_id']}", headers=other
        )
    ).status_code == 404


class DiesAfterTwo:
    """A source whose process dies after two documents of a backfill (a lost connection)."""

    def __init__(self, inner):
        self.inner, self.system, self.reads = inner, inner.system, 0

    def changes_since(self, since):
        return self.inner.changes_since(since)

    async def fetch(self, change, cache):
        self.reads += 1
        if self.reads == 3:
            raise ConnectionError("lost the connection to Fortnox")
        return await self.inner.fetch(change, cache)

    async def aclose(self):
        await self.inner.aclose()


async def test_a_backfill_that_dies_midway_resumes_and_counts_each_emission_once(
    pool, sandbox, box
):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    company = sandbox.create_company()
    make_invoices(sandbox, company.token, 4)
    cid = f"{tenant}-fx"
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=cid,
            tenant_id=tenant,
            system=SourceSystem.FORTNOX,
            base_url=sandbox.base_url,
            token_sealed=box.seal(company.token),
            mode=ConnectionMode.MANUAL,
            cutoff_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
        )
    )
    await given_profile(PgUnitOfWork(pool), tenant)
    repo = PgRequestRepository(pool)
    since = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    request_id = (await repo.request_backfill(tenant, cid, since)).request_id
    steps = steps_on(pool, box, page_size=2)
    sources = steps.sources
    connection = await PgConnectionRepository(pool).get(cid)
    assert connection is not None
    real = await sources.source_for(connection)
    sources.sources[cid] = (connection.updated_at, DiesAfterTwo(real))

    assert await steps.backfill_one()
    failed = await repo.backfill_request(tenant, request_id)
    assert failed is not None
    assert failed.finished_at is None  # retried later
    assert failed.error == "ConnectionError: lost the connection to Fortnox"
    assert (failed.attempts, failed.emitted) == (1, 2)
    assert not await steps.backfill_one()  # not before its retry time

    await pool.execute("UPDATE backfill_requests SET not_before = now() WHERE request_id = $1",
                       request_id)  # fmt: skip
    assert await steps.backfill_one()  # the same source object: its reads go on counting
    resumed = await repo.backfill_request(tenant, request_id)
    assert resumed is not None
    assert resumed.finished_at is not None
    assert resumed.error is None
    assert (resumed.attempts, resumed.listed, resumed.emitted) == (2, 4, 4)
    fetched = "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND topic = 'erp.document.fetched'"
    assert await pool.fetchval(fetched, tenant) == 4


async def test_a_change_while_a_poll_holds_the_connection_answers_409_not_a_hang(
    api, pool, sandbox
):
    client, _ = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = await token_for(pool, tenant)
    company = sandbox.create_company()
    body = connection_body("busy-1", sandbox, company.token, mode="automatic")
    assert (await client.put("/api/v1/connections/busy-1", json=body, headers=headers)).is_success
    async with pool.acquire() as conn, conn.transaction():
        assert await PgConnectionRepository(conn).claim_due() is not None  # a poll runs
        patched = await client.patch(
            "/api/v1/connections/busy-1", json={"mode": "manual"}, headers=headers
        )
        replaced = await client.put("/api/v1/connections/busy-1", json=body, headers=headers)
    assert (patched.status_code, replaced.status_code) == (409, 409)
    assert "being polled" in patched.json()["detail"]
    again = await client.patch(
        "/api/v1/connections/busy-1", json={"mode": "manual"}, headers=headers
    )
    assert again.json()["mode"] == "manual"  # once the poll is over


async def test_switching_to_automatic_releases_what_manual_mode_held_back(api, pool, box):
    client, _ = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = await token_for(pool, tenant)
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id="push-1",
            tenant_id=tenant,
            system=SourceSystem.WINNER,
            base_url="https://push.invalid",
            token_sealed=box.seal("a-push-signing-secret"),
            mode=ConnectionMode.MANUAL,
            cutoff_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        )
    )
    uow = PgUnitOfWork(pool)
    profile = await given_profile(uow, tenant)
    connection = await PgConnectionRepository(pool).get("push-1", tenant)
    assert connection is not None
    document = Document(
        document_id="Q1-1",
        document_number="Q1-1",
        kind=DocumentKind.ORDER,
        payload={"order_id": "Q1-1"},
        related={},
    )
    async with uow.transaction() as repos:
        (outcome,) = await ingest_documents(
            repos, connection, profile, [document], dt.datetime.now(dt.UTC)
        )
    assert outcome.outcome == "pending"
    outbox = "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND topic = 'erp.document.fetched'"
    assert await pool.fetchval(outbox, tenant) == 0
    switched = await client.patch(
        "/api/v1/connections/push-1", json={"mode": "automatic"}, headers=headers
    )
    assert switched.status_code == 200, switched.text
    assert await pool.fetchval(outbox, tenant) == 1
    assert await pool.fetchval("SELECT count(*) FROM pending_documents") == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://10.0.0.7/3",
        "http://169.254.169.254/latest",
        "http://[::1]:80",
        "http://postgres",
        "http://kafka.nordflow.svc:9092",
    ],
)
async def test_a_connection_may_not_point_into_the_cluster(harness, pool, url):
    production = dataclasses.replace(harness.deps, allow_internal_urls=False)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = await token_for(pool, tenant)
    body = {"connection_id": "inside", "system": "fortnox", "base_url": url, "token": "tok"}
    service = ServiceHarness(harness.app, pool, harness.schema, production)
    async with service.http() as client:
        answer = await client.put("/api/v1/connections/inside", json=body, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "base_url"]
    assert await PgConnectionRepository(pool).states(tenant) == []


@pytest.mark.parametrize(
    "token_url", ["http://127.0.0.1:9/token", "http://[::ffff:169.254.169.254]/t", "http://vault"]
)
async def test_an_oauth_token_url_may_not_point_into_the_cluster(harness, pool, token_url):
    production = dataclasses.replace(harness.deps, allow_internal_urls=False)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = await token_for(pool, tenant)
    body = {
        "connection_id": "oauth",
        "system": "visma-eaccounting",
        "base_url": "https://eaccountingapi.vismaonline.com",
        "credentials": {
            "client_id": "c",
            "client_secret": "s",
            "refresh_token": "r",
            "token_url": token_url,
        },
    }
    service = ServiceHarness(harness.app, pool, harness.schema, production)
    async with service.http() as client:
        answer = await client.put("/api/v1/connections/oauth", json=body, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "credentials", "token_url"]
    assert "s" not in {e.get("input") for e in answer.json()["detail"]}


async def test_a_source_reaches_only_public_addresses_without_the_switch(pool, sandbox, box):
    """A connection stored earlier (or by an operator) that points at an internal address is
    refused when polled, after DNS, with our reason and no retry."""
    company = sandbox.create_company()
    connection = Connection(
        connection_id="inside",
        tenant_id="t-inside",
        system=SourceSystem.FORTNOX,
        base_url=sandbox.base_url,
        token_sealed=box.seal(company.token),
        mode=ConnectionMode.AUTOMATIC,
        cutoff_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        cursor_at=None,
    )
    source = open_source(connection, box, pool, ClientOptions(allow_internal=False))
    try:
        with pytest.raises(ForbiddenDestinationError, match="loopback"):
            async for _ in source.changes_since(connection.cutoff_at):
                pass
    finally:
        await source.aclose()


def test_public_source_urls_are_allowed() -> None:
    assert not internal_host("https://api.fortnox.se/3")
    assert not internal_host("https://eaccountingapi.vismaonline.com")
    assert not internal_host("https://8.8.8.8")


async def test_each_connection_can_have_its_own_schedule(api, pool, sandbox, box):
    client, _ = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = await token_for(pool, tenant)
    await given_profile(PgUnitOfWork(pool), tenant)
    company = sandbox.create_company()
    hourly = {
        **connection_body("hourly", sandbox, company.token, mode="automatic"),
        "poll_interval_seconds": 3600,
    }
    answer = await client.put("/api/v1/connections/hourly", json=hourly, headers=headers)
    assert answer.json()["poll_interval_seconds"] == 3600
    too_often = {**hourly, "poll_interval_seconds": 5}
    refused = await client.put("/api/v1/connections/hourly", json=too_often, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "poll_interval_seconds"]
    steps = steps_on(pool, box, poll_interval=dt.timedelta(seconds=30))  # the service's default
    assert await steps.poll_one()
    row = await pool.fetchrow(
        "SELECT next_poll_at - last_poll_at AS gap FROM connections WHERE connection_id = 'hourly'"
    )
    assert dt.timedelta(minutes=59) < row["gap"] < dt.timedelta(minutes=61)


async def test_a_connection_has_a_flow_naming_a_writable_connection_of_the_tenant(api, pool):
    client, _ = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = await token_for(pool, tenant)
    fortnox = {
        "connection_id": f"{tenant}-fx",
        "system": "fortnox",
        "base_url": "https://api.fortnox.se",
        "token": "fixed-token",
    }
    assert (await client.put(f"/api/v1/connections/{tenant}-fx", json=fortnox,
                             headers=headers)).status_code == 200  # fmt: skip
    sirvoy = {
        "connection_id": f"{tenant}-sv",
        "system": "sirvoy",
        "base_url": "https://sirvoy.example.com",
        "credentials": {"api_token": "a", "webhook_secret": "b"},
        "flow": {"book_into": f"{tenant}-fx", "factor": False, "distribute": False},
    }
    answer = await client.put(f"/api/v1/connections/{tenant}-sv", json=sirvoy, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["flow"] == sirvoy["flow"]
    listed = {c["connection_id"]: c["flow"] for c in
              (await client.get("/api/v1/connections", headers=headers)).json()}  # fmt: skip
    assert listed[f"{tenant}-fx"] == {"book_into": None, "factor": True, "distribute": True}

    bad = {**sirvoy, "flow": {"book_into": "nowhere"}}
    answer = await client.put(f"/api/v1/connections/{tenant}-sv", json=bad, headers=headers)
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "flow", "book_into"]
    assert "has no connection 'nowhere'" in problem["msg"]
    stored = await PgConnectionRepository(pool).get(f"{tenant}-sv", tenant)
    assert stored is not None
    assert stored.flow.book_into == f"{tenant}-fx"


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"cutoff_at": "9999-12-31T00:00:00+00:00"}, ["body", "cutoff_at"]),
        (
            {"credentials": {f"k{n}": "v" for n in range(21)}, "token": None},
            ["body", "credentials"],
        ),
        ({"token": "x" * 20_001}, ["body", "token"]),
        ({"base_url": "https://" + "a" * 2000 + ".example"}, ["body", "base_url"]),
    ],
)
async def test_every_field_of_a_connection_is_bounded(api, pool, sandbox, change, loc):
    client, _ = api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    auth = await token_for(pool, tenant)
    body = {**connection_body("bounded", sandbox, "tok"), **change}
    body = {k: v for k, v in body.items() if v is not None}
    answer = await client.put("/api/v1/connections/bounded", json=body, headers=auth)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][:2] == loc
    assert "x" * 100 not in answer.text  # the value is not echoed
