"""FortnoxClient against the real Fortnox sandbox, served in-process on a loopback port."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
import traceback
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import pytest
from nordflow_connectors import resilience
from nordflow_connectors.fortnox import FortnoxClient, lastmodified_param
from nordflow_connectors.resilience import PartnerError
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import (
    AsyncFortnoxSandboxAdmin,
    FaultSpec,
    RunningFortnoxSandbox,
    SandboxCompany,
    running_fortnox_sandbox,
)
from pydantic import SecretStr

STOCKHOLM = ZoneInfo("Europe/Stockholm")


# ------------------------------------------------------------------------------ helpers


class Seeder:
    """Creates customers and invoices in one company straight over the Fortnox API."""

    def __init__(self, base_url: str, company: SandboxCompany) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, headers=company.headers, timeout=10.0)

    async def customer(self, **fields: Any) -> str:
        body = {"Name": f"Kund {secrets.token_hex(3)} AB", **fields}
        answer = await self.http.post("/3/customers", json={"Customer": body})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["Customer"]["CustomerNumber"])

    async def invoice(self, customer_number: str, price: int = 100) -> dict[str, Any]:
        body = {
            "CustomerNumber": customer_number,
            "InvoiceRows": [{"Description": "Konsult", "DeliveredQuantity": 1, "Price": price}],
        }
        answer = await self.http.post("/3/invoices", json={"Invoice": body})
        assert answer.status_code == 201, answer.text
        return dict(answer.json()["Invoice"])

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def seeder(
    bulk_sandbox: RunningFortnoxSandbox, bulk_company: SandboxCompany
) -> AsyncIterator[Seeder]:
    seeding = Seeder(bulk_sandbox.base_url, bulk_company)
    yield seeding
    await seeding.aclose()


def client_for(sandbox: RunningFortnoxSandbox, company: SandboxCompany, **kw: Any) -> FortnoxClient:
    # The client takes the server root, like https://api.fortnox.se, and appends /3/ itself.
    return FortnoxClient(sandbox.base_url, SecretStr(company.token), **kw)


@pytest.fixture
async def bulk_client(
    bulk_sandbox: RunningFortnoxSandbox, bulk_company: SandboxCompany
) -> AsyncIterator[FortnoxClient]:
    client = client_for(bulk_sandbox, bulk_company)
    yield client
    await client.aclose()


def query_of(record: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(record["query"]).items()}


def api_calls(records: list[dict[str, Any]], method: str, path: str) -> list[dict[str, Any]]:
    return [r for r in records if r["method"] == method and r["path"] == path]


def stockholm_today() -> dt.date:
    return dt.datetime.now(STOCKHOLM).date()


# ------------------------------------------------------------------------------ paging


async def test_invoices_modified_since_follows_every_page(
    seeder: Seeder,
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    customer = await seeder.customer()
    created = await asyncio.gather(*(seeder.invoice(customer) for _ in range(230)))
    expected = {str(i["DocumentNumber"]) for i in created}

    items = [item async for item in bulk_client.invoices_modified_since(since)]

    assert len(items) == 230
    assert {str(i["DocumentNumber"]) for i in items} == expected
    lists = api_calls(await bulk_admin.requests(bulk_company.token, 500), "GET", "/3/invoices")
    queries = [query_of(r) for r in lists]
    assert [q["page"] for q in queries] == ["1", "2", "3"]
    assert {q["limit"] for q in queries} == {"100"}
    assert {q["lastmodified"] for q in queries} == {lastmodified_param(since)}


async def test_an_exactly_full_last_page_ends_the_listing(
    seeder: Seeder,
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    customer = await seeder.customer()
    await asyncio.gather(*(seeder.invoice(customer) for _ in range(100)))

    items = [item async for item in bulk_client.invoices_modified_since(since)]

    assert len(items) == 100
    lists = api_calls(await bulk_admin.requests(bulk_company.token, 500), "GET", "/3/invoices")
    assert len(lists) == 1


async def test_an_empty_listing_is_one_request(
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    items = [i async for i in bulk_client.invoices_modified_since(dt.datetime.now(dt.UTC))]
    assert items == []
    assert len(await bulk_admin.requests(bulk_company.token)) == 1


async def test_invoice_and_customer_read_full_records(
    seeder: Seeder, bulk_client: FortnoxClient
) -> None:
    customer = await seeder.customer(EmailInvoice="ekonomi@kund.example")
    created = await seeder.invoice(customer, price=200)

    invoice = await bulk_client.invoice(str(created["DocumentNumber"]))
    card = await bulk_client.customer(customer)

    assert invoice["DocumentNumber"] == created["DocumentNumber"]
    assert invoice["InvoiceRows"][0]["Description"] == "Konsult"
    assert invoice["Total"] == 250
    assert card["CustomerNumber"] == customer
    assert card["EmailInvoice"] == "ekonomi@kund.example"


# ------------------------------------------------------------------------- lastmodified


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(dt.datetime(2025, 3, 10, 11, 0, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def clocked_sandbox(clock: Clock) -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox(FortnoxState(rate_limit=100_000, clock=clock)) as running:
        yield running


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # winter: CET = UTC+1, seconds dropped (never rounded up)
        (dt.datetime(2025, 3, 10, 11, 15, 59, 999_999, tzinfo=dt.UTC), "2025-03-10 12:15"),
        # summer: CEST = UTC+2
        (dt.datetime(2025, 7, 1, 10, 15, 30, tzinfo=dt.UTC), "2025-07-01 12:15"),
        # date change in Stockholm
        (dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC), "2026-01-01 00:30"),
        # the day before the spring change, and just after it (02:00 CET -> 03:00 CEST)
        (dt.datetime(2025, 3, 30, 0, 59, tzinfo=dt.UTC), "2025-03-30 01:59"),
        (dt.datetime(2025, 3, 30, 1, 0, tzinfo=dt.UTC), "2025-03-30 03:00"),
        # any zone is converted
        (
            dt.datetime(2025, 3, 10, 7, 15, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
            "2025-03-10 12:15",
        ),
    ],
)
def test_lastmodified_param_is_minute_grained_stockholm_wall_clock(
    moment: dt.datetime, expected: str
) -> None:
    assert lastmodified_param(moment) == expected


async def test_lastmodified_window_starts_at_the_minute_of_since(
    clocked_sandbox: RunningFortnoxSandbox, clock: Clock
) -> None:
    company = clocked_sandbox.create_company()
    seeding = Seeder(clocked_sandbox.base_url, company)
    client = client_for(clocked_sandbox, company)
    try:
        clock.now = dt.datetime(2025, 3, 10, 11, 14, 59, tzinfo=dt.UTC)  # 12:14:59 CET
        customer = await seeding.customer()
        before = await seeding.invoice(customer)
        clock.now = dt.datetime(2025, 3, 10, 11, 15, 1, tzinfo=dt.UTC)  # 12:15:01 CET
        early = await seeding.invoice(customer)
        clock.now = dt.datetime(2025, 3, 10, 11, 16, 30, tzinfo=dt.UTC)  # 12:16:30 CET
        late = await seeding.invoice(customer)

        async def numbers(since: dt.datetime) -> list[str]:
            return [str(i["DocumentNumber"]) async for i in client.invoices_modified_since(since)]

        # 12:15:45 CET: the whole minute 12:15 is included, 12:14:59 is not
        assert await numbers(dt.datetime(2025, 3, 10, 11, 15, 45, tzinfo=dt.UTC)) == [
            early["DocumentNumber"],
            late["DocumentNumber"],
        ]
        assert await numbers(dt.datetime(2025, 3, 10, 11, 16, 59, tzinfo=dt.UTC)) == [
            late["DocumentNumber"]
        ]
        assert await numbers(dt.datetime(2025, 3, 10, 11, 17, tzinfo=dt.UTC)) == []
        # the same instant in another zone gives the same window
        cet_plus_3 = dt.timezone(dt.timedelta(hours=3))
        assert await numbers(dt.datetime(2025, 3, 10, 14, 14, 59, tzinfo=cet_plus_3)) == [
            before["DocumentNumber"],
            early["DocumentNumber"],
            late["DocumentNumber"],
        ]

        # a change moves a document into a later window
        clock.now = dt.datetime(2025, 3, 10, 11, 20, 10, tzinfo=dt.UTC)
        answer = await seeding.http.put(
            f"/3/invoices/{before['DocumentNumber']}", json={"Invoice": {"Remarks": "ändrad"}}
        )
        assert answer.status_code == 200, answer.text
        assert await numbers(dt.datetime(2025, 3, 10, 11, 20, tzinfo=dt.UTC)) == [
            before["DocumentNumber"]
        ]
    finally:
        await client.aclose()
        await seeding.aclose()


# ------------------------------------------------------------------------- rate limits


async def test_client_limiter_keeps_a_burst_of_30_calls_free_of_429(
    sandbox: RunningFortnoxSandbox,
    admin: AsyncFortnoxSandboxAdmin,
    company: SandboxCompany,
) -> None:
    """With Fortnox's own numbers (25 per 5 s) on both sides, the client waits, never the server."""
    client = client_for(sandbox, company)
    since = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    try:
        for _ in range(30):
            assert [i async for i in client.invoices_modified_since(since)] == []
    finally:
        await client.aclose()
    elapsed = time.monotonic() - started

    records = await admin.requests(company.token)
    assert [r["status"] for r in records] == [200] * 30
    assert elapsed >= 5.0  # the client held the 26th call back for the window


