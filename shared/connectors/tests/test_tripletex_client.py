"""The Tripletex client against the Tripletex sandbox: session tokens (and their renewal after
a 401), paged lists, creates, optimistic updates, invoicing an order, refusals by field."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator

import pytest
from nordflow_connectors.tripletex import TripletexClient, TripletexError
from nordflow_sandboxes.tripletex import TripletexState
from nordflow_sandboxes.tripletex.testing import (
    RunningTripletexSandbox,
    SandboxCompany,
    running_tripletex_sandbox,
)
from pydantic import SecretStr


@pytest.fixture(scope="module")
def tripletex() -> Iterator[RunningTripletexSandbox]:
    with running_tripletex_sandbox(TripletexState(rate_limit=10_000)) as running:
        yield running


@pytest.fixture
def company(tripletex: RunningTripletexSandbox) -> SandboxCompany:
    return tripletex.create_company()


@pytest.fixture
async def client(
    tripletex: RunningTripletexSandbox, company: SandboxCompany
) -> AsyncIterator[TripletexClient]:
    api = TripletexClient(
        tripletex.base_url, SecretStr(company.consumer_token), SecretStr(company.employee_token)
    )
    yield api
    await api.aclose()


async def test_an_order_is_made_for_customer_project_and_product_and_invoiced(
    client: TripletexClient,
) -> None:
    me = await client.who_am_i()
    customer = await client.create("customer", {"name": "Kari", "customerNumber": 42})
    project = await client.create(
        "project",
        {
            "name": "Kjøkken",
            "number": "P-42",
            "customer": {"id": customer["id"]},
            "projectManager": {"id": me["employeeId"]},
        },
    )
    vat = await client.vat_type("3")
    assert vat is not None
    product = await client.create(
        "product", {"name": "Skap", "number": "Skap", "vatType": {"id": vat["id"]}}
    )
    day = dt.date(2025, 3, 10)
    order = await client.create(
        "order",
        {
            "customer": {"id": customer["id"]},
            "project": {"id": project["id"]},
            "orderDate": day.isoformat(),
            "deliveryDate": day.isoformat(),
            "reference": "nf:1",
            "orderLines": [
                {"product": {"id": product["id"]}, "count": 1, "unitPriceExcludingVatCurrency": 800}
            ],
        },
    )
    found = await client.orders(day, day + dt.timedelta(days=1), customerId=str(customer["id"]))
    assert [(o["id"], o["reference"]) for o in found] == [(order["id"], "nf:1")]
    assert found[0]["orderLines"][0]["amountIncludingVatCurrency"] == 1000
    assert [p["id"] for p in await client.projects(number="P-42")] == [project["id"]]
    assert [c["id"] for c in await client.customers(customerAccountNumber="42")] == [customer["id"]]

    invoice = await client.invoice_order(order["id"], day)
    assert invoice["orders"] == [{"id": order["id"]}]
    listed = await client.invoices(day, day + dt.timedelta(days=1))
    assert [i["id"] for i in listed] == [invoice["id"]]

    updated = await client.update(
        "customer", customer["id"], {"version": customer["version"], "email": "k@x.no"}
    )
    assert updated["email"] == "k@x.no"
    with pytest.raises(TripletexError) as stale:
        await client.update("customer", customer["id"], {"version": 0, "email": "y"})
    assert stale.value.status == 409


async def test_a_refusal_names_the_field_and_an_ended_session_is_renewed(
    client: TripletexClient, tripletex: RunningTripletexSandbox, company: SandboxCompany
) -> None:
    with pytest.raises(TripletexError) as refused:
        await client.create("customer", {"customerNumber": 7})
    assert refused.value.status == 422
    assert "name" in refused.value.fields
    assert refused.value.permanent

    with tripletex.admin() as admin:
        assert admin.expire_sessions(company.employee_token) == 1
    assert (await client.create("customer", {"name": "Etter fornyelse"}))["id"]
