"""VismaNetClient against the Visma.net sandbox, served in-process on a loopback port."""

from __future__ import annotations

import asyncio
import datetime as dt
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
from nordflow_connectors.resilience import PartnerError
from nordflow_connectors.visma_net import (
    ConcurrentModification,
    PaymentApplication,
    RateLimitedError,
    VismaNetClient,
    etag_of,
    last_modified_param,
    payment_released,
)
from nordflow_sandboxes.visma_net import VismaNetState
from nordflow_sandboxes.visma_net.testing import (
    AsyncVismaNetSandboxAdmin,
    FaultSpec,
    LineSpec,
    RunningVismaNetSandbox,
    SandboxCompany,
    running_visma_net_sandbox,
)
from pydantic import SecretStr

TODAY = dt.date(2025, 3, 10)


@dataclass
class Clock:
    """The sandbox's wall clock, moved by the tests (read from the server thread)."""

    current: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.current


@pytest.fixture(scope="module")
def vn_clock() -> Clock:
    return Clock(dt.datetime(2025, 3, 10, 9, 0, 0, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def vn_sandbox(vn_clock: Clock) -> Iterator[RunningVismaNetSandbox]:
    """A sandbox whose hourly limit never bites and whose pages hold at most 40 items."""
    state = VismaNetState(clock=vn_clock, rate_limit=100_000, max_page_size=40)
    with running_visma_net_sandbox(state) as running:
        yield running


@pytest.fixture
def company(vn_sandbox: RunningVismaNetSandbox) -> SandboxCompany:
    return vn_sandbox.create_company()


@pytest.fixture
async def admin(vn_sandbox: RunningVismaNetSandbox) -> AsyncIterator[AsyncVismaNetSandboxAdmin]:
    async with AsyncVismaNetSandboxAdmin(vn_sandbox.base_url) as client:
        yield client


@pytest.fixture
async def client(
    vn_sandbox: RunningVismaNetSandbox, company: SandboxCompany
) -> AsyncIterator[VismaNetClient]:
    # The client takes the server root, like https://api.finance.visma.net, and adds /v1/.
    async with VismaNetClient(
        vn_sandbox.base_url, SecretStr(company.token), company.company_id, page_size=10
    ) as visma:
        yield visma


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff sleeps are recorded instead of slept, so retry tests stay fast."""
    recorded: list[float] = []

    async def instant(delay: float) -> None:
        recorded.append(delay)
        await asyncio.sleep(0)

    monkeypatch.setattr(
        resilience, "asyncio", types.SimpleNamespace(sleep=instant, Lock=asyncio.Lock)
    )
    return recorded


def query_of(record: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(record["query"]).items()}


def calls(records: list[dict[str, Any]], method: str, path: str) -> list[dict[str, Any]]:
    return [r for r in records if r["method"] == method and r["path"] == path]


async def invoices(
    admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany, count: int, **fields: Any
) -> tuple[str, list[str]]:
    customer = await admin.seed_customer(company)
    numbers = [await admin.seed_invoice(company, customer, **fields) for _ in range(count)]
    return customer, numbers


# ------------------------------------------------------------------------------ paging


async def test_invoices_modified_since_follows_every_page(
    client: VismaNetClient, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    _customer, numbers = await invoices(admin, company, 25)
    since = dt.datetime(2025, 3, 10, 8, 0, tzinfo=dt.UTC)

    items = [item async for item in client.invoices_modified_since(since)]

    assert [i["referenceNumber"] for i in items] == numbers
    assert all("metadata" not in i for i in items)
    assert not any(isinstance(i["amount"], float) for i in items)  # int or Decimal, exact
    lists = calls(await admin.requests(company, 200), "GET", "/v1/customerinvoice")
    queries = [query_of(r) for r in lists]
    assert [q["pageNumber"] for q in queries] == ["1", "2", "3"]
    assert {q["pageSize"] for q in queries} == {"10"}
    assert {q["lastModifiedDateTimeCondition"] for q in queries} == {">="}
    assert queries[0]["lastModifiedDateTime"] == "2025-03-10 08:00:00.000"


async def test_an_exactly_full_last_page_ends_the_listing(
    client: VismaNetClient, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    await invoices(admin, company, 20)
    since = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    assert len([i async for i in client.invoices_modified_since(since)]) == 20
    lists = calls(await admin.requests(company, 200), "GET", "/v1/customerinvoice")
    assert len(lists) == 2  # totalCount in the metadata says there is no third page


async def test_a_page_size_above_the_servers_maximum_still_reads_everything(
    vn_sandbox: RunningVismaNetSandbox, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    _customer, numbers = await invoices(admin, company, 45)
    async with VismaNetClient(
        vn_sandbox.base_url, SecretStr(company.token), company.company_id, page_size=100
    ) as visma:
        since = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
        items = [i["referenceNumber"] async for i in visma.invoices_modified_since(since)]
    assert items == numbers  # the server cut pages to 40; metadata.maxPageSize says so


async def test_an_empty_listing_is_one_request(
    client: VismaNetClient, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    since = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    assert [i async for i in client.invoices_modified_since(since)] == []
    assert len(calls(await admin.requests(company), "GET", "/v1/customerinvoice")) == 1


async def test_last_modified_condition_inclusive_and_exclusive(
    client: VismaNetClient,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    vn_clock: Clock,
) -> None:
    customer = await admin.seed_customer(company)
    vn_clock.current = dt.datetime(2025, 3, 10, 10, 0, 0, 250_000, tzinfo=dt.UTC)
    early = await admin.seed_invoice(company, customer)
    vn_clock.current = dt.datetime(2025, 3, 10, 10, 0, 1, 500_000, tzinfo=dt.UTC)
    late = await admin.seed_invoice(company, customer)
    watermark = vn_clock.current

    inclusive = [i["referenceNumber"] async for i in client.invoices_modified_since(watermark)]
    exclusive = [
        i["referenceNumber"]
        async for i in client.invoices_modified_since(watermark, inclusive=False)
    ]
    overlap = watermark - dt.timedelta(seconds=2)
    both = [i["referenceNumber"] async for i in client.invoices_modified_since(overlap)]

    assert inclusive == [late]
    assert exclusive == []
    assert both == [early, late]


def test_last_modified_param_is_milliseconds_in_the_api_time_zone() -> None:
    moment = dt.datetime(2025, 3, 10, 11, 15, 30, 123_999, tzinfo=dt.UTC)
    assert last_modified_param(moment, dt.UTC) == "2025-03-10 11:15:30.123"
    assert last_modified_param(moment, ZoneInfo("Europe/Oslo")) == "2025-03-10 12:15:30.123"
    with pytest.raises(ValueError, match="aware"):
        last_modified_param(dt.datetime(2025, 3, 10), dt.UTC)


# ------------------------------------------------------------------------------- reads


async def test_invoice_and_customer_read_full_records(
    client: VismaNetClient, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    customer = await admin.seed_customer(company, "Fjord AS", corporateId="923609016")
    lines = (LineSpec("Hours", Decimal(2), Decimal("99.95")),)
    number = await admin.seed_invoice(company, customer, lines)

    invoice = await client.invoice(number)
    card = await client.customer(customer)

    assert invoice["referenceNumber"] == number
    assert invoice["customer"] == {"number": customer, "name": "Fjord AS"}
    assert (invoice["amount"], invoice["vatTotal"]) == (Decimal("249.88"), Decimal("49.98"))
    assert invoice["invoiceLines"][0]["unitPrice"] == Decimal("99.95")
    assert etag_of(invoice)
    assert card["corporateId"] == "923609016"
    with pytest.raises(PartnerError) as missing:
        await client.invoice("999999")
    assert missing.value.status == 404
    assert missing.value.permanent


# ------------------------------------------------------------------- limits and retries


async def test_a_429_is_retried_after_retry_after(
    client: VismaNetClient,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    sleeps: list[float],
) -> None:
    _customer, (number,) = await invoices(admin, company, 1)
    await admin.inject_fault(company, FaultSpec(status=429, count=2, retry_after_seconds=7))

    invoice = await client.invoice(number)

    assert invoice["referenceNumber"] == number
    assert sleeps[:2] == [7.0, 7.0]  # Retry-After honoured, never less
    reads = calls(await admin.requests(company), "GET", f"/v1/customerinvoice/{number}")
    assert [r["status"] for r in reads] == [429, 429, 200]


async def test_the_real_hourly_limit_is_waited_out_when_the_window_is_short() -> None:
    state = VismaNetState(rate_limit=3, rate_window_seconds=1.0)
    with running_visma_net_sandbox(state) as sandbox:
        tiny = sandbox.create_company()
        async with AsyncVismaNetSandboxAdmin(sandbox.base_url) as seeding:
            customer = await seeding.seed_customer(tiny)
        async with VismaNetClient(
            sandbox.base_url, SecretStr(tiny.token), tiny.company_id
        ) as visma:
            started = time.monotonic()
            cards = [await visma.customer(customer) for _ in range(4)]
            elapsed = time.monotonic() - started
    assert len(cards) == 4
    assert elapsed >= 0.9  # one 429 with Retry-After: 1, honoured in real time


async def test_a_long_retry_after_is_raised_at_once_for_the_caller_to_reschedule(
    sleeps: list[float],
) -> None:
    state = VismaNetState(rate_limit=1, rate_window_seconds=3600.0)
    with running_visma_net_sandbox(state) as sandbox:
        tiny = sandbox.create_company()
        async with VismaNetClient(
            sandbox.base_url, SecretStr(tiny.token), tiny.company_id
        ) as visma:
            with pytest.raises(PartnerError):
                await visma.customer("nobody")  # the one allowed call: 404
            with pytest.raises(RateLimitedError) as limited:
                await visma.customer("nobody")
    assert limited.value.status == 429
    assert limited.value.retry_after is not None
    assert limited.value.retry_after > 3500
    assert sleeps == []


async def test_5xx_on_a_read_is_retried(
    client: VismaNetClient,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    sleeps: list[float],
) -> None:
    customer = await admin.seed_customer(company)
    await admin.inject_fault(company, FaultSpec(status=503, count=2, method="GET"))
    assert (await client.customer(customer))["number"] == customer
    assert len(sleeps) == 2


async def test_5xx_on_a_listing_page_is_retried_without_losing_items(
    client: VismaNetClient,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    sleeps: list[float],
) -> None:
    _customer, numbers = await invoices(admin, company, 15)
    since = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    listing = client.invoices_modified_since(since)
    first = [await anext(listing) for _ in range(10)]
    await admin.inject_fault(
        company, FaultSpec(status=502, path_prefix="/v1/customerinvoice", method="GET")
    )
    rest = [item async for item in listing]
    assert [i["referenceNumber"] for i in first + rest] == numbers


async def test_client_side_limiter_is_optional_and_uses_slots(
    vn_sandbox: RunningVismaNetSandbox, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    customer = await admin.seed_customer(company)
    async with VismaNetClient(
        vn_sandbox.base_url,
        SecretStr(company.token),
        company.company_id,
        rate_limit=2,
        rate_window=0.3,
    ) as visma:
        started = time.monotonic()
        await asyncio.gather(*(visma.customer(customer) for _ in range(3)))
        assert time.monotonic() - started >= 0.3  # the third waited for a free slot


# ------------------------------------------------------------------------------ payments


async def test_payment_create_then_release_reduces_the_balance(
    client: VismaNetClient, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    customer, (number,) = await invoices(admin, company, 1)  # 125.00

    ref = await client.create_payment(
        customer_number=customer,
        applications=[PaymentApplication(number, Decimal("100.50"))],
        payment_date=TODAY,
        payment_ref="NF-pay-1",
    )
    assert (await client.invoice(number))["balance"] == Decimal(125)
    created = await client.payment(ref)
    assert not payment_released(created)
    assert created["paymentAmount"] == Decimal("100.5")

    result = await client.release_payment(ref)

    assert result["actionResult"] == "Done"
    assert (await client.invoice(number))["balance"] == Decimal("24.50")
    assert payment_released(await client.payment(ref))
    posted = calls(await admin.requests(company), "POST", "/v1/customerpayment")
    assert len(posted) == 1


async def test_create_payment_is_not_retried_after_a_500_and_the_look_up_finds_it(
    client: VismaNetClient,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    sleeps: list[float],
) -> None:
    customer, (number,) = await invoices(admin, company, 1)
    await admin.inject_fault(
        company, FaultSpec(status=500, path_prefix="/v1/customerpayment", after_commit=True)
    )
    with pytest.raises(PartnerError) as failed:
        await client.create_payment(
            customer_number=customer,
            applications=[PaymentApplication(number, Decimal(125))],
            payment_date=TODAY,
            payment_ref="NF-uncertain",
        )
    assert failed.value.status == 500
    assert sleeps == []
    found = await client.payments_for_invoice(number)
    assert [p["paymentRef"] for p in found] == ["NF-uncertain"]
    assert len(calls(await admin.requests(company), "POST", "/v1/customerpayment")) == 1


async def test_create_payment_is_retried_on_a_429(
    client: VismaNetClient,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    sleeps: list[float],
) -> None:
    customer, (number,) = await invoices(admin, company, 1)
    await admin.inject_fault(
        company, FaultSpec(status=429, path_prefix="/v1/customerpayment", method="POST")
    )
    ref = await client.create_payment(
        customer_number=customer,
        applications=[PaymentApplication(number, Decimal(10))],
        payment_date=TODAY,
        payment_ref="NF-429",
    )
    assert ref
    assert len(await client.payments_for_invoice(number)) == 1


async def test_release_is_not_retried_blindly_after_an_uncertain_failure(
    client: VismaNetClient,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    sleeps: list[float],
) -> None:
    customer, (number,) = await invoices(admin, company, 1)
    ref = await client.create_payment(
        customer_number=customer,
        applications=[PaymentApplication(number, Decimal(125))],
        payment_date=TODAY,
        payment_ref="NF-release",
    )
    await admin.inject_fault(
        company,
        FaultSpec(status=502, path_prefix=f"/v1/customerpayment/{ref}/action", after_commit=True),
    )
    with pytest.raises(PartnerError) as failed:
        await client.release_payment(ref)
    assert failed.value.status == 502
    releases = calls(
        await admin.requests(company), "POST", f"/v1/customerpayment/{ref}/action/release"
    )
    assert len(releases) == 1
    # The caller looks before releasing again: it did land.
    assert payment_released(await client.payment(ref))
    assert (await client.invoice(number))["status"] == "Closed"
    with pytest.raises(PartnerError) as again:
        await client.release_payment(ref)
    assert again.value.status == 400


async def test_payments_for_invoice_lists_only_that_invoice(
    client: VismaNetClient, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    customer, (one, two) = await invoices(admin, company, 2)
    for number, ref in ((one, "A"), (two, "B"), (one, "C")):
        await client.create_payment(
            customer_number=customer,
            applications=[PaymentApplication(number, Decimal(1))],
            payment_date=TODAY,
            payment_ref=ref,
        )
    assert [p["paymentRef"] for p in await client.payments_for_invoice(one)] == ["A", "C"]


# -------------------------------------------------------------------------------- ETags


async def test_a_stale_etag_is_a_concurrent_modification(
    client: VismaNetClient,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    vn_sandbox: RunningVismaNetSandbox,
) -> None:
    _customer, (number,) = await invoices(admin, company, 1)
    read = await client.invoice(number)
    stale = etag_of(read)
    # Someone edits the invoice in Visma.net in between.
    async with VismaNetClient(
        vn_sandbox.base_url, SecretStr(company.token), company.company_id
    ) as other:
        await other.update_due_date(number, dt.date(2025, 5, 1))

    with pytest.raises(ConcurrentModification) as conflict:
        await client.update_due_date(number, dt.date(2025, 6, 30), etag=stale)

    assert conflict.value.status == 412
    assert number in str(conflict.value)
    assert (await client.invoice(number))["documentDueDate"] == "2025-05-01T00:00:00"
    fresh = etag_of(await client.invoice(number))
    new_etag = await client.update_due_date(number, dt.date(2025, 6, 30), etag=fresh)
    after = await client.invoice(number)
    assert after["documentDueDate"] == "2025-06-30T00:00:00"
    assert etag_of(after) == new_etag != fresh
    puts = calls(await admin.requests(company), "PUT", f"/v1/customerinvoice/{number}")
    assert [(r["if_match"], r["status"]) for r in puts][-2:] == [
        (f'"{stale}"', 412),
        (f'"{fresh}"', 204),
    ]


async def test_a_release_with_a_stale_etag_is_a_concurrent_modification(
    client: VismaNetClient, admin: AsyncVismaNetSandboxAdmin, company: SandboxCompany
) -> None:
    customer, (number,) = await invoices(admin, company, 1)
    ref = await client.create_payment(
        customer_number=customer,
        applications=[PaymentApplication(number, Decimal(5))],
        payment_date=TODAY,
        payment_ref="NF-etag",
    )
    with pytest.raises(ConcurrentModification):
        await client.release_payment(ref, etag="AAAAAAAAAAE=")
    current = etag_of(await client.payment(ref))
    await client.release_payment(ref, etag=current)
    assert payment_released(await client.payment(ref))


# ---------------------------------------------------------------- auth and secrets


async def test_a_token_provider_is_asked_before_every_attempt(
    vn_sandbox: RunningVismaNetSandbox,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    sleeps: list[float],
) -> None:
    customer = await admin.seed_customer(company)
    asked: list[int] = []

    async def provider() -> SecretStr:
        asked.append(1)
        return SecretStr(company.token)

    await admin.inject_fault(company, FaultSpec(status=503, method="GET"))
    async with VismaNetClient(vn_sandbox.base_url, provider, company.company_id) as visma:
        await visma.customer(customer)
    assert len(asked) == 2


async def test_without_a_company_id_the_header_is_not_sent(
    vn_sandbox: RunningVismaNetSandbox, company: SandboxCompany
) -> None:
    async with VismaNetClient(vn_sandbox.base_url, SecretStr(company.token), None) as visma:
        with pytest.raises(PartnerError) as refused:
            await visma.customer("x")
    assert refused.value.status == 400  # this sandbox requires ipp-company-id
    assert refused.value.permanent


async def test_the_token_never_appears_in_an_exception(
    vn_sandbox: RunningVismaNetSandbox,
    admin: AsyncVismaNetSandboxAdmin,
    company: SandboxCompany,
    sleeps: list[float],
) -> None:
    secret = "s3cr3t-visma-token-" + company.token[:6]
    async with VismaNetClient(vn_sandbox.base_url, SecretStr(secret), company.company_id) as bad:
        with pytest.raises(PartnerError) as unauthorized:
            await bad.customer("1")
    assert unauthorized.value.status == 401

    await admin.inject_fault(company, FaultSpec(status=500, count=10, method="GET"))
    async with VismaNetClient(
        vn_sandbox.base_url, SecretStr(company.token), company.company_id
    ) as visma:
        with pytest.raises(PartnerError) as exhausted:
            await visma.customer("1")
        assert company.token not in repr(visma.__dict__)
    assert exhausted.value.status == 500
    for error, token in ((unauthorized.value, secret), (exhausted.value, company.token)):
        text = "".join(traceback.format_exception(error))
        assert token not in text
        assert token not in str(error)
        assert token not in repr(error)


async def test_a_server_that_ignores_page_number_is_not_read_forever() -> None:
    def same_page(request: httpx.Request) -> httpx.Response:
        assert request.headers["ipp-company-id"] == "42"
        return httpx.Response(200, json=[{"referenceNumber": str(n)} for n in range(3)])

    async with VismaNetClient(
        "http://visma.test",
        SecretStr("t0ken-value"),
        "42",
        page_size=3,
        transport=httpx.MockTransport(same_page),
    ) as visma:
        since = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
        with pytest.raises(PartnerError, match="like page 1"):
            _ = [item async for item in visma.invoices_modified_since(since)]
