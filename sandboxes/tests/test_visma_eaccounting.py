"""The Visma eAccounting sandbox in-process: token endpoint, API shapes, limits, faults, admin."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from nordflow_sandboxes.visma_eaccounting import VismaEAccountingState, create_app
from nordflow_sandboxes.visma_eaccounting.testing import (
    FaultSpec,
    running_visma_eaccounting_sandbox,
)

if TYPE_CHECKING:
    from conftest import FakeClock, FakeMonotonic


@dataclass
class Eaccounting:
    """One company's client credentials and grant, with a thin API client for brevity."""

    http: httpx.AsyncClient
    facts: dict[str, Any]
    access_token: str = ""
    refresh_token: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.refresh_token = self.facts["refresh_token"]

    @property
    def company_id(self) -> str:
        return str(self.facts["company_id"])

    def article(self, vat: int = 25) -> str:
        return str(self.facts["articles"][str(vat)])

    async def redeem(self, refresh_token: str | None = None, **form: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token or self.refresh_token}
        auth = (self.facts["client_id"], self.facts["client_secret"])
        return await self.http.post("/connect/token", data={**data, **form}, auth=auth)

    async def login(self) -> None:
        answer = await self.redeem()
        assert answer.status_code == 200, answer.text
        self.access_token = answer.json()["access_token"]
        self.refresh_token = answer.json()["refresh_token"]
        self.headers = {"Authorization": f"Bearer {self.access_token}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers)

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers)

    async def customer(self, **fields: Any) -> dict[str, Any]:
        body = {
            "Name": f"Kund {secrets.token_hex(3)}",
            "InvoiceCity": "Stockholm",
            "InvoicePostalCode": "111 22",
            **fields,
        }
        answer = await self.post("/v2/customers", body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def invoice(
        self, customer_id: str, *rows: dict[str, Any], **fields: Any
    ) -> httpx.Response:
        body = {
            "CustomerId": customer_id,
            "Rows": list(rows) or [{"ArticleId": self.article(), "Quantity": 1, "UnitPrice": 100}],
            **fields,
        }
        return await self.post("/v2/customerinvoices", body)

    async def payment(self, invoice_id: str, amount: Any, **fields: Any) -> httpx.Response:
        body = {
            "CompanyBankAccountId": self.facts["bank_account_id"],
            "PaymentAmount": amount,
            "PaymentCurrency": "SEK",
            "PaymentDate": "2025-03-10",
            "PaymentType": 1,
            **fields,
        }
        return await self.post(f"/v2/customerinvoices/{invoice_id}/payments", body)


@pytest.fixture
def visma_state(clock: FakeClock, monotonic: FakeMonotonic) -> VismaEAccountingState:
    return VismaEAccountingState(clock=clock, monotonic=monotonic)


@pytest.fixture
async def visma_http(visma_state: VismaEAccountingState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(visma_state))
    async with httpx.AsyncClient(transport=transport, base_url="http://visma.test") as http:
        yield http


async def new_company(http: httpx.AsyncClient, **body: Any) -> Eaccounting:
    answer = await http.post("/sandbox/companies", json={"name": "Test AB", **body})
    assert answer.status_code == 201, answer.text
    company = Eaccounting(http, answer.json())
    await company.login()
    return company


@pytest.fixture
async def visma(visma_http: httpx.AsyncClient) -> Eaccounting:
    return await new_company(visma_http)


def error_of(answer: httpx.Response) -> tuple[int, int]:
    body = answer.json()
    assert set(body) >= {"ErrorCode", "DeveloperErrorMessage", "ErrorId"}
    return answer.status_code, body["ErrorCode"]


# --------------------------------------------------------------------- token endpoint


async def test_refresh_rotates_and_the_old_refresh_token_stops_working(
    visma: Eaccounting,
) -> None:
    first = visma.refresh_token
    answer = await visma.redeem()
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "ea:api ea:sales offline_access"
    assert body["refresh_token"] not in (first, visma.facts["refresh_token"])

    again = await visma.redeem(first)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # the newest one works, once
    assert (await visma.redeem(body["refresh_token"])).status_code == 200
    assert (await visma.redeem(body["refresh_token"])).status_code == 400


async def test_client_authentication_by_basic_header_or_form(visma: Eaccounting) -> None:
    facts = visma.facts
    basic = base64.b64encode(f"{facts['client_id']}:{facts['client_secret']}".encode()).decode()
    by_header = await visma.http.post(
        "/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": visma.refresh_token},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert by_header.status_code == 200
    by_form = await visma.http.post(
        "/connect/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": by_header.json()["refresh_token"],
            "client_id": facts["client_id"],
            "client_secret": facts["client_secret"],
        },
    )
    assert by_form.status_code == 200


