"""The API on the real PostgreSQL: two tenants kept apart, an operator sees both, cursors,
filters, journeys with errors, statistics, and actions sent as commands."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from control_panel.adapters.tokens import PgTokenRepository
from control_panel.deps import Deps
from control_panel.service.tokens import create_token
from control_panel.testing import (
    BASE_TIME,
    dead_letter_record,
    job_failed,
    job_retried,
    journey,
    rejected,
)
from nordflow_runtime import tenants
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import (
    ActionOutcome,
    ConnectionUpdated,
    OperatorAction,
    OperatorActionCompleted,
    OperatorActionRequested,
)
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


@dataclass
class World:
    """Two tenants' data in the read model, and a token each plus an operator's."""

    harness: ServiceHarness[Deps]
    a: str
    b: str
    a_token: str
    b_token: str
    operator: str
    a_invoice: str
    a_rejected: str
    b_invoice: str

    def client(self, token: str | None) -> httpx.AsyncClient:
        return self.harness.http(token=token)


@pytest.fixture
async def world(harness: ServiceHarness[Deps]) -> World:
    a, b = new_tenant(), new_tenant()
    for n, number in enumerate(("1001", "1003", "1004", "1005")):
        start = BASE_TIME + dt.timedelta(hours=n)
        await harness.deliver(*journey(a, number, customer=f"Kund {number} AB", start=start))
    await harness.deliver(*rejected(a, "1002", start=BASE_TIME + dt.timedelta(hours=5)))
    await harness.deliver(*journey(b, "2001", customer="Annan AS", system=SourceSystem.VISMA_NET))
    tokens = PgTokenRepository(harness.pool)
    return World(
        harness=harness,
        a=a,
        b=b,
        a_token=await create_token(tokens, a, operator=False, name="finance"),
        b_token=await create_token(tokens, b, operator=False, name="finance"),
        operator=await create_token(tokens, None, operator=True, name="ops"),
        a_invoice=journey(a, "1001")[0].body.invoice_id,
        a_rejected=rejected(a, "1002")[0].body.invoice_id,
        b_invoice=journey(b, "2001", system=SourceSystem.VISMA_NET)[0].body.invoice_id,
    )


async def get(world: World, token: str | None, path: str, **params: Any) -> httpx.Response:
    async with world.client(token) as client:
        return await client.get(path, params=params)


async def post(world: World, token: str | None, path: str, **params: Any) -> httpx.Response:
    async with world.client(token) as client:
        return await client.post(path, params=params)


def numbers(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["number"] for item in response.json()["items"]]


async def test_a_token_is_needed_and_tells_who_it_is(world: World) -> None:
    assert (await get(world, None, "/api/v1/invoices")).status_code == 401
    assert (await get(world, "nfcp_nope", "/api/v1/invoices")).status_code == 401
    me = (await get(world, world.a_token, "/api/v1/me")).json()
    assert me == {"name": "finance", "tenant_id": world.a, "operator": False}
    assert (await get(world, world.operator, "/api/v1/me")).json()["operator"] is True
    assert await PgTokenRepository(world.harness.pool).revoke("finance", world.b) == 1
    assert (await get(world, world.b_token, "/api/v1/me")).status_code == 401


async def test_two_tenants_see_only_their_own_invoices(world: World) -> None:
    assert numbers(await get(world, world.a_token, "/api/v1/invoices")) == [
        "1002",
        "1005",
        "1004",
        "1003",
        "1001",
    ]
    assert numbers(await get(world, world.b_token, "/api/v1/invoices")) == ["2001"]
    # Another tenant's invoice is not found, exactly like one that does not exist.
    for path in (
        f"/api/v1/invoices/{world.b_invoice}",
        f"/api/v1/invoices/{world.b_invoice}/journey",
    ):
        refused = await get(world, world.a_token, path)
        assert refused.status_code == 404
        assert world.b not in refused.text
    asked = await get(world, world.a_token, "/api/v1/invoices", tenant=world.b)
    assert asked.status_code == 403
    assert asked.json()["detail"].startswith("tenant:")
    for path in ("/api/v1/connections", "/api/v1/books", "/api/v1/delivery", "/api/v1/failed-jobs"):
        assert (await get(world, world.a_token, path, tenant=world.b)).status_code == 403
    books = (await get(world, world.b_token, "/api/v1/books")).json()
    assert {t["tenant_id"] for t in books["transfers"]} == {world.b}
    assert (await get(world, world.a_token, "/api/v1/tenants")).json() == [world.a]


async def test_an_operator_sees_every_tenant_and_may_narrow_to_one(world: World) -> None:
    every = numbers(await get(world, world.operator, "/api/v1/invoices", limit=200))
    assert {"1001", "2001"} <= set(every)
    assert numbers(await get(world, world.operator, "/api/v1/invoices", tenant=world.b)) == ["2001"]
    detail = await get(world, world.operator, f"/api/v1/invoices/{world.b_invoice}")
    assert detail.json()["tenant_id"] == world.b
    assert {world.a, world.b} <= set((await get(world, world.operator, "/api/v1/tenants")).json())


async def test_cursors_page_through_without_gaps_or_repeats(world: World) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await get(world, world.a_token, "/api/v1/invoices", **params)).json()
        seen += [i["number"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == ["1002", "1005", "1004", "1003", "1001"]
    bad = await get(world, world.a_token, "/api/v1/invoices", cursor="garbage")
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("cursor:")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "100"}, ["1002", "1005", "1004", "1003", "1001"]),
        ({"q": "kund 1003"}, ["1003"]),
        ({"number": "1004"}, ["1004"]),
        ({"customer": "felaktig"}, ["1002"]),
        ({"status": "rejected"}, ["1002"]),
        (
            {"status": "booked", "amount_min": "1250", "amount_max": "1250.00"},
            ["1005", "1004", "1003", "1001"],
        ),
        ({"amount_min": "1250.01"}, []),
        (
            {"source": "fortnox", "from": "2025-03-10", "to": "2025-03-10"},
            ["1002", "1005", "1004", "1003", "1001"],
        ),
        ({"from": "2025-03-11"}, []),
    ],
)
async def test_search_filters_combine(
    world: World, params: dict[str, str], expected: list[str]
) -> None:
    assert numbers(await get(world, world.a_token, "/api/v1/invoices", **params)) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"q": "x" * 101}, "q"),
        ({"status": "lost"}, "status"),
        ({"source": "sap"}, "source"),
        ({"from": "2025-02-30"}, "from"),
        ({"amount_min": "-1"}, "amount_min"),
        ({"tenant": "Not A Tenant"}, "tenant"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    world: World, params: dict[str, str], field: str
) -> None:
    refused = await get(world, world.a_token, "/api/v1/invoices", **params)
    assert refused.status_code == 422
    assert [e["loc"][-1] for e in refused.json()["detail"]] == [field]
    mixed = await get(world, world.a_token, "/api/v1/invoices", amount_min="5", amount_max="1")
    assert mixed.status_code == 400
    assert mixed.json()["detail"].startswith("amount_max:")


async def test_an_invoice_has_its_journey_errors_and_document(world: World) -> None:
    found = (await get(world, world.a_token, f"/api/v1/invoices/{world.a_invoice}")).json()
    assert found["status"] == "booked"
    assert found["amount"] == "1250.00"  # money is a decimal string
    assert found["channel"] == "email"
    assert [s["kind"] for s in found["journey"]] == [
        "erp.document.fetched",
        "invoice.created",
        "invoice.transferred",
        "invoice.distributed",
        "payment.received",
        "ledger.entry.posted",
    ]
    assert found["journey"][3]["facts"]["fallbacks"][0]["channel"] == "peppol"
    assert found["document"]["lines"][0]["description"] == "Konsult"
    assert found["trace_id"]
    bad = (await get(world, world.a_token, f"/api/v1/invoices/{world.a_rejected}")).json()
    assert bad["status"] == "rejected"
    assert bad["document"] is None
    assert [(e["field"], e["rule"], e["problem"]) for e in bad["errors"]] == [
        ("Invoice.OrganisationNumber", "NF-ORGNR", "identity"),
        ("Invoice.DueDate", "NF-DATE", "date"),
    ]


async def test_statistics_per_day_and_month(world: World) -> None:
    found = await get(
        world, world.a_token, "/api/v1/statistics", **{"from": "2025-03-01", "to": "2025-03-31"}
    )
    body = found.json()
    assert body["time_zone"] == "Europe/Stockholm"  # no profile yet: the Swedish seller's zone
    day = next(p for p in body["periods"] if p["period"] == "2025-03-10")
    assert day["sent"] == {"email": 4}
    assert day["created"] == {"fortnox": 4}
    assert day["rejected"] == 1
    assert day["electronic_share"] == "0.0000"
    assert day["cost"] == "4.00"
    month = await get(
        world,
        world.a_token,
        "/api/v1/statistics",
        granularity="month",
        **{"from": "2025-01-01", "to": "2025-03-31"},
    )
    assert [p["period"] for p in month.json()["periods"]] == [
        "2025-01-01",
        "2025-02-01",
        "2025-03-01",
    ]
    backwards = await get(
        world, world.a_token, "/api/v1/statistics", **{"from": "2025-03-02", "to": "2025-03-01"}
    )
    assert backwards.status_code == 400
    assert backwards.json()["detail"].startswith("to:")


async def test_a_failed_job_is_retried_by_a_command_to_its_service(world: World) -> None:
    h = world.harness
    await h.deliver(job_failed(world.a, world.a_invoice, job_id=7))
    jobs = (await get(world, world.a_token, "/api/v1/failed-jobs")).json()["items"]
    assert [(j["service"], j["job_id"], j["state"]) for j in jobs] == [
        ("ledger-closer", 7, "failed")
    ]
    assert (await get(world, world.b_token, "/api/v1/failed-jobs")).json()["items"] == []
    assert (
        await post(world, world.b_token, "/api/v1/failed-jobs/ledger-closer/7/retry")
    ).status_code == 404

    sent = await post(world, world.a_token, "/api/v1/failed-jobs/ledger-closer/7/retry")
    assert sent.status_code == 202, sent.text
    action = sent.json()
    assert (action["action"], action["service"], action["target_id"]) == (
        "retry_job",
        "ledger-closer",
        "7",
    )
    [command] = (await h.emitted()).of(OperatorActionRequested)
    assert (command.tenant_id, command.service, command.action, command.target_id) == (
        world.a,
        "ledger-closer",
        OperatorAction.RETRY_JOB,
        "7",
    )
    assert command.requested_by == f"{world.a}:finance"
    waiting = (await get(world, world.a_token, f"/api/v1/actions/{action['action_id']}")).json()
    assert waiting["outcome"] is None
    assert (
        await get(world, world.b_token, f"/api/v1/actions/{action['action_id']}")
    ).status_code == 404
    # The service answers; the job is pending again.
    await h.publish(
        OperatorActionCompleted(
            tenant_id=world.a,
            action_id=action["action_id"],
            service="ledger-closer",
            action=OperatorAction.RETRY_JOB,
            target_id="7",
            outcome=ActionOutcome.DONE,
            message="job 7 is pending again, due now",
            completed_at=dt.datetime.now(dt.UTC),
        )
    )
    await h.deliver(
        job_retried(world.a, world.a_invoice, job_id=7, at=BASE_TIME + dt.timedelta(hours=9))
    )
    done = (await get(world, world.a_token, f"/api/v1/actions/{action['action_id']}")).json()
    assert done["outcome"] == "done"
    again = await post(world, world.a_token, "/api/v1/failed-jobs/ledger-closer/7/retry")
    assert again.status_code == 409
    huge = await post(world, world.a_token, f"/api/v1/failed-jobs/ledger-closer/{10**20}/retry")
    assert huge.status_code == 422
    assert huge.json()["detail"][0]["loc"] == ["path", "job_id"]


async def test_only_an_operator_replays_a_dead_letter(world: World) -> None:
    h = world.harness
    await h.deliver_records([dead_letter_record(world.a, journey(world.a, "1001")[1])])
    [letter] = (await get(world, world.a_token, "/api/v1/dead-letters")).json()["items"]
    assert letter["consumer"] == "mapper"
    assert letter["invoice_id"] == world.a_invoice
    path = f"/api/v1/dead-letters/{letter['letter_id']}/replay"
    assert (await post(world, world.a_token, path)).status_code == 403
    assert (await post(world, world.b_token, path)).status_code == 404
    sent = await post(world, world.operator, path)
    assert sent.status_code == 202
    [command] = (await h.emitted()).of(OperatorActionRequested)
    assert (command.service, command.action, command.target_id) == (
        "mapper",
        OperatorAction.REPLAY_DEAD_LETTER,
        letter["position"],
    )
    assert command.requested_by == "operator:ops"


async def test_sync_now_asks_erp_poller(world: World) -> None:
    h = world.harness
    assert (
        await post(world, world.a_token, "/api/v1/connections/fortnox-1/sync")
    ).status_code == 404
    await h.publish(
        ConnectionUpdated(
            tenant_id=world.a,
            connection_id="fortnox-1",
            system=SourceSystem.FORTNOX,
            mode=ConnectionMode.MANUAL,
            revision=1,
            last_poll_at=BASE_TIME,
            last_error="429 Too Many Requests",
            updated_at=BASE_TIME,
        )
    )
    [connection] = (await get(world, world.a_token, "/api/v1/connections")).json()
    assert (connection["mode"], connection["last_error"]) == ("manual", "429 Too Many Requests")
    assert (await get(world, world.b_token, "/api/v1/connections")).json() == []
    assert (
        await post(world, world.b_token, "/api/v1/connections/fortnox-1/sync")
    ).status_code == 404
    sent = await post(world, world.a_token, "/api/v1/connections/fortnox-1/sync")
    assert sent.status_code == 202
    assert sent.json()["service"] == "erp-poller"
    # An operator names the tenant.
    assert (
        await post(world, world.operator, "/api/v1/connections/fortnox-1/sync")
    ).status_code == 404
    operator = await post(
        world, world.operator, "/api/v1/connections/fortnox-1/sync", tenant=world.a
    )
    assert operator.status_code == 202


async def test_delivery_and_books(world: World) -> None:
    delivery = (await get(world, world.a_token, "/api/v1/delivery")).json()
    assert [(c["customer_key"], c["channel"], c["sent"]) for c in delivery["customers"]] == [
        ("K-7", "email", 4)
    ]
    books = (await get(world, world.a_token, "/api/v1/books")).json()
    assert len(books["transfers"]) == 4
    assert books["transfers"][0]["amount"] == "1250.00"
    assert {e["account"] for e in books["entries"]} == {"1512"}
    assert {p["payer"] for p in books["payments"]} == {"Nordic Factor AB"}


async def test_a_read_token_sees_but_never_asks_a_service_to_act(world: World) -> None:
    """The runtime's token model: scope `read` reads; an expired token is refused."""
    h = world.harness
    await h.deliver(job_failed(world.a, world.a_invoice, job_id=8))
    reader = await tenants.create_token(h.pool, world.a, "dashboard", scope=tenants.Scope.READ)
    jobs = (await get(world, reader, "/api/v1/failed-jobs")).json()["items"]
    assert [j["job_id"] for j in jobs] == [8]
    refused = await post(world, reader, "/api/v1/failed-jobs/ledger-closer/8/retry")
    assert refused.status_code == 403
    assert "read" in refused.text
    assert (await h.emitted()).of(OperatorActionRequested) == []
    expired = await tenants.create_token(
        h.pool,
        world.a,
        "old",
        expires_in=dt.timedelta(days=1),
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2),
    )
    assert (await get(world, expired, "/api/v1/failed-jobs")).status_code == 401
