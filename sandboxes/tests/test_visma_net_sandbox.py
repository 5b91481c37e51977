"""The Visma.net sandbox in-process: auth and company choice, documents, paging, ETags, limits."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from nordflow_sandboxes.kit.testing import ManualClock as Clock
from nordflow_sandboxes.kit.testing import ManualMonotonic as Monotonic
from nordflow_sandboxes.kit.values import luhn_check_digit
from nordflow_sandboxes.visma_net import VismaNetState, create_app
from nordflow_sandboxes.visma_net.app import normalise_path
from nordflow_sandboxes.visma_net.testing import LineSpec, customer_body, invoice_body, wrapped
from nordflow_sandboxes.visma_net.values import etag_of, kid_for


@dataclass
class Api:
    """A thin Visma.net client bound to one company, for brevity in tests."""

    client: httpx.AsyncClient
    token: str
    company_id: str
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.token}", "ipp-company-id": self.company_id}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)

    async def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.post(
            path, json=body if body is not None else {}, headers={**self.headers, **(headers or {})}
        )

    async def put(self, path: str, body: Any, if_match: str | None = None) -> httpx.Response:
        headers = dict(self.headers)
        if if_match is not None:
            headers["If-Match"] = if_match
        return await self.client.put(path, json=body, headers=headers)

    async def customer(self, **fields: Any) -> str:
        response = await self.post("/v1/customer", customer_body(**fields))
        assert response.status_code == 201, response.text
        return response.headers["Location"].rsplit("/", 1)[-1]

    async def invoice(
        self,
        customer: str,
        lines: tuple[LineSpec, ...] = (LineSpec(),),
        *,
        release: bool = True,
        **fields: Any,
    ) -> str:
        response = await self.post("/v1/customerinvoice", invoice_body(customer, lines, **fields))
        assert response.status_code == 201, response.text
        number = response.headers["Location"].rsplit("/", 1)[-1]
        if release:
            released = await self.post(f"/v1/customerinvoice/{number}/action/release")
            assert released.status_code == 200, released.text
        return number

    async def payment(
        self, customer: str, *lines: tuple[str, Any], **fields: Any
    ) -> httpx.Response:
        body = {
            **wrapped(type="Payment", customer=customer, **fields),
            "paymentLines": [
                {"operation": "Insert", **wrapped(documentType="Invoice", refNbr=r, amountPaid=a)}
                for r, a in lines
            ],
        }
        return await self.post("/v1/customerpayment", body)


@pytest.fixture
def vn_clock() -> Clock:
    return Clock(datetime(2025, 3, 10, 11, 15, 30, 123456, tzinfo=UTC))


@pytest.fixture
def vn_monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def vn_state(vn_clock: Clock, vn_monotonic: Monotonic) -> VismaNetState:
    return VismaNetState(clock=vn_clock, monotonic=vn_monotonic, max_page_size=50)


@pytest.fixture
async def vn_client(vn_state: VismaNetState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(vn_state))
    async with httpx.AsyncClient(transport=transport, base_url="http://visma.test") as http:
        yield http


@pytest.fixture
def vn_api(vn_client: httpx.AsyncClient, vn_state: VismaNetState) -> Api:
    company, token = vn_state.create_company(f"Test AS {secrets.token_hex(3)}")
    return Api(vn_client, token, company.company_id)


def ipp(body: dict[str, Any]) -> tuple[str, str]:
    return body["ExceptionType"], body["ExceptionFaultCode"]


# ------------------------------------------------------------------- auth and company


async def test_a_missing_or_unknown_token_is_401(vn_client: httpx.AsyncClient) -> None:
    assert (await vn_client.get("/v1/customerinvoice")).status_code == 401
    unknown = await vn_client.get(
        "/v1/customerinvoice", headers={"Authorization": "Bearer nope-nope-nope"}
    )
    assert unknown.status_code == 401
    assert unknown.json()["ExceptionType"] == "IPPException"


async def test_the_company_header_is_required_and_must_be_granted(
    vn_api: Api, vn_client: httpx.AsyncClient, vn_state: VismaNetState
) -> None:
    bare = await vn_client.get("/v1/customer", headers={"Authorization": f"Bearer {vn_api.token}"})
    assert bare.status_code == 400
    assert ipp(bare.json()) == ("IPPException", "12002")
    foreign, _ = vn_state.create_company("Other AS")
    other = await vn_client.get(
        "/v1/customer",
        headers={"Authorization": f"Bearer {vn_api.token}", "ipp-company-id": foreign.company_id},
    )
    assert other.status_code == 400


async def test_one_token_opens_several_companies_whose_data_stays_apart(
    vn_api: Api, vn_client: httpx.AsyncClient, vn_state: VismaNetState
) -> None:
    second, same_token = vn_state.create_company("Second AS", token=vn_api.token)
    assert same_token == vn_api.token
    await vn_api.customer(name="Only in the first")
    second_api = Api(vn_client, vn_api.token, second.company_id)
    assert (await second_api.get("/v1/customer")).json() == []
    assert len((await vn_api.get("/v1/customer")).json()) == 1


async def test_without_the_required_header_a_single_company_token_may_be_accepted(
    vn_clock: Clock,
) -> None:
    state = VismaNetState(clock=vn_clock, require_company_header=False)
    _company, token = state.create_company("Solo AS")
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.get("/v1/customer", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200


def test_paths_ignore_the_case_of_fixed_segments_only() -> None:
    assert normalise_path("/V1/CustomerInvoice/AbC/Action/Release") == (
        "/v1/customerinvoice/AbC/action/release"
    )
    assert normalise_path("/v1/Customer/K-10") == "/v1/customer/K-10"


async def test_documented_casing_works(vn_api: Api) -> None:
    customer = await vn_api.customer()
    number = await vn_api.invoice(customer)
    assert (await vn_api.get(f"/v1/CustomerInvoice/{number}")).status_code == 200
    assert (await vn_api.get("/v1/customerPayment")).status_code == 200


# ------------------------------------------------------------------ customers


async def test_customer_create_and_read_with_etag(vn_api: Api) -> None:
    number = await vn_api.customer(
        name="Fjord AS", number="K100", corporateId="923609016", currencyId="NOK"
    )
    assert number == "K100"
    response = await vn_api.get("/v1/customer/K100")
    assert response.status_code == 200
    body = response.json()
    assert (body["number"], body["name"], body["corporateId"]) == ("K100", "Fjord AS", "923609016")
    assert response.headers["ETag"] == f'"{body["timeStamp"]}"'
    assert (await vn_api.get("/v1/customer/nope")).status_code == 404
    duplicate = await vn_api.post("/v1/customer", customer_body(name="Again", number="K100"))
    assert duplicate.status_code == 400


# ------------------------------------------------------------------- invoices


async def test_invoice_amounts_vat_kid_and_status(vn_api: Api) -> None:
    customer = await vn_api.customer()
    lines = (
        LineSpec("Hours", quantity=Decimal(3), unit_price=Decimal("199.90")),
        LineSpec("Food", quantity=Decimal(1), unit_price=Decimal(100), vat_code_id="31"),
    )
    number = await vn_api.invoice(customer, lines, release=False)
    draft = (await vn_api.get(f"/v1/customerinvoice/{number}")).json()
    assert draft["status"] == "Balanced"
    assert draft["detailTotal"] == 699.7
    assert draft["vatTotal"] == 164.93  # 599.70 * 25 % = 149.925 -> 149.93; 100 * 15 % = 15
    assert draft["amount"] == draft["balance"] == 864.63
    assert draft["paymentReference"] == kid_for(number)
    kid = draft["paymentReference"]
    assert luhn_check_digit(kid[:-1]) == int(kid[-1])
    assert draft["customer"]["number"] == customer
    assert [line["lineNumber"] for line in draft["invoiceLines"]] == [1, 2]
    release = await vn_api.post(f"/v1/customerinvoice/{number}/action/release")
    assert release.json()["actionResult"] == "Done"
    assert (await vn_api.get(f"/v1/customerinvoice/{number}")).json()["status"] == "Open"
    again = await vn_api.post(f"/v1/customerinvoice/{number}/action/release")
    assert again.status_code == 400


async def test_invoice_refuses_an_unknown_customer_or_vat_code(vn_api: Api) -> None:
    missing = await vn_api.post("/v1/customerinvoice", invoice_body("does-not-exist"))
    assert missing.status_code == 400
    customer = await vn_api.customer()
    bad_vat = await vn_api.post(
        "/v1/customerinvoice", invoice_body(customer, (LineSpec(vat_code_id="99"),))
    )
    assert bad_vat.status_code == 400
    assert "vatCodeId" in bad_vat.json()["ExceptionMessage"]


async def test_list_is_a_plain_array_with_metadata_and_pages(vn_api: Api) -> None:
    customer = await vn_api.customer()
    numbers = [await vn_api.invoice(customer, release=False) for _ in range(7)]
    first = (await vn_api.get("/v1/customerinvoice", pageNumber=1, pageSize=3)).json()
    third = (await vn_api.get("/v1/customerinvoice", pageNumber=3, pageSize=3)).json()
    beyond = (await vn_api.get("/v1/customerinvoice", pageNumber=4, pageSize=3)).json()
    assert isinstance(first, list)
    assert [i["referenceNumber"] for i in first] == numbers[:3]
    assert [i["referenceNumber"] for i in third] == numbers[6:]
    assert beyond == []
    assert first[0]["metadata"] == {"totalCount": 7, "maxPageSize": 50}
    assert (await vn_api.get("/v1/customerinvoice", pageSize=0)).status_code == 400


async def test_a_page_size_above_the_maximum_is_cut_to_it(vn_api: Api) -> None:
    customer = await vn_api.customer()
    for _ in range(55):
        await vn_api.invoice(customer, release=False)
    page = (await vn_api.get("/v1/customerinvoice", pageNumber=1, pageSize=500)).json()
    assert len(page) == 50
    assert page[0]["metadata"]["totalCount"] == 55


async def test_last_modified_condition_is_millisecond_exact(vn_api: Api, vn_clock: Clock) -> None:
    customer = await vn_api.customer()
    early = await vn_api.invoice(customer, release=False)
    vn_clock.advance(seconds=5)
    late = await vn_api.invoice(customer, release=False)
    stamp = (await vn_api.get(f"/v1/customerinvoice/{late}")).json()["lastModifiedDateTime"]
    assert stamp == "2025-03-10T11:15:35.123"  # API time zone UTC, milliseconds, no offset
    moment = stamp.replace("T", " ")

    async def refs(condition: str) -> list[str]:
        answer = await vn_api.get(
            "/v1/customerinvoice",
            lastModifiedDateTime=moment,
            lastModifiedDateTimeCondition=condition,
        )
        assert answer.status_code == 200, answer.text
        return [i["referenceNumber"] for i in answer.json()]

    assert await refs(">=") == [late]
    assert await refs(">") == []
    assert await refs("<") == [early]
    assert await refs("<=") == [early, late]
    by_day = await vn_api.get("/v1/customerinvoice", lastModifiedDateTime="2025-03-10")
    assert len(by_day.json()) == 2  # the condition defaults to >=
    bad = await vn_api.get(
        "/v1/customerinvoice", lastModifiedDateTime=moment, lastModifiedDateTimeCondition="=="
    )
    assert bad.status_code == 400
    assert (
        await vn_api.get("/v1/customerinvoice", lastModifiedDateTime="yesterday")
    ).status_code == (400)


async def test_the_api_time_zone_is_configurable(vn_clock: Clock) -> None:
    state = VismaNetState(clock=vn_clock, api_timezone="Europe/Oslo")
    company, token = state.create_company("Oslo AS")
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        api = Api(http, token, company.company_id)
        number = await api.invoice(await api.customer(), release=False)
        body = (await api.get(f"/v1/customerinvoice/{number}")).json()
        assert body["lastModifiedDateTime"] == "2025-03-10T12:15:30.123"
        hits = await api.get(
            "/v1/customerinvoice",
            lastModifiedDateTime="2025-03-10 12:15:30.123",
            lastModifiedDateTimeCondition=">=",
        )
        assert len(hits.json()) == 1


async def test_unknown_query_parameters_are_ignored(vn_api: Api) -> None:
    customer = await vn_api.customer()
    await vn_api.invoice(customer)
    answer = await vn_api.get("/v1/customerinvoice", lastModifedDateTime="2099-01-01")
    assert len(answer.json()) == 1  # misspelt filter: everything, as Visma.net does


# ----------------------------------------------------------------------- ETags


async def test_put_with_a_stale_if_match_is_412_and_changes_nothing(vn_api: Api) -> None:
    customer = await vn_api.customer()
    number = await vn_api.invoice(customer)
    read = await vn_api.get(f"/v1/customerinvoice/{number}")
    etag = read.headers["ETag"]
    assert etag.strip('"') == read.json()["timeStamp"]
    noted = await vn_api.put(f"/v1/customerinvoice/{number}", {"note": {"value": "by a user"}})
    assert noted.status_code == 204
    stale = await vn_api.put(
        f"/v1/customerinvoice/{number}", {"documentDueDate": {"value": "2025-06-30"}}, etag
    )
    assert stale.status_code == 412
    current = await vn_api.get(f"/v1/customerinvoice/{number}")
    assert current.json()["documentDueDate"] == read.json()["documentDueDate"]
    moved = await vn_api.put(
        f"/v1/customerinvoice/{number}",
        {"documentDueDate": {"value": "2025-06-30"}},
        current.headers["ETag"],
    )
    assert moved.status_code == 204
    assert moved.headers["ETag"] != current.headers["ETag"]
    after = await vn_api.get(f"/v1/customerinvoice/{number}")
    assert after.json()["documentDueDate"] == "2025-06-30T00:00:00"
    assert after.headers["ETag"] == moved.headers["ETag"]


async def test_a_released_invoice_accepts_only_a_new_due_date(vn_api: Api) -> None:
    number = await vn_api.invoice(await vn_api.customer())
    refused = await vn_api.put(f"/v1/customerinvoice/{number}", {"invoiceText": {"value": "x"}})
    assert refused.status_code == 400
    early = await vn_api.put(
        f"/v1/customerinvoice/{number}", {"documentDueDate": {"value": "2000-01-01"}}
    )
    assert early.status_code == 400


def test_etags_look_like_visma_row_versions() -> None:
    assert etag_of(0x4D18222) == "AAAAAATRgiI="
    assert len(etag_of(1)) == 12


# ------------------------------------------------------------------- payments


async def test_payment_balance_waits_for_release(vn_api: Api) -> None:
    customer = await vn_api.customer()
    number = await vn_api.invoice(customer)  # 125.00 with 25 % VAT
    created = await vn_api.payment(customer, (number, 100), paymentRef="NF-1")
    assert created.status_code == 201
    ref = created.headers["Location"].rsplit("/", 1)[-1]
    payment = (await vn_api.get(f"/v1/customerpayment/{ref}")).json()
    assert (payment["status"], payment["paymentAmount"], payment["availableBalance"]) == (
        "Balanced",
        100,
        0,
    )
    invoice = (await vn_api.get(f"/v1/customerinvoice/{number}")).json()
    assert invoice["balance"] == 125
    assert invoice["applications"][0]["released"] is False
    released = await vn_api.post(
        f"/v1/customerpayment/{ref}/action/release", {"type": {"value": "Payment"}}
    )
    assert released.status_code == 200
    assert released.json()["actionResult"] == "Done"
    invoice = (await vn_api.get(f"/v1/customerinvoice/{number}")).json()
    assert (invoice["balance"], invoice["status"]) == (25, "Open")
    assert (await vn_api.get(f"/v1/customerpayment/{ref}")).json()["status"] == "Closed"
    again = await vn_api.post(f"/v1/customerpayment/{ref}/action/release")
    assert again.status_code == 400
    rest = await vn_api.payment(customer, (number, 25))
    rest_ref = rest.headers["Location"].rsplit("/", 1)[-1]
    await vn_api.post(f"/v1/customerpayment/{rest_ref}/action/release")
    closed = (await vn_api.get(f"/v1/customerinvoice/{number}")).json()
    assert (closed["balance"], closed["status"]) == (0, "Closed")


async def test_payment_rules(vn_api: Api) -> None:
    customer = await vn_api.customer()
    other = await vn_api.customer()
    number = await vn_api.invoice(customer)
    draft = await vn_api.invoice(customer, release=False)
    assert (await vn_api.payment(customer, (number, "125.01"))).status_code == 400
    assert (await vn_api.payment(customer, (draft, 10))).status_code == 400
    assert (await vn_api.payment(other, (number, 10))).status_code == 400
    assert (await vn_api.payment(customer, ("999999", 10))).status_code == 400
    over = await vn_api.payment(customer, (number, 50), paymentAmount=40)
    assert over.status_code == 400
    # Two unreleased payments may each fit the balance; the second release is refused.
    first = await vn_api.payment(customer, (number, 100))
    second = await vn_api.payment(customer, (number, 100))
    refs = [r.headers["Location"].rsplit("/", 1)[-1] for r in (first, second)]
    assert (await vn_api.post(f"/v1/customerpayment/{refs[0]}/action/release")).status_code == 200
    refused = await vn_api.post(f"/v1/customerpayment/{refs[1]}/action/release")
    assert refused.status_code == 400
    assert (await vn_api.get(f"/v1/customerinvoice/{number}")).json()["balance"] == 25


async def test_payments_filter_by_invoice_and_release_honours_if_match(vn_api: Api) -> None:
    customer = await vn_api.customer()
    one, two = await vn_api.invoice(customer), await vn_api.invoice(customer)
    await vn_api.payment(customer, (one, 10))
    created = await vn_api.payment(customer, (two, 10), hold=True)
    ref = created.headers["Location"].rsplit("/", 1)[-1]
    listed = (await vn_api.get("/v1/customerpayment", invoiceRefNbr=two)).json()
    assert [p["refNbr"] for p in listed] == [ref]
    assert listed[0]["paymentLines"][0]["refNbr"] == two
    on_hold = await vn_api.post(f"/v1/customerpayment/{ref}/action/release")
    assert on_hold.status_code == 400
    stale = await vn_api.post(
        f"/v1/customerpayment/{ref}/action/release", headers={"If-Match": '"AAAAAAAAAAE="'}
    )
    assert stale.status_code == 412


# --------------------------------------------------------------- limits and faults


async def test_hourly_fixed_window_with_headers_and_retry_after(
    vn_clock: Clock, vn_monotonic: Monotonic
) -> None:
    state = VismaNetState(
        clock=vn_clock, monotonic=vn_monotonic, rate_limit=3, rate_window_seconds=3600
    )
    company, token = state.create_company("Tiny AS")
    other, _ = state.create_company("Tiny Two AS", token=token)
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        api = Api(http, token, company.company_id)
        answers = [await api.get("/v1/customer") for _ in range(3)]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
        assert answers[0].headers["X-RateLimit-Policy"] == "4-fixed-window"
        assert answers[0].headers["X-RateLimit-Limit"] == "3"
        vn_monotonic.value += 600
        limited = await api.get("/v1/customer")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "3000"
        assert (await Api(http, token, other.company_id).get("/v1/customer")).status_code == 200
        admin = await http.get("/sandbox/stats", headers=api.headers)
        assert admin.status_code == 200
        vn_monotonic.value += 3000
        assert (await api.get("/v1/customer")).status_code == 200


async def test_faults_before_and_after_commit_and_the_request_log(
    vn_api: Api, vn_client: httpx.AsyncClient
) -> None:
    customer = await vn_api.customer()
    number = await vn_api.invoice(customer)
    await vn_client.post(
        "/sandbox/faults",
        json={"status": 503, "path_prefix": "/v1/customerinvoice", "method": "GET"},
        headers=vn_api.headers,
    )
    assert (await vn_api.get(f"/v1/customerinvoice/{number}")).status_code == 503
    assert (await vn_api.get(f"/v1/customerinvoice/{number}")).status_code == 200
    await vn_client.post(
        "/sandbox/faults",
        json={"status": 500, "path_prefix": "/v1/customerPayment", "after_commit": True},
        headers=vn_api.headers,
    )
    failed = await vn_api.payment(customer, (number, 5))
    assert failed.status_code == 500
    assert len((await vn_api.get("/v1/customerpayment")).json()) == 1  # it was stored
    log = (await vn_client.get("/sandbox/requests", headers=vn_api.headers)).json()["requests"]
    assert [r["status"] for r in log if r["fault"]] == [503, 500]
    stats = (await vn_client.get("/sandbox/stats", headers=vn_api.headers)).json()
    assert (stats["customers"], stats["invoices"], stats["payments"]) == (1, 1, 1)


async def test_admin_creates_companies_sharing_a_token(vn_client: httpx.AsyncClient) -> None:
    first = (await vn_client.post("/sandbox/companies", json={"name": "A AS"})).json()
    second = await vn_client.post(
        "/sandbox/companies", json={"name": "B AS", "token": first["token"], "company_id": "77"}
    )
    assert second.status_code == 201
    assert second.json()["token"] == first["token"]
    taken = await vn_client.post("/sandbox/companies", json={"name": "C AS", "company_id": "77"})
    assert taken.status_code == 409
    assert (await vn_client.get("/sandbox/healthz")).json() == {"status": "ok"}