async def test_token_endpoint_refusals(visma: Eaccounting) -> None:
    http, facts = visma.http, visma.facts
    wrong_secret = await http.post(
        "/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": visma.refresh_token},
        auth=(facts["client_id"], "not-the-secret"),
    )
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    code_grant = await visma.redeem(grant_type="authorization_code")
    assert code_grant.json()["error"] == "unsupported_grant_type"
    unknown = await visma.redeem("no-such-token")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")
    as_json = await http.post("/connect/token", json={"grant_type": "refresh_token"})
    assert as_json.json()["error"] == "invalid_request"
    # another client cannot redeem this company's refresh token
    other = await new_company(http)
    stolen = await other.redeem(visma.refresh_token)
    assert stolen.json()["error"] == "invalid_grant"
    assert (await visma.redeem()).status_code == 200


async def test_access_token_expires_with_the_documented_body(
    visma: Eaccounting, clock: FakeClock
) -> None:
    assert (await visma.get("/v2/customers")).status_code == 200
    clock.advance(seconds=3599)
    assert (await visma.get("/v2/customers")).status_code == 200
    clock.advance(seconds=1)
    expired = await visma.get("/v2/customers")
    assert error_of(expired) == (401, 4005)
    assert "expired" in expired.json()["DeveloperErrorMessage"]
    assert expired.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    await visma.login()
    assert (await visma.get("/v2/customers")).status_code == 200


async def test_access_token_lifetime_is_configurable(clock: FakeClock) -> None:
    state = VismaEAccountingState(access_token_lifetime_seconds=5, clock=clock)
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        company = await new_company(http)
        clock.advance(seconds=5)
        assert (await company.get("/v2/customers")).status_code == 401


async def test_missing_or_unknown_bearer_is_401(visma_http: httpx.AsyncClient) -> None:
    assert error_of(await visma_http.get("/v2/customers")) == (401, 4005)
    unknown = await visma_http.get("/v2/customers", headers={"Authorization": "Bearer nope"})
    assert error_of(unknown) == (401, 4005)


async def test_scopes_are_enforced(visma_http: httpx.AsyncClient) -> None:
    readonly = await new_company(visma_http, scope="ea:api ea:sales_readonly offline_access")
    assert (await readonly.get("/v2/customers")).status_code == 200
    refused = await readonly.post("/v2/customers", {"Name": "x"})
    assert error_of(refused) == (403, 4006)
    no_sales = await new_company(visma_http, scope="ea:api offline_access")
    assert error_of(await no_sales.get("/v2/customerinvoices")) == (403, 4006)
    assert (await no_sales.get("/v2/bankaccounts")).status_code == 200


# ------------------------------------------------------------------------- rate limit


async def test_601st_request_in_a_minute_gets_429_with_error_code_4010(
    visma: Eaccounting, monotonic: FakeMonotonic
) -> None:
    for _ in range(600):
        assert (await visma.get("/v2/customerinvoices")).status_code == 200
    limited = await visma.get("/v2/customerinvoices")
    assert error_of(limited) == (429, 4010)
    assert limited.json()["DeveloperErrorMessage"] == (
        "API calls quota exceeded! maximum admitted 600 per Minute. Try again in 60 seconds."
    )
    # per endpoint: another endpoint of the same client still answers
    assert (await visma.get("/v2/customers")).status_code == 200
    # refused requests do not count; the window slides
    monotonic.value += 60
    assert (await visma.get("/v2/customerinvoices")).status_code == 200