class SlowFirstSends(httpx.AsyncBaseTransport):
    """Delays the first ``count`` requests before they leave (e.g. TLS handshakes on new
    connections at the start of a burst), so they reach the server later than the client
    limiter stamped them."""

    def __init__(self, count: int, delay: float) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.remaining = count
        self.delay = delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.remaining > 0:
            self.remaining -= 1
            await asyncio.sleep(self.delay)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def short_window_sandbox() -> Iterator[RunningFortnoxSandbox]:
    """25 requests per 1 s: the same limit, a shorter window to keep the test fast."""
    with running_fortnox_sandbox(FortnoxState(rate_window_seconds=1.0)) as running:
        yield running


async def test_concurrent_burst_with_slow_first_sends_stays_free_of_429(
    short_window_sandbox: RunningFortnoxSandbox,
) -> None:
    company = short_window_sandbox.create_company()
    client = client_for(
        short_window_sandbox,
        company,
        rate_window=1.0,
        transport=SlowFirstSends(count=25, delay=0.1),
    )
    since = dt.datetime.now(dt.UTC)

    async def one() -> list[dict[str, Any]]:
        return [i async for i in client.invoices_modified_since(since)]

    try:
        await asyncio.gather(*(one() for _ in range(30)))
    finally:
        await client.aclose()
    async with AsyncFortnoxSandboxAdmin(short_window_sandbox.base_url) as admin:
        records = await admin.requests(company.token)
    assert [r["status"] for r in records].count(429) == 0


