"""Fixtures for the Fortnox sandbox tests: a controllable clock, a state, an in-process client."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from nordflow_sandboxes.fortnox import FortnoxState, create_app
from nordflow_sandboxes.kit.testing import ManualClock, ManualMonotonic

# The clocks the tests move by hand.
FakeClock = ManualClock
FakeMonotonic = ManualMonotonic


@dataclass
class FortnoxApi:
    """A thin Fortnox client bound to one company, for brevity in tests."""

    client: httpx.AsyncClient
    token: str
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers)

    async def put(self, path: str, body: Any = None) -> httpx.Response:
        if body is None:
            return await self.client.put(path, headers=self.headers)
        return await self.client.put(path, json=body, headers=self.headers)

    async def delete(self, path: str) -> httpx.Response:
        return await self.client.delete(path, headers=self.headers)

    async def customer(self, **fields: Any) -> dict[str, Any]:
        body = {"Name": f"Kund {secrets.token_hex(3)}", **fields}
        response = await self.post("/3/customers", {"Customer": body})
        assert response.status_code == 201, response.text
        return dict(response.json()["Customer"])

    async def invoice(self, customer_number: str, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "CustomerNumber": customer_number,
            "InvoiceRows": [{"Description": "Konsulttimme", "DeliveredQuantity": 1, "Price": 100}],
            **fields,
        }
        response = await self.post("/3/invoices", {"Invoice": body})
        assert response.status_code == 201, response.text
        return dict(response.json()["Invoice"])

    async def payment(
        self, invoice_number: str | int, amount: Any, **fields: Any
    ) -> httpx.Response:
        body = {"InvoiceNumber": int(invoice_number), "Amount": amount, **fields}
        return await self.post("/3/invoicepayments", {"InvoicePayment": body})


@pytest.fixture
def clock() -> FakeClock:
    # 2025-03-10 12:15:30 in Stockholm (CET, UTC+1).
    return FakeClock(datetime(2025, 3, 10, 11, 15, 30, tzinfo=UTC))


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def state(clock: FakeClock, monotonic: FakeMonotonic) -> FortnoxState:
    return FortnoxState(clock=clock, monotonic=monotonic)


@pytest.fixture
async def client(state: FortnoxState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        yield http


@pytest.fixture
def token(state: FortnoxState) -> str:
    _company, issued = state.create_company(f"Test AB {secrets.token_hex(4)}")
    return issued


@pytest.fixture
def api(client: httpx.AsyncClient, token: str) -> FortnoxApi:
    return FortnoxApi(client, token)