async def test_limit_is_per_client_and_endpoint_and_shared_by_its_companies(
    clock: FakeClock, monotonic: FakeMonotonic
) -> None:
    state = VismaEAccountingState(
        rate_limit=3, rate_window_seconds=10, clock=clock, monotonic=monotonic
    )
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        first = await new_company(http)
        second = await new_company(http, client_id=first.facts["client_id"])
        stranger = await new_company(http)
        customer = await first.customer()
        mine = f"/v2/customers/{customer['Id']}"
        elsewhere = f"/v2/customers/{first.facts['bank_account_id']}"
        assert (await first.get(mine)).status_code == 200
        assert (await second.get(elsewhere)).status_code == 404  # same client, same endpoint
        assert (await first.get("/v2/customers")).status_code == 200  # another endpoint
        assert (await first.get(mine)).status_code == 200
        # ids do not make endpoints: three calls to /v2/customers/{id} filled the window
        limited = await first.get(mine)
        assert error_of(limited) == (429, 4010)
        assert (
            "maximum admitted 3 per 10 seconds. Try again in 10 seconds."
            in (limited.json()["DeveloperErrorMessage"])
        )
        assert (await stranger.get(elsewhere)).status_code == 404  # another client
        monotonic.value += 10
        assert (await first.get(mine)).status_code == 200


async def test_admin_endpoints_are_never_rate_limited(
    visma_http: httpx.AsyncClient, clock: FakeClock, monotonic: FakeMonotonic
) -> None:
    state = VismaEAccountingState(rate_limit=1, clock=clock, monotonic=monotonic)
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        company = await new_company(http)
        for _ in range(5):
            stats = await http.get(f"/sandbox/companies/{company.company_id}/stats")
            assert stats.status_code == 200
            company.refresh_token = (await company.redeem()).json()["refresh_token"]


# ------------------------------------------------------------------------ paging/lists


async def test_paging_meta_and_server_time(visma: Eaccounting, clock: FakeClock) -> None:
    customer = await visma.customer()
    for _ in range(7):
        assert (await visma.invoice(customer["Id"])).status_code == 201
    clock.advance(seconds=0.75)
    page = await visma.get("/v2/customerinvoices", **{"$page": 2, "$pagesize": 3})
    meta = page.json()["Meta"]
    assert meta == {
        "CurrentPage": 2,
        "PageSize": 3,
        "TotalNumberOfPages": 3,
        "TotalNumberOfResults": 7,
        "ServerTimeUtc": "2025-03-10T11:15:30Z",  # whole seconds, rounded down
    }
    assert [i["InvoiceNumber"] for i in page.json()["Data"]] == [4, 5, 6]
    default = (await visma.get("/v2/customerinvoices")).json()["Meta"]
    assert (default["PageSize"], default["TotalNumberOfPages"]) == (50, 1)
    beyond = (await visma.get("/v2/customerinvoices", **{"$page": 9})).json()
    assert beyond["Data"] == []
    huge = (await visma.get("/v2/customerinvoices", **{"$pagesize": 5000})).json()["Meta"]
    assert huge["PageSize"] == 1000
    upper_case = (await visma.get("/v2/customerinvoices", **{"$PageSize": 2})).json()["Meta"]
    assert upper_case["PageSize"] == 2


async def test_empty_list_and_bad_query_options(visma: Eaccounting) -> None:
    empty = (await visma.get("/v2/customers")).json()
    assert empty["Data"] == []
    assert empty["Meta"]["TotalNumberOfPages"] == 0
    assert error_of(await visma.get("/v2/customers", **{"$page": 0})) == (400, 6000)
    unsupported = await visma.get("/v2/customerinvoices", **{"$filter": "IsCreditInvoice eq true"})
    assert error_of(unsupported) == (400, 6000)


