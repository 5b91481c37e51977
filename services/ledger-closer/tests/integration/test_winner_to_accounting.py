"""Winner → accounting through the service's handlers and jobs: an accepted quote split 20/80
by its payment calendar becomes two orders in Tripletex (customer card, project linked to it,
one product per product group) and in Fortnox (customer, project, articles, orders), each
invoiced when its part is due; a retry never makes a second of anything."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ledger_closer.adapters.repository import PgConnectionRepository
from ledger_closer.deps import Deps
from ledger_closer.testing import created, winner_order, write_connection
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import Emitted, ServiceHarness
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox, running_fortnox_sandbox
from nordflow_sandboxes.tripletex.testing import (
    RunningTripletexSandbox,
    running_tripletex_sandbox,
)
from nordflow_schemas.events import BookingAction, DocumentKind, Flow, InvoiceBooked
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration
TODAY = dt.datetime.now(dt.UTC).date()
LATER = TODAY + dt.timedelta(days=60)


@pytest.fixture(scope="module")
def tripletex() -> Iterator[RunningTripletexSandbox]:
    with running_tripletex_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def fortnox() -> Iterator[RunningFortnoxSandbox]:
    # The test reads a lot back; ledger-closer itself keeps to Fortnox's 25 per 5 s.
    with running_fortnox_sandbox(FortnoxState(rate_limit=10_000)) as running:
        yield running


def parts(tenant: str, winner: str) -> list:
    """Quote Q17 of 10 000 + 2 500 (two product groups), 20 % now and 80 % in 60 days."""
    groups = (("Skap", Decimal("8000.00")), ("Benkeplate", Decimal("2000.00")))
    return [
        winner_order(
            tenant,
            winner,
            "Q17-1",
            due_date=TODAY,
            groups=tuple((g, a * Decimal("0.2")) for g, a in groups),
        ),
        winner_order(
            tenant,
            winner,
            "Q17-2",
            due_date=LATER,
            groups=tuple((g, a * Decimal("0.8")) for g, a in groups),
        ),
    ]


async def finish(harness: ServiceHarness[Deps], *, future: bool = False) -> Emitted:
    emitted = Emitted()
    for _ in range(10):
        out = await harness.run_jobs(include_future=future)
        emitted.events += out.events
        jobs = await harness.jobs()
        if not any(
            j["state"] == "pending" and (future or j["due_at"] <= dt.datetime.now(dt.UTC))
            for j in jobs
        ):
            return emitted
    raise AssertionError("jobs still pending")


async def test_a_quote_split_20_80_becomes_two_orders_in_tripletex(
    harness: ServiceHarness[Deps], box: SecretBox, tripletex: RunningTripletexSandbox
) -> None:
    company = tripletex.create_company()
    tenant = new_tenant()
    winner, target = f"{tenant}-winner", f"{tenant}-tripletex"
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            tenant,
            target,
            system="tripletex",
            base_url=tripletex.base_url,
            token_sealed=box.seal(json.dumps(company.credentials())),
        )
    )
    flow = Flow(book_into=target, factor=False, distribute=False)
    for order in parts(tenant, winner):
        event = created(order, flow=flow, kind=DocumentKind.ORDER)
        await harness.publish(event)
        await harness.publish(event)

    booked = (await finish(harness)).of(InvoiceBooked)

    with tripletex.admin() as admin:
        records = admin.records(company.employee_token)
    [customer] = records["customers"]
    assert (customer["customerNumber"], customer["name"]) == (4711, "Kari Nordmann")
    [project] = records["projects"]
    assert (project["number"], project["name"]) == ("P-2026-17", "Kjøkken Nordmann")
    assert project["customer"] == {"id": customer["id"]}
    assert sorted(p["number"] for p in records["products"]) == ["Benkeplate", "Skap"]
    orders = sorted(records["orders"], key=lambda o: o["deliveryDate"])
    assert [
        sum(line["amountExcludingVatCurrency"] for line in o["orderLines"]) for o in orders
    ] == [
        2000,
        8000,
    ]
    assert all(o["customer"] == {"id": customer["id"]} for o in orders)
    assert all(o["project"] == {"id": project["id"]} for o in orders)
    # The part due today is invoiced now; the other waits for its due date.
    assert [b.action for b in booked].count(BookingAction.ORDER) == 2
    assert [b.action for b in booked].count(BookingAction.ORDER_INVOICED) == 1
    [invoice] = records["invoices"]
    assert invoice["orders"] == [{"id": orders[0]["id"]}]
    assert invoice["amount"] == 2500

    later = (await finish(harness, future=True)).of(InvoiceBooked)
    assert [b.action for b in later] == [BookingAction.ORDER_INVOICED]
    with tripletex.admin() as admin:
        assert len(admin.records(company.employee_token)["invoices"]) == 2


async def test_a_quote_split_20_80_becomes_two_orders_in_fortnox(
    harness: ServiceHarness[Deps], box: SecretBox, fortnox: RunningFortnoxSandbox
) -> None:
    company = fortnox.create_company()
    tenant = new_tenant()
    winner, target = f"{tenant}-winner", f"{tenant}-fx"
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            tenant, target, base_url=fortnox.base_url, token_sealed=box.seal(company.token)
        )
    )
    flow = Flow(book_into=target, factor=False, distribute=False)
    for order in parts(tenant, winner):
        await harness.publish(
            created(
                order.model_copy(update={"currency": "SEK"}), flow=flow, kind=DocumentKind.ORDER
            )
        )
    await finish(harness, future=True)

    read = fortnox_reader(fortnox, company.headers)
    assert read("customers/4711")["Customer"]["Name"] == "Kari Nordmann"
    assert read("projects/P-2026-17")["Project"]["Description"] == "Kjøkken Nordmann"
    assert read("articles/Skap")["Article"]["ArticleNumber"] == "Skap"
    orders = read("orders")["Orders"]
    assert [(o["Project"], o["CustomerNumber"]) for o in orders] == [("P-2026-17", "4711")] * 2
    full = [read(f"orders/{o['DocumentNumber']}")["Order"] for o in orders]
    assert sorted(o["Net"] for o in full) == [2000, 8000]
    assert all(o["InvoiceReference"] != "0" for o in full)  # both invoiced
    assert len(read("invoices")["Invoices"]) == 2


def fortnox_reader(fortnox: RunningFortnoxSandbox, headers: dict[str, str]) -> Callable[[str], Any]:
    """GET a Fortnox path of the company and its JSON."""

    def read(path: str) -> Any:
        response = httpx.get(f"{fortnox.base_url}/3/{path}", headers=headers)
        response.raise_for_status()
        return response.json()

    return read