async def test_a_server_429_is_retried_after_retry_after(
    seeder: Seeder,
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    number = str((await seeder.invoice(await seeder.customer()))["DocumentNumber"])
    await bulk_admin.inject_fault(
        bulk_company.token, FaultSpec(status=429, path_prefix="/3/invoices/", retry_after_seconds=1)
    )
    started = time.monotonic()
    invoice = await bulk_client.invoice(number)
    elapsed = time.monotonic() - started

    assert invoice["DocumentNumber"] == number
    # the back-off alone would be at most 0.5 s; Retry-After said 1 s
    assert elapsed >= 1.0
    reads = api_calls(await bulk_admin.requests(bulk_company.token), "GET", f"/3/invoices/{number}")
    assert [r["status"] for r in reads] == [429, 200]


# ---------------------------------------------------------------------- 5xx and timeouts


@pytest.mark.parametrize("status", [503, 500])
async def test_5xx_on_a_read_is_retried(
    status: int,
    seeder: Seeder,
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    customer = await seeder.customer()
    await bulk_admin.inject_fault(
        bulk_company.token,
        FaultSpec(status=status, count=2 if status == 503 else 1, path_prefix="/3/customers/"),
    )
    card = await bulk_client.customer(customer)

    assert card["CustomerNumber"] == customer
    reads = api_calls(
        await bulk_admin.requests(bulk_company.token), "GET", f"/3/customers/{customer}"
    )
    expected = [status, status, 200] if status == 503 else [status, 200]
    assert [r["status"] for r in reads] == expected


async def test_5xx_on_a_listing_page_is_retried_without_losing_items(
    seeder: Seeder,
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    customer = await seeder.customer()
    await asyncio.gather(*(seeder.invoice(customer) for _ in range(150)))
    # read page 1, then make the next request (page 2) fail once
    listing = bulk_client.invoices_modified_since(since)
    items = [await anext(listing)]
    await bulk_admin.inject_fault(bulk_company.token, FaultSpec(status=503, path_prefix="/3/"))
    items += [item async for item in listing]

    assert len({str(i["DocumentNumber"]) for i in items}) == 150
    lists = api_calls(await bulk_admin.requests(bulk_company.token, 500), "GET", "/3/invoices")
    assert [(query_of(r)["page"], r["status"]) for r in lists] == [
        ("1", 200),
        ("2", 503),
        ("2", 200),
    ]


async def test_a_timeout_on_a_read_is_retried(
    bulk_sandbox: RunningFortnoxSandbox,
    seeder: Seeder,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    customer = await seeder.customer()
    await bulk_admin.inject_fault(
        bulk_company.token,
        FaultSpec(status=None, delay_seconds=1.0, path_prefix="/3/customers/"),
    )
    client = client_for(bulk_sandbox, bulk_company, timeout=0.3)
    started = time.monotonic()
    try:
        card = await client.customer(customer)
    finally:
        await client.aclose()
    elapsed = time.monotonic() - started

    # only a second attempt can answer in time: the first was held for 1 s
    assert card["CustomerNumber"] == customer
    assert elapsed >= 0.3
    assert (await bulk_admin.stats(bulk_company.token))["faults_pending"] == 0


# ----------------------------------------------------------------------------- payments


async def test_create_payment_is_not_retried_after_a_500_and_the_look_up_finds_it(
    seeder: Seeder,
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    number = str((await seeder.invoice(await seeder.customer()))["DocumentNumber"])
    await bulk_admin.inject_fault(
        bulk_company.token,
        FaultSpec(status=500, path_prefix="/3/invoicepayments", method="POST", after_commit=True),
    )
    with pytest.raises(PartnerError) as raised:
        await bulk_client.create_payment(
            document_number=number,
            amount=Decimal("125.00"),
            payment_date=stockholm_today(),
            mode_of_payment="FACT",
            account=1512,
        )
    assert raised.value.status == 500
    assert not raised.value.permanent

    posts = api_calls(await bulk_admin.requests(bulk_company.token), "POST", "/3/invoicepayments")
    assert len(posts) == 1
    assert (await bulk_admin.stats(bulk_company.token))["payments"] == 1

    payments = await bulk_client.payments_for_invoice(number)
    assert len(payments) == 1
    payment = payments[0]
    assert str(payment["InvoiceNumber"]) == number
    assert Decimal(str(payment["Amount"])) == Decimal("125.00")
    assert payment["ModeOfPayment"] == "FACT"
    assert int(payment["ModeOfPaymentAccount"]) == 1512
    assert payment["PaymentDate"] == stockholm_today().isoformat()


async def test_create_payment_raises_a_timeout_without_sending_again(
    bulk_sandbox: RunningFortnoxSandbox,
    seeder: Seeder,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    number = str((await seeder.invoice(await seeder.customer()))["DocumentNumber"])
    await bulk_admin.inject_fault(
        bulk_company.token,
        FaultSpec(
            status=None,
            delay_seconds=0.6,
            path_prefix="/3/invoicepayments",
            method="POST",
            after_commit=True,
        ),
    )
    client = client_for(bulk_sandbox, bulk_company, timeout=0.2)
    try:
        with pytest.raises(httpx.TimeoutException):
            await client.create_payment(
                document_number=number,
                amount=Decimal("50"),
                payment_date=stockholm_today(),
                mode_of_payment="BG",
                account=1930,
            )
    finally:
        await client.aclose()
    await asyncio.sleep(0.6)  # let the held answer finish so the request is logged
    posts = api_calls(await bulk_admin.requests(bulk_company.token), "POST", "/3/invoicepayments")
    assert len(posts) == 1
    assert (await bulk_admin.stats(bulk_company.token))["payments"] == 1


async def test_create_payment_is_retried_on_a_429(
    seeder: Seeder,
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    number = str((await seeder.invoice(await seeder.customer()))["DocumentNumber"])
    await bulk_admin.inject_fault(
        bulk_company.token,
        FaultSpec(
            status=429, path_prefix="/3/invoicepayments", method="POST", retry_after_seconds=0
        ),
    )
    created = await bulk_client.create_payment(
        document_number=number,
        amount=Decimal("125"),
        payment_date=stockholm_today(),
        mode_of_payment="FACT",
        account=1512,
    )
    posts = api_calls(await bulk_admin.requests(bulk_company.token), "POST", "/3/invoicepayments")
    assert [r["status"] for r in posts] == [429, 201]
    assert (await bulk_admin.stats(bulk_company.token))["payments"] == 1
    assert str(created["InvoiceNumber"]) == number


async def test_payments_for_invoice_lists_only_that_invoice_in_full(
    seeder: Seeder, bulk_client: FortnoxClient
) -> None:
    customer = await seeder.customer()
    numbers = [str((await seeder.invoice(customer))["DocumentNumber"]) for _ in range(11)]
    first, eleventh = numbers[0], numbers[10]  # "1" is contained in "11"
    today = stockholm_today()
    for amount, mode, account in ((Decimal("25"), "BG", 1930), (Decimal("100"), "FACT", 1512)):
        await bulk_client.create_payment(
            document_number=first,
            amount=amount,
            payment_date=today,
            mode_of_payment=mode,
            account=account,
        )
    await bulk_client.create_payment(
        document_number=eleventh,
        amount=Decimal("10"),
        payment_date=today,
        mode_of_payment="BG",
        account=1930,
    )

    payments = await bulk_client.payments_for_invoice(first)

    assert sorted(
        (Decimal(str(p["Amount"])), p["ModeOfPayment"], int(p["ModeOfPaymentAccount"]))
        for p in payments
    ) == [(Decimal("25"), "BG", 1930), (Decimal("100"), "FACT", 1512)]
    assert {str(p["InvoiceNumber"]) for p in payments} == {first}
    assert await bulk_client.payments_for_invoice(numbers[5]) == []


# ------------------------------------------------------------------------------- errors


async def test_a_400_is_a_permanent_partner_error_and_not_retried(
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    with pytest.raises(PartnerError) as raised:
        await bulk_client.create_payment(
            document_number="987654",
            amount=Decimal("1"),
            payment_date=stockholm_today(),
            mode_of_payment="BG",
            account=1930,
        )
    assert raised.value.status == 400
    assert raised.value.permanent
    assert "987654" in raised.value.message  # the partner's own message is kept
    assert len(await bulk_admin.requests(bulk_company.token)) == 1


async def test_a_404_is_permanent(
    bulk_client: FortnoxClient,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    bulk_company: SandboxCompany,
) -> None:
    with pytest.raises(PartnerError) as raised:
        await bulk_client.invoice("424242")
    assert raised.value.status == 404
    assert raised.value.permanent
    assert len(await bulk_admin.requests(bulk_company.token)) == 1


async def test_an_unknown_token_is_a_permanent_401(bulk_sandbox: RunningFortnoxSandbox) -> None:
    client = FortnoxClient(bulk_sandbox.base_url, SecretStr("not-a-token-" + secrets.token_hex(8)))
    try:
        with pytest.raises(PartnerError) as raised:
            await client.customer("1")
    finally:
        await client.aclose()
    assert raised.value.status == 401
    assert raised.value.permanent


def describe(error: BaseException) -> str:
    """Everything an operator could see of an exception: message, repr and traceback."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


async def test_the_token_never_appears_in_an_exception(
    bulk_sandbox: RunningFortnoxSandbox,
    bulk_admin: AsyncFortnoxSandboxAdmin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "tok-" + secrets.token_hex(16)
    company = await bulk_admin.create_company(token=token)
    errors: list[BaseException] = []

    async def capture(client: FortnoxClient, call: Any) -> None:
        try:
            await call(client)
        except Exception as exc:
            errors.append(exc)

    client = client_for(bulk_sandbox, company, timeout=0.2)
    try:
        await capture(client, lambda c: c.invoice("404"))  # 404
        await capture(  # 400
            client,
            lambda c: c.create_payment(
                document_number="9",
                amount=Decimal(1),
                payment_date=stockholm_today(),
                mode_of_payment="BG",
                account=1930,
            ),
        )
        await bulk_admin.inject_fault(token, FaultSpec(status=500, method="POST"))
        await capture(  # 500 on a create
            client,
            lambda c: c.create_payment(
                document_number="9",
                amount=Decimal(1),
                payment_date=stockholm_today(),
                mode_of_payment="BG",
                account=1930,
            ),
        )
        await bulk_admin.inject_fault(
            token, FaultSpec(status=None, delay_seconds=0.5, method="POST")
        )
        await capture(  # timeout on a create
            client,
            lambda c: c.create_payment(
                document_number="9",
                amount=Decimal(1),
                payment_date=stockholm_today(),
                mode_of_payment="BG",
                account=1930,
            ),
        )
    finally:
        await client.aclose()

    # a server that is not there: a transport error after every retry (back-off made instant)
    async def instant(_delay: float) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(
        resilience, "asyncio", types.SimpleNamespace(sleep=instant, Lock=asyncio.Lock)
    )
    unreachable = FortnoxClient("http://127.0.0.1:9", SecretStr(token), timeout=0.5)
    try:
        await capture(unreachable, lambda c: c.customer("1"))
    finally:
        await unreachable.aclose()

    assert [type(e) for e in errors][:3] == [PartnerError, PartnerError, PartnerError]
    assert isinstance(errors[3], httpx.TimeoutException)
    assert isinstance(errors[4], httpx.TransportError)
    for error in errors:
        assert token not in describe(error)


# ------------------------------------------------------------------------------ writes


async def test_registers_are_found_created_updated_and_acted_on(bulk_client: FortnoxClient) -> None:
    assert await bulk_client.find("customers", "K-404", "Customer") is None
    customer = await bulk_client.create(
        "customers", "Customer", {"CustomerNumber": "K-1", "Name": "Gäst"}
    )
    assert customer["CustomerNumber"] == "K-1"
    renamed = await bulk_client.update("customers", "K-1", "Customer", {"Email": "g@x.se"})
    assert renamed["Email"] == "g@x.se"
    row = {"Description": "Rum", "DeliveredQuantity": 1, "Price": 1000, "VAT": 12}
    invoice = await bulk_client.create(
        "invoices",
        "Invoice",
        {"CustomerNumber": "K-1", "ExternalInvoiceReference1": "inv_abc", "InvoiceRows": [row]},
    )
    found = await bulk_client.search(
        "invoices", "Invoices", {"externalinvoicereference1": "inv_abc"}
    )
    assert [i["DocumentNumber"] for i in found] == [invoice["DocumentNumber"]]
    booked = await bulk_client.action("invoices", invoice["DocumentNumber"], "bookkeep", "Invoice")
    assert booked["Booked"] is True
    with pytest.raises(PartnerError) as refused:
        await bulk_client.action("invoices", invoice["DocumentNumber"], "cancel", "Invoice")
    assert refused.value.permanent