async def test_modified_since_utc_is_inclusive_and_accepts_rfc3339(
    visma: Eaccounting, clock: FakeClock
) -> None:
    customer = await visma.customer()
    first = (await visma.invoice(customer["Id"])).json()
    assert first["ModifiedUtc"] == "2025-03-10T11:15:30Z"
    clock.advance(minutes=5)
    second = (await visma.invoice(customer["Id"])).json()

    async def numbers(since: str) -> list[int]:
        answer = await visma.get("/v2/customerinvoices", modifiedSinceUtc=since)
        assert answer.status_code == 200, answer.text
        return [i["InvoiceNumber"] for i in answer.json()["Data"]]

    assert await numbers("2025-03-10T11:15:30Z") == [1, 2]
    assert await numbers("2025-03-10T11:15:31Z") == [2]
    assert await numbers("2025-03-10T12:20:30+01:00") == [2]
    assert await numbers("2025-03-10T11:20:30") == [2]  # no offset: UTC
    assert await numbers("2025-03-10T11:20:31Z") == []
    assert second["InvoiceNumber"] == 2
    assert error_of(await visma.get("/v2/customerinvoices", modifiedSinceUtc="yesterday")) == (
        400,
        6001,
    )


async def test_a_payment_marks_the_invoice_modified(visma: Eaccounting, clock: FakeClock) -> None:
    customer = await visma.customer()
    invoice = (await visma.invoice(customer["Id"])).json()
    clock.advance(minutes=30)
    assert (await visma.payment(invoice["Id"], 25)).status_code == 201
    changed = await visma.get("/v2/customerinvoices", modifiedSinceUtc="2025-03-10T11:45:30Z")
    [item] = changed.json()["Data"]
    assert item["Id"] == invoice["Id"]
    assert item["ModifiedUtc"] == "2025-03-10T11:45:30Z"
    assert item["CreatedUtc"] == "2025-03-10T11:15:30Z"


# ---------------------------------------------------------------------------- customers


async def test_create_and_get_customer(visma: Eaccounting) -> None:
    created = await visma.customer(
        name="Lowercase Property Names AB",
        CorporateIdentityNumber="556677-8899",
        EmailAddress="faktura@example.se",
        ElectronicAddress="0007:5566778899",
        UnknownProperty="ignored",
    )
    assert created["CustomerNumber"] == "1"
    assert created["Name"] == "Lowercase Property Names AB"
    assert created["CurrencyCode"] == "SEK"
    assert created["IsActive"] is True
    assert created["IsPrivatePerson"] is False
    assert created["TermsOfPayment"]["NumberOfDays"] == 30
    assert "UnknownProperty" not in created
    fetched = await visma.get(f"/v2/customers/{created['Id']}")
    assert fetched.json() == created
    assert (await visma.customer())["CustomerNumber"] == "2"
    listed = (await visma.get("/v2/customers")).json()
    assert [c["CustomerNumber"] for c in listed["Data"]] == ["1", "2"]


async def test_customer_validation(visma: Eaccounting) -> None:
    missing = await visma.post("/v2/customers", {"Name": "Utan Ort AB"})
    assert error_of(missing) == (400, 2000)
    assert missing.json()["Errors"][0]["Field"] == "InvoiceCity"
    too_long = await visma.post(
        "/v2/customers", {"Name": "x" * 51, "InvoiceCity": "A", "InvoicePostalCode": "1"}
    )
    assert error_of(too_long) == (400, 2000)
    await visma.customer(CustomerNumber="K-1")
    duplicate = await visma.post(
        "/v2/customers",
        {"Name": "Dubblett", "InvoiceCity": "A", "InvoicePostalCode": "1", "CustomerNumber": "K-1"},
    )
    assert error_of(duplicate) == (400, 4000)
    not_json = await visma.http.post(
        "/v2/customers", content=b"{", headers={**visma.headers, "Content-Type": "application/json"}
    )
    assert error_of(not_json) == (400, 2000)
    assert error_of(await visma.get(f"/v2/customers/{'1' * 8}-1111-1111-1111-{'1' * 12}")) == (
        404,
        3000,
    )
    assert error_of(await visma.get("/v2/customers/not-a-guid")) == (400, 6001)


