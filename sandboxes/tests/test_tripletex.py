"""The Tripletex API v2 sandbox: session tokens and HTTP Basic, customers, projects, products,
orders with their lines, invoicing an order, optimistic locking, lists and errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from nordflow_sandboxes.tripletex import TripletexState
from nordflow_sandboxes.tripletex.testing import (
    FaultSpec,
    RunningTripletexSandbox,
    SandboxCompany,
    running_tripletex_sandbox,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningTripletexSandbox]:
    with running_tripletex_sandbox(TripletexState(rate_limit=1000)) as running:
        yield running


def session(sandbox: RunningTripletexSandbox, company: SandboxCompany) -> httpx.Client:
    created = httpx.put(
        f"{sandbox.api_url}/token/session/:create",
        params={
            "consumerToken": company.consumer_token,
            "employeeToken": company.employee_token,
            "expirationDate": (date.today() + timedelta(days=2)).isoformat(),
        },
    )
    assert created.status_code == 200, created.text
    token = created.json()["value"]["token"]
    basic = base64.b64encode(f"0:{token}".encode()).decode()
    return httpx.Client(base_url=sandbox.api_url, headers={"Authorization": f"Basic {basic}"})


def value(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json()["value"])


def test_a_session_is_made_from_consumer_and_employee_tokens(
    sandbox: RunningTripletexSandbox,
) -> None:
    company = sandbox.create_company()
    bad = httpx.put(
        f"{sandbox.api_url}/token/session/:create",
        params={
            "consumerToken": "nope",
            "employeeToken": company.employee_token,
            "expirationDate": date.today().isoformat(),
        },
    )
    assert bad.status_code == 403
    assert httpx.get(f"{sandbox.api_url}/customer").status_code == 401
    with session(sandbox, company) as api:
        me = value(api.get("/token/session/>whoAmI"))
        assert me["companyId"] == company.company_id
        with sandbox.admin() as admin:
            assert admin.expire_sessions(company.employee_token) == 1
        assert api.get("/customer").status_code == 401


def test_customer_project_products_order_and_its_invoice(sandbox: RunningTripletexSandbox) -> None:
    company = sandbox.create_company()
    with session(sandbox, company) as api:
        customer = value(
            api.post(
                "/customer", json={"name": "Kari Nordmann", "customerNumber": 17, "email": "k@x.no"}
            )
        )
        assert customer["customerNumber"] == 17
        found = api.get("/customer", params={"customerAccountNumber": "17"}).json()
        assert (found["fullResultSize"], found["values"][0]["id"]) == (1, customer["id"])
        taken = api.post("/customer", json={"name": "Annen", "customerNumber": 17})
        assert taken.status_code == 422
        assert taken.json()["validationMessages"][0]["field"] == "customerNumber"

        stale = api.put(f"/customer/{customer['id']}", json={"version": 5, "name": "X"})
        assert stale.status_code == 409
        updated = value(
            api.put(
                f"/customer/{customer['id']}",
                json={"version": customer["version"], "phoneNumber": "1"},
            )
        )
        assert updated["version"] == customer["version"] + 1

        me = value(api.get("/token/session/>whoAmI"))
        project = value(
            api.post(
                "/project",
                json={
                    "name": "Kjøkken Nordmann",
                    "number": "P-17",
                    "customer": {"id": customer["id"]},
                    "projectManager": {"id": me["employeeId"]},
                    "startDate": "2025-03-10",
                },
            )
        )
        assert api.get("/project", params={"number": "P-17"}).json()["fullResultSize"] == 1
        high = api.get("/ledger/vatType", params={"number": "3"}).json()["values"][0]
        assert high["percentage"] == 25
        product = value(
            api.post(
                "/product", json={"name": "Skap", "number": "Skap", "vatType": {"id": high["id"]}}
            )
        )
        order = value(
            api.post(
                "/order",
                json={
                    "customer": {"id": customer["id"]},
                    "project": {"id": project["id"]},
                    "orderDate": "2025-03-10",
                    "deliveryDate": "2025-03-20",
                    "reference": "nordflow:inv_1",
                    "orderLines": [
                        {
                            "product": {"id": product["id"]},
                            "description": "Skap",
                            "count": 1,
                            "unitPriceExcludingVatCurrency": 8000,
                        }
                    ],
                },
            )
        )
        assert order["orderLines"][0]["amountIncludingVatCurrency"] == 10000
        listed = api.get(
            "/order",
            params={
                "orderDateFrom": "2025-03-10",
                "orderDateTo": "2025-03-11",
                "customerId": str(customer["id"]),
            },
        ).json()
        assert [o["reference"] for o in listed["values"]] == ["nordflow:inv_1"]
        assert listed["values"][0]["orderLines"] == [{"id": order["orderLines"][0]["id"]}]
        assert api.get("/order", params={"orderDateFrom": "2025-03-10"}).status_code == 422

        invoice = value(
            api.put(
                f"/order/{order['id']}/:invoice",
                params={"invoiceDate": "2025-03-20", "sendToCustomer": "false"},
            )
        )
        assert (invoice["amount"], invoice["orders"]) == (10000, [{"id": order["id"]}])
        assert (
            api.put(
                f"/order/{order['id']}/:invoice", params={"invoiceDate": "2025-03-20"}
            ).status_code
            == 422
        )
        invoices = api.get(
            "/invoice", params={"invoiceDateFrom": "2025-03-01", "invoiceDateTo": "2025-04-01"}
        ).json()
        assert [i["id"] for i in invoices["values"]] == [invoice["id"]]


def test_faults_strike_after_the_change_is_stored(sandbox: RunningTripletexSandbox) -> None:
    company = sandbox.create_company()
    with sandbox.admin() as admin:
        admin.inject_fault(
            company.employee_token,
            FaultSpec(status=500, path_prefix="/v2/customer", method="POST", after_commit=True),
        )
        with session(sandbox, company) as api:
            failed = api.post("/customer", json={"name": "Ola"})
            assert failed.status_code == 500
            assert failed.headers["x-tlx-request-id"]
        assert [c["name"] for c in admin.records(company.employee_token)["customers"]] == ["Ola"]


def test_the_rate_limit_answers_429_with_its_headers() -> None:
    with running_tripletex_sandbox(TripletexState(rate_limit=2, rate_window_seconds=60)) as box:
        company = box.create_company()
        with session(box, company) as api:
            assert api.get("/customer").status_code == 200
            assert api.get("/customer").status_code == 200
            limited = api.get("/customer")
            assert limited.status_code == 429
            assert int(limited.headers["X-Rate-Limit-Reset"]) >= 1
