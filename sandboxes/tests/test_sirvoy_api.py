"""The Sirvoy sandbox's read API and admin, in-process: auth, shapes, paging, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from nordflow_sandboxes.sirvoy import SirvoyState, create_app
from nordflow_sandboxes.sirvoy.testing import ManualClock


@dataclass
class Hotel:
    """One account in the in-process sandbox, driven over HTTP."""

    http: httpx.AsyncClient
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers)

    async def admin(self, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.http.post(f"/sandbox{path}", json=body, headers=self.headers)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def booking(self, **fields: Any) -> dict[str, Any]:
        return await self.admin("/bookings", fields)

    async def invoice(self, booking_id: int, **fields: Any) -> dict[str, Any]:
        return await self.admin(f"/bookings/{booking_id}/invoices", fields)


@pytest.fixture
def sirvoy_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sirvoy_state(sirvoy_clock: ManualClock) -> SirvoyState:
    return SirvoyState(clock=sirvoy_clock)


@pytest.fixture
async def sirvoy_http(sirvoy_state: SirvoyState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(sirvoy_state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sirvoy.test") as http:
        yield http


@pytest.fixture
async def hotel(sirvoy_http: httpx.AsyncClient) -> Hotel:
    response = await sirvoy_http.post("/sandbox/accounts", json={"name": "Hotell Björken"})
    assert response.status_code == 201, response.text
    return Hotel(sirvoy_http, response.json()["token"])


# ------------------------------------------------------------------------------- auth


async def test_the_read_api_needs_a_known_bearer_token(hotel: Hotel) -> None:
    missing = await hotel.http.get("/api/v1/invoices")
    wrong = await hotel.http.get(
        "/api/v1/invoices", headers={"Authorization": "Bearer not-a-real-token-123"}
    )
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert "not-a-real-token-123" not in wrong.text
    assert (await hotel.get("/api/v1/invoices")).status_code == 200


async def test_accounts_do_not_see_each_other(hotel: Hotel, sirvoy_http: httpx.AsyncClient) -> None:
    booking = await hotel.booking()
    await hotel.invoice(booking["bookingId"])
    other = await sirvoy_http.post("/sandbox/accounts", json={"token": "other-hotel-token"})
    neighbour = Hotel(sirvoy_http, other.json()["token"])
    assert (await neighbour.get("/api/v1/invoices")).json()["data"] == []
    missing = await neighbour.get(f"/api/v1/bookings/{booking['bookingId']}")
    assert missing.status_code == 404
    taken = await sirvoy_http.post("/sandbox/accounts", json={"token": "other-hotel-token"})
    assert taken.status_code == 409


# ----------------------------------------------------------------------------- shapes


async def test_a_booking_has_the_documented_webhook_shape(hotel: Hotel) -> None:
    booking = await hotel.booking(
        nights=3,
        rooms=[{"room_type_name": "Enkelrum", "room_name": "12", "adults": 1, "price": 950}],
        guest={"firstName": "Lars", "lastName": "Berg"},
    )
    fetched = (await hotel.get(f"/api/v1/bookings/{booking['bookingId']}")).json()
    assert fetched == booking
    # Keys and quirks of Sirvoy's published example callback.
    for key in ("propertyId", "bookingId", "channelBookingId", "bookingDate", "arrivalDate"):
        assert key in booking
    room = booking["rooms"][0]
    assert (room["RoomTypeName"], room["RoomName"], room["adults"], room["price"]) == (
        "Enkelrum",
        "12",
        "1",
        "950",
    )
    assert room["roomTotal"] == booking["totalPrice"] == 2850
    assert booking["guest"]["firstName"] == "Lars"
    assert booking["payments"] == booking["invoices"] == []


async def test_an_invoice_takes_its_rows_from_the_booking(hotel: Hotel) -> None:
    booking = await hotel.booking(nights=2, rooms=[{"price": 1120}])
    invoice = await hotel.invoice(booking["bookingId"], due_days=10)
    assert invoice["type"] == "invoice"
    assert invoice["isCreditInvoice"] is False
    assert invoice["totalAmount"] == 2240
    assert invoice["totalVat"] == 240  # 12 % accommodation VAT contained in the price
    assert invoice["rows"][0]["vatRate"] == 12
    assert invoice["balance"] == 2240
    assert invoice["payments"] == []
    assert invoice["dueDate"] is not None
    same = (await hotel.get(f"/api/v1/invoices/{invoice['invoiceId']}")).json()
    assert same == invoice


async def test_a_cash_receipt_paid_by_stripe_names_the_provider(hotel: Hotel) -> None:
    booking = await hotel.booking()
    receipt = await hotel.invoice(booking["bookingId"], type="cashReceipt", stripe_payment=True)
    assert receipt["type"] == "cashReceipt"
    assert receipt["dueDate"] is None
    assert receipt["balance"] == 0
    [paid] = receipt["payments"]
    assert paid["provider"] == "stripe"
    assert paid["providerReference"].startswith("pi_")
    payment = (await hotel.get(f"/api/v1/payments/{paid['paymentId']}")).json()
    assert payment["invoiceId"] == receipt["invoiceId"]
    assert payment["method"] == "card"


async def test_a_cash_receipt_without_stripe_is_paid_in_cash(hotel: Hotel) -> None:
    booking = await hotel.booking()
    receipt = await hotel.invoice(booking["bookingId"], type="cashReceipt")
    [paid] = receipt["payments"]
    assert (paid["method"], paid["provider"]) == ("cash", None)
    stripe_on_invoice = await hotel.http.post(
        f"/sandbox/bookings/{booking['bookingId']}/invoices",
        json={"type": "invoice", "stripe_payment": True},
        headers=hotel.headers,
    )
    assert stripe_on_invoice.status_code == 400


async def test_a_stripe_prepayment_can_pay_a_cash_receipt(hotel: Hotel) -> None:
    booking = await hotel.booking(nights=1, rooms=[{"price": 800}])
    prepaid = await hotel.admin(
        "/payments",
        {"booking_id": booking["bookingId"], "amount": 800, "method": "card", "provider": "stripe"},
    )
    assert prepaid["invoiceId"] is None
    receipt = await hotel.invoice(
        booking["bookingId"], type="cashReceipt", transfer_payment_ids=[prepaid["paymentId"]]
    )
    assert [p["paymentId"] for p in receipt["payments"]] == [prepaid["paymentId"]]
    assert receipt["balance"] == 0


async def test_a_credit_invoice_references_its_original_once(hotel: Hotel) -> None:
    booking = await hotel.booking()
    original = await hotel.invoice(booking["bookingId"])
    credit = await hotel.admin(f"/invoices/{original['invoiceId']}/credit")
    assert credit["isCreditInvoice"] is True
    assert credit["creditedInvoiceId"] == original["invoiceId"]
    assert credit["creditedInvoiceNumber"] == original["invoiceNumber"]
    assert credit["totalAmount"] == -original["totalAmount"]
    assert credit["invoiceNumber"] == original["invoiceNumber"] + 1
    again = await hotel.http.post(
        f"/sandbox/invoices/{original['invoiceId']}/credit", headers=hotel.headers
    )
    of_credit = await hotel.http.post(
        f"/sandbox/invoices/{credit['invoiceId']}/credit", headers=hotel.headers
    )
    assert again.status_code == of_credit.status_code == 409
    refreshed = (await hotel.get(f"/api/v1/invoices/{original['invoiceId']}")).json()
    assert refreshed["creditedByInvoiceId"] == credit["invoiceId"]


async def test_payments_on_an_invoice_reduce_its_balance_and_can_be_voided(hotel: Hotel) -> None:
    booking = await hotel.booking(nights=1, rooms=[{"price": 1000}])
    invoice = await hotel.invoice(booking["bookingId"])
    part = await hotel.admin("/payments", {"invoice_id": invoice["invoiceId"], "amount": 400})
    rest = await hotel.admin("/payments", {"invoice_id": invoice["invoiceId"]})
    assert (part["amount"], rest["amount"]) == (400, 600)
    paid = (await hotel.get(f"/api/v1/invoices/{invoice['invoiceId']}")).json()
    assert paid["balance"] == 0
    voided = await hotel.admin(f"/payments/{part['paymentId']}/void")
    assert (voided["voided"], voided["amount"]) == (True, 0)
    reopened = (await hotel.get(f"/api/v1/invoices/{invoice['invoiceId']}")).json()
    assert reopened["balance"] == 400


# ---------------------------------------------------------------------------- listing


async def test_listings_page_by_cursor_in_modification_order(hotel: Hotel) -> None:
    booking = await hotel.booking()
    ids = [(await hotel.invoice(booking["bookingId"]))["invoiceId"] for _ in range(5)]
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"pageSize": 2, **({"cursor": cursor} if cursor else {})}
        body = (await hotel.get("/api/v1/invoices", **params)).json()
        seen += [item["invoiceId"] for item in body["data"]]
        assert body["meta"]["pageSize"] == 2
        cursor = body["meta"]["nextCursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_a_record_changed_while_paging_is_not_skipped(
    hotel: Hotel, sirvoy_clock: ManualClock
) -> None:
    booking = await hotel.booking()
    ids = []
    for _ in range(4):
        ids.append((await hotel.invoice(booking["bookingId"]))["invoiceId"])
        sirvoy_clock.advance(seconds=1)
    first = (await hotel.get("/api/v1/invoices", pageSize=2)).json()
    # The first invoice changes between the pages: it moves behind the cursor.
    await hotel.admin("/payments", {"invoice_id": ids[0], "amount": 100})
    rest = (
        await hotel.get("/api/v1/invoices", pageSize=10, cursor=first["meta"]["nextCursor"])
    ).json()
    seen = [i["invoiceId"] for i in first["data"] + rest["data"]]
    assert seen == [ids[0], ids[1], ids[2], ids[3], ids[0]]


async def test_modified_since_is_inclusive_and_needs_an_offset(
    hotel: Hotel, sirvoy_clock: ManualClock
) -> None:
    booking = await hotel.booking()
    old = await hotel.invoice(booking["bookingId"])
    sirvoy_clock.advance(minutes=5)
    new = await hotel.invoice(booking["bookingId"])
    since = new["modifiedAt"]
    body = (await hotel.get("/api/v1/invoices", modifiedSince=since)).json()
    assert [i["invoiceId"] for i in body["data"]] == [new["invoiceId"]]
    assert body["meta"]["serverTime"] == sirvoy_clock.current.isoformat(timespec="microseconds")
    zulu = since.replace("+00:00", "Z")
    assert len((await hotel.get("/api/v1/invoices", modifiedSince=zulu)).json()["data"]) == 1
    everything = (await hotel.get("/api/v1/invoices")).json()["data"]
    assert {i["invoiceId"] for i in everything} == {old["invoiceId"], new["invoiceId"]}
    naive = await hotel.get("/api/v1/invoices", modifiedSince="2025-03-10T11:15:30")
    assert naive.status_code == 400
    assert naive.json()["error"]["code"] == "invalid_parameter"
    for bad in ({"pageSize": 0}, {"pageSize": 501}, {"cursor": "!!"}, {"bookingId": "x"}):
        assert (await hotel.get("/api/v1/invoices", **bad)).status_code == 400


async def test_payments_list_filters_by_invoice_and_modified_since(
    hotel: Hotel, sirvoy_clock: ManualClock
) -> None:
    booking = await hotel.booking()
    first = await hotel.invoice(booking["bookingId"])
    second = await hotel.invoice(booking["bookingId"])
    await hotel.admin("/payments", {"invoice_id": first["invoiceId"], "amount": 100})
    sirvoy_clock.advance(seconds=30)
    later = await hotel.admin("/payments", {"invoice_id": second["invoiceId"], "amount": 50})
    by_invoice = (await hotel.get("/api/v1/payments", invoiceId=second["invoiceId"])).json()
    assert [p["paymentId"] for p in by_invoice["data"]] == [later["paymentId"]]
    since = (await hotel.get("/api/v1/payments", modifiedSince=later["modifiedAt"])).json()
    assert [p["paymentId"] for p in since["data"]] == [later["paymentId"]]


# ----------------------------------------------------------------------------- faults


async def test_faults_answer_before_the_data_is_read(hotel: Hotel) -> None:
    await hotel.admin("/faults", {"status": 503, "count": 2, "path_prefix": "/api/v1/invoices"})
    await hotel.admin("/faults", {"status": 429, "path_prefix": "/api/v1/payments"})
    assert (await hotel.get("/api/v1/invoices")).status_code == 503
    assert (await hotel.get("/api/v1/invoices")).status_code == 503
    assert (await hotel.get("/api/v1/invoices")).status_code == 200
    limited = await hotel.get("/api/v1/payments")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    logged = (await hotel.http.get("/sandbox/requests", headers=hotel.headers)).json()
    assert [(r["status"], r["fault"]) for r in logged["requests"]] == [
        (503, True),
        (503, True),
        (200, False),
        (429, True),
    ]
    stats = (await hotel.http.get("/sandbox/stats", headers=hotel.headers)).json()
    assert (stats["requests"], stats["faults_pending"]) == (4, 0)


async def test_admin_refuses_bad_bodies_and_unknown_accounts(hotel: Hotel) -> None:
    no_token = await hotel.http.post("/sandbox/bookings", json={})
    assert no_token.status_code == 401
    bad_fault = await hotel.http.post(
        "/sandbox/faults", json={"status": None}, headers=hotel.headers
    )
    assert bad_fault.status_code == 422
    no_target = await hotel.http.post("/sandbox/payments", json={}, headers=hotel.headers)
    assert no_target.status_code == 422
    missing = await hotel.http.post("/sandbox/bookings/1/invoices", json={}, headers=hotel.headers)
    assert missing.status_code == 404