async def test_autoinvoice_recipients(visma: Eaccounting) -> None:
    paper = await visma.customer()
    answer = await visma.get(f"/v2/customers/{paper['Id']}/autoinvoicerecipients")
    assert answer.json()["Data"] == []
    peppol = await visma.customer(
        ElectronicAddress="0007:5566778899", CorporateIdentityNumber="556677-8899"
    )
    [recipient] = (await visma.get(f"/v2/customers/{peppol['Id']}/autoinvoicerecipients")).json()[
        "Data"
    ]
    assert recipient["ElectronicAddress"] == "0007:5566778899"
    assert recipient["CorporateIdentityNumber"] == "556677-8899"


# ----------------------------------------------------------------------------- invoices


async def test_invoice_totals_are_computed_from_rows_with_decimals(visma: Eaccounting) -> None:
    customer = await visma.customer(EmailAddress="a@b.se", ElectronicAddress="0007:1")
    answer = await visma.invoice(
        customer["Id"],
        {"ArticleId": visma.article(25), "Quantity": 3, "UnitPrice": 33.33},
        {
            "ArticleId": visma.article(12),
            "Quantity": 1.5,
            "UnitPrice": 10.01,
            "DiscountPercentage": 0.1,
        },
        {"ArticleId": visma.article(6), "Quantity": 1, "UnitPrice": 0.05},
        {"ArticleId": visma.article(25), "Quantity": 1, "UnitPrice": 100, "IsVatFree": True},
        {"Text": "Tack för beställningen"},
        YourReference="Anna",
        InvoiceDate="2025-03-01",
    )
    assert answer.status_code == 201, answer.text
    invoice = answer.json()
    rows = invoice["Rows"]
    # 3 x 33.33 = 99.99; 1.5 x 10.01 x 0.9 = 13.5135 -> 13.51; 0.05; 100 VAT-free; text row 0
    assert [r["AmountNoVat"] for r in rows] == [99.99, 13.51, 0.05, 100, 0]
    assert [r["VatRate"] for r in rows] == [0.25, 0.12, 0.06, 0, None]
    assert rows[4]["IsTextRow"] is True
    assert rows[0]["Text"] == "Tjänst 25 %"
    assert invoice["VatSpecification"] == [
        {"AmountInvoiceCurrency": 100, "VatAmountInvoiceCurrency": 0, "VatPercent": 0},
        {"AmountInvoiceCurrency": 0.05, "VatAmountInvoiceCurrency": 0, "VatPercent": 0.06},
        {"AmountInvoiceCurrency": 13.51, "VatAmountInvoiceCurrency": 1.62, "VatPercent": 0.12},
        {"AmountInvoiceCurrency": 99.99, "VatAmountInvoiceCurrency": 25, "VatPercent": 0.25},
    ]
    assert invoice["TotalVatAmount"] == 26.62
    assert invoice["TotalAmount"] == 240.17  # 213.55 + 26.62
    assert invoice["TotalAmountInvoiceCurrency"] == 240.17
    assert invoice["RemainingAmount"] == 240.17
    assert invoice["InvoiceNumber"] == 1
    assert invoice["PaymentReferenceNumber"] == "133"
    assert invoice["InvoiceDate"] == "2025-03-01T00:00:00"
    assert invoice["DueDate"] == "2025-03-31T00:00:00"  # the customer's 30 days
    assert invoice["PaymentStatus"] == 1  # unpaid, not yet due
    assert invoice["YourReference"] == "Anna"
    assert invoice["ElectronicAddress"] == "0007:1"
    assert invoice["CustomerEmail"] == "a@b.se"
    assert invoice["InvoiceCity"] == "Stockholm"  # from the customer card
    assert (await visma.get(f"/v2/customerinvoices/{invoice['Id']}")).json() == invoice


async def test_invoice_validation(visma: Eaccounting) -> None:
    customer = await visma.customer()
    no_rows = await visma.post("/v2/customerinvoices", {"CustomerId": customer["Id"], "Rows": []})
    assert error_of(no_rows) == (400, 2000)
    unknown_customer = await visma.invoice(str(customer["TermsOfPaymentId"]))
    assert error_of(unknown_customer) == (400, 3000)
    priced_text_row = await visma.invoice(customer["Id"], {"Text": "x", "UnitPrice": 5})
    assert error_of(priced_text_row) == (400, 2000)
    three_decimals = await visma.invoice(
        customer["Id"], {"ArticleId": visma.article(), "Quantity": 1, "UnitPrice": 1.005}
    )
    assert error_of(three_decimals) == (400, 2000)
    negative = await visma.invoice(
        customer["Id"], {"ArticleId": visma.article(), "Quantity": -1, "UnitPrice": 100}
    )
    assert error_of(negative) == (400, 4002)
    credit = await visma.invoice(
        customer["Id"],
        {"ArticleId": visma.article(), "Quantity": -1, "UnitPrice": 100},
        IsCreditInvoice=True,
    )
    assert credit.status_code == 201
    assert credit.json()["TotalAmount"] == -125
    assert error_of(await visma.get(f"/v2/customerinvoices/{customer['Id']}")) == (404, 3000)


async def test_payment_status_follows_due_date_and_payments(
    visma: Eaccounting, clock: FakeClock
) -> None:
    customer = await visma.customer()
    invoice = (await visma.invoice(customer["Id"], DueDate="2025-03-12")).json()
    assert invoice["PaymentStatus"] == 1
    clock.advance(days=3)
    await visma.login()
    overdue = await visma.get(f"/v2/customerinvoices/{invoice['Id']}")
    assert overdue.json()["PaymentStatus"] == 2
    await visma.payment(invoice["Id"], 125, PaymentDate="2025-03-13")
    paid = await visma.get(f"/v2/customerinvoices/{invoice['Id']}")
    assert paid.json()["PaymentStatus"] == 0


# ----------------------------------------------------------------------------- payments


async def test_partial_payments_reduce_the_remaining_amount(visma: Eaccounting) -> None:
    customer = await visma.customer()
    invoice = (await visma.invoice(customer["Id"])).json()
    paid = await visma.payment(invoice["Id"], 25.5, Reference="OCR 133")
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert body["PaymentAmount"] == 25.5
    assert body["BankTransactionId"]
    assert body["Reference"] == "OCR 133"
    after = (await visma.get(f"/v2/customerinvoices/{invoice['Id']}")).json()
    assert after["RemainingAmount"] == 99.5
    assert after["PaymentStatus"] == 1
    rest = await visma.payment(invoice["Id"], 99.5, PaymentType=2)
    assert rest.status_code == 201
    closed = (await visma.get(f"/v2/customerinvoices/{invoice['Id']}")).json()
    assert (closed["RemainingAmount"], closed["PaymentStatus"]) == (0, 0)
    assert closed["PaymentDate"] == "2025-03-10T00:00:00"
    again = await visma.payment(invoice["Id"], 1)
    assert error_of(again) == (400, 4002)
    payments = await visma.http.get(f"/sandbox/companies/{visma.company_id}/payments")
    assert [p["PaymentAmount"] for p in payments.json()["payments"]] == [25.5, 99.5]


async def test_overpayment_is_refused_and_changes_nothing(visma: Eaccounting) -> None:
    customer = await visma.customer()
    invoice = (await visma.invoice(customer["Id"])).json()
    over = await visma.payment(invoice["Id"], 125.01)
    assert error_of(over) == (400, 4002)
    assert "Overpayment" in over.json()["DeveloperErrorMessage"]
    fees_over = await visma.payment(
        invoice["Id"], 120, FactoringFeeAmount=6, FactoringFeeAccountNumber=6064
    )
    assert error_of(fees_over) == (400, 4002)
    incomplete = await visma.payment(invoice["Id"], 100, PaymentType=2)
    assert error_of(incomplete) == (400, 4002)
    unchanged = (await visma.get(f"/v2/customerinvoices/{invoice['Id']}")).json()
    assert unchanged["RemainingAmount"] == 125
    assert unchanged["ModifiedUtc"] == invoice["ModifiedUtc"]


async def test_factoring_fee_settles_with_the_payment(visma: Eaccounting) -> None:
    customer = await visma.customer()
    invoice = (await visma.invoice(customer["Id"])).json()
    paid = await visma.payment(
        invoice["Id"], 122.5, PaymentType=2, FactoringFeeAmount=2.5, FactoringFeeAccountNumber=6064
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["FactoringFeeAccountNumber"] == 6064
    closed = (await visma.get(f"/v2/customerinvoices/{invoice['Id']}")).json()
    assert closed["RemainingAmount"] == 0


async def test_payment_validation(visma: Eaccounting) -> None:
    customer = await visma.customer()
    invoice = (await visma.invoice(customer["Id"])).json()
    cases = [
        ({"PaymentDate": "2025-03-11"}, 4023),  # tomorrow in Stockholm
        ({"PaymentCurrency": "EUR"}, 2000),
        ({"CompanyBankAccountId": customer["Id"]}, 3000),
        ({"PaymentType": 7}, 2000),
        ({"FactoringFeeAmount": 1}, 2000),  # without its account number
        ({"DomesticPaymentAmount": 10}, 4039),
        ({"PaymentAmount": None}, 2000),
    ]
    for fields, code in cases:
        answer = await visma.payment(invoice["Id"], fields.pop("PaymentAmount", 10), **fields)
        assert error_of(answer) == (400, code), fields
    missing = await visma.payment(f"{'2' * 8}-2222-2222-2222-{'2' * 12}", 10)
    assert error_of(missing) == (404, 3000)
    assert (await visma.get(f"/v2/customerinvoices/{invoice['Id']}")).json()[
        "RemainingAmount"
    ] == 125


# ------------------------------------------------------------------------------- faults


async def inject(visma: Eaccounting, **fault: Any) -> None:
    answer = await visma.http.post(f"/sandbox/companies/{visma.company_id}/faults", json=fault)
    assert answer.status_code == 201, answer.text


async def test_fault_before_commit_changes_nothing(visma: Eaccounting) -> None:
    await inject(visma, status=503, path_prefix="/v2/customers", method="post")
    failed = await visma.post(
        "/v2/customers", {"Name": "X", "InvoiceCity": "A", "InvoicePostalCode": "1"}
    )
    assert error_of(failed) == (503, 5001)
    assert (await visma.get("/v2/customers")).json()["Data"] == []


async def test_fault_after_commit_stores_the_change(visma: Eaccounting) -> None:
    customer = await visma.customer()
    invoice = (await visma.invoice(customer["Id"])).json()
    await inject(visma, status=500, path_prefix="/v2/customerinvoices", after_commit=True)
    failed = await visma.payment(invoice["Id"], 25)
    assert error_of(failed) == (500, 5000)
    after = (await visma.get(f"/v2/customerinvoices/{invoice['Id']}")).json()
    assert after["RemainingAmount"] == 100
    log = (await visma.http.get(f"/sandbox/companies/{visma.company_id}/requests")).json()
    assert [(r["method"], r["status"], r["fault"]) for r in log["requests"][-2:]] == [
        ("POST", 500, True),
        ("GET", 200, False),
    ]


async def test_injected_429_has_the_documented_body(visma: Eaccounting) -> None:
    await inject(visma, status=429, retry_after_seconds=7)
    limited = await visma.get("/v2/customers")
    assert error_of(limited) == (429, 4010)
    assert "Try again in 7 seconds." in limited.json()["DeveloperErrorMessage"]


async def test_token_endpoint_fault_after_commit_loses_the_rotated_token(
    visma: Eaccounting,
) -> None:
    await inject(visma, status=502, path_prefix="/connect/token", after_commit=True)
    lost = await visma.redeem()
    assert (lost.status_code, lost.json()["error"]) == (502, "server_error")
    # the refresh token was rotated although the client never saw the new one
    assert (await visma.redeem()).json()["error"] == "invalid_grant"
    stats = (await visma.http.get(f"/sandbox/companies/{visma.company_id}/stats")).json()
    assert stats["refresh_tokens_redeemed"] == 2


async def test_token_endpoint_fault_before_commit_keeps_the_token(visma: Eaccounting) -> None:
    await inject(visma, status=503, path_prefix="/connect/token")
    refused = await visma.redeem()
    assert (refused.status_code, refused.json()["error"]) == (503, "temporarily_unavailable")
    assert (await visma.redeem()).status_code == 200


# -------------------------------------------------------------------------------- admin


async def test_admin_company_grants_and_clients(visma_http: httpx.AsyncClient) -> None:
    assert (await visma_http.get("/sandbox/healthz")).json() == {"status": "ok"}
    first = await new_company(visma_http, client_id="nordflow-test", client_secret="s3cret-value")
    assert first.facts["client_secret"] == "s3cret-value"
    assert set(first.facts["articles"]) == {"25", "12", "6", "0"}
    second = await new_company(visma_http, client_id="nordflow-test")
    assert second.facts["client_secret"] == "s3cret-value"
    clash = await visma_http.post(
        "/sandbox/companies",
        json={"name": "X", "client_id": "nordflow-test", "client_secret": "another-secret"},
    )
    assert clash.status_code == 409
    # a grant opens only its own company
    await first.customer()
    assert (await second.get("/v2/customers")).json()["Data"] == []
    expired = await visma_http.post(f"/sandbox/companies/{first.company_id}/expire-access-tokens")
    assert expired.json() == {"expired": 1}
    assert (await first.get("/v2/customers")).status_code == 401
    assert (await second.get("/v2/customers")).status_code == 200
    extra = await visma_http.post(f"/sandbox/companies/{first.company_id}/refresh-tokens")
    assert (await first.redeem(extra.json()["refresh_token"])).status_code == 200
    assert (await first.redeem()).status_code == 200  # the first grant is independent
    stats = (await visma_http.get(f"/sandbox/companies/{first.company_id}/stats")).json()
    assert (stats["customers"], stats["refresh_tokens_redeemed"]) == (1, 3)
    assert (await visma_http.get("/sandbox/companies/cmp_nope/stats")).status_code == 404


async def test_reference_data(visma: Eaccounting) -> None:
    articles = (await visma.get("/v2/articles")).json()["Data"]
    assert [a["Number"] for a in articles] == ["1", "2", "3", "4"]
    one = await visma.get(f"/v2/articles/{visma.article(12)}")
    assert one.json()["Name"] == "Livsmedel 12 %"
    [account] = (await visma.get("/v2/bankaccounts")).json()["Data"]
    assert account["Id"] == visma.facts["bank_account_id"]
    [terms] = (await visma.get("/v2/termsofpayment")).json()["Data"]
    assert terms["Id"] == visma.facts["terms_of_payment_id"]


def test_running_sandbox_over_a_real_socket() -> None:
    with running_visma_eaccounting_sandbox() as sandbox, sandbox.admin() as admin:
        assert admin.healthy()
        company = admin.create_company()
        customer = sandbox.seed_customer(company.company_id, Name="Socket AB")
        invoice = sandbox.seed_invoice(company.company_id, customer["Id"])
        assert invoice["TotalAmount"] == 125
        admin.inject_fault(company.company_id, FaultSpec(status=503, count=2))
        token = httpx.post(
            sandbox.token_url,
            data={"grant_type": "refresh_token", "refresh_token": company.refresh_token},
            auth=(company.client_id, company.client_secret),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{sandbox.api_url}/customerinvoices/{invoice['Id']}"
        assert [httpx.get(url, headers=headers).status_code for _ in range(3)] == [503, 503, 200]
        assert [r["status"] for r in admin.requests(company.company_id)] == [200, 503, 503, 200]
        admin.clear_faults(company.company_id)
        assert admin.stats(company.company_id)["invoices"] == 1
        assert admin.expire_access_tokens(company.company_id) == 1
        assert admin.payments(company.company_id) == []
        assert admin.new_refresh_token(company.company_id)
        direct = sandbox.create_company()
        assert direct.article(0) in direct.articles.values()
