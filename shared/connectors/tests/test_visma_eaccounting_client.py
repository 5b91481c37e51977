"""VismaEAccountingClient against the eAccounting sandbox: in-process (ASGI) and over a socket."""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from nordflow_connectors import resilience
from nordflow_connectors.oauth import InMemoryTokenStore, OAuthError, OAuthSession, Tokens
from nordflow_connectors.visma_eaccounting import (
    PaymentType,
    VismaEAccountingClient,
    VismaError,
    endpoint_of,
    modified_since_param,
)
from nordflow_sandboxes.visma_eaccounting import VismaEAccountingState, create_app
from nordflow_sandboxes.visma_eaccounting.app import company_facts
from nordflow_sandboxes.visma_eaccounting.domain import Fault
from nordflow_sandboxes.visma_eaccounting.testing import (
    FaultSpec,
    RunningVismaEAccountingSandbox,
    SandboxCompany,
    running_visma_eaccounting_sandbox,
)
from pydantic import SecretStr

BASE = "http://visma.test"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class MovableClock:
    """A wall clock the tests move by hand (read by the sandbox and the session alike)."""

    current: datetime = field(default_factory=lambda: datetime(2025, 3, 10, 11, 15, 30, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Connected:
    """One sandbox company with a client connected to it, plus seeding and inspection."""

    state: VismaEAccountingState
    company: SandboxCompany
    client: VismaEAccountingClient
    session: OAuthSession
    store: InMemoryTokenStore

    @property
    def _company(self) -> Any:
        return self.state.company(self.company.company_id)

    def seed_customer(self, **fields: Any) -> dict[str, Any]:
        from nordflow_sandboxes.visma_eaccounting import serialize, service

        body = {"Name": "Kund AB", "InvoiceCity": "Lund", "InvoicePostalCode": "222 22", **fields}
        with self.state.lock:
            customer = service.create_customer(self._company, body, self.state.now())
            return serialize.customer(customer, self._company)

    def seed_invoice(self, customer_id: str, price: int = 100) -> dict[str, Any]:
        from nordflow_sandboxes.visma_eaccounting import serialize, service

        row = {"ArticleId": self.company.article(25), "Quantity": 1, "UnitPrice": price}
        with self.state.lock:
            today = self.state.today()
            invoice = service.create_invoice(
                self._company, {"CustomerId": customer_id, "Rows": [row]}, self.state.now(), today
            )
            return serialize.invoice(invoice, self._company, today)

    def requests(self) -> list[dict[str, Any]]:
        return [r.as_json() for r in self.state.recent_requests(self._company, 2000)]

    def api_requests(self, method: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests()
            if r["path"].startswith("/v2/") and (method is None or r["method"] == method)
        ]

    def fault(self, fault: FaultSpec) -> None:
        self.state.add_fault(
            self._company,
            Fault(
                fault.status,
                fault.count,
                fault.path_prefix,
                fault.method,
                fault.delay_seconds,
                fault.after_commit,
                fault.retry_after_seconds,
            ),
        )


def facts_of(state: VismaEAccountingState) -> SandboxCompany:
    company, client, refresh = state.create_company("Klient AB")
    return SandboxCompany.from_json(
        company_facts(company, client.client_id, client.client_secret, refresh)
    )


def initial_store(company: SandboxCompany) -> InMemoryTokenStore:
    return InMemoryTokenStore(
        Tokens(SecretStr("none-yet"), SecretStr(company.refresh_token), expires_at=EPOCH)
    )


@contextlib.asynccontextmanager
async def connect(
    state: VismaEAccountingState,
    *,
    base_url: str = BASE,
    clock: MovableClock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **client_kw: Any,
) -> AsyncIterator[Connected]:
    """A new company in `state` and a client for it (ASGI transport unless `base_url` is real)."""
    company = facts_of(state)
    if transport is None and base_url == BASE:
        transport = httpx.ASGITransport(app=create_app(state))
    store = initial_store(company)
    session = OAuthSession(
        f"{base_url}/connect/token",
        company.client_id,
        SecretStr(company.client_secret),
        store,
        clock=clock or MovableClock(datetime.now(UTC)),
        transport=transport,
    )
    client = VismaEAccountingClient(base_url, session, transport=transport, **client_kw)
    try:
        yield Connected(state, company, client, session, store)
    finally:
        await client.aclose()
        await session.aclose()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def state(clock: MovableClock) -> VismaEAccountingState:
    return VismaEAccountingState(clock=clock)


@pytest.fixture
async def visma(state: VismaEAccountingState, clock: MovableClock) -> AsyncIterator[Connected]:
    async with connect(state, clock=clock, page_size=10) as connected:
        yield connected


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningVismaEAccountingSandbox]:
    with running_visma_eaccounting_sandbox() as running:
        yield running


def query_of(record: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(record["query"]).items()}


def describe(error: BaseException) -> str:
    """Everything an operator could see of an exception: message, repr and traceback."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


# ----------------------------------------------------------------------- small helpers


def test_modified_since_param_is_utc_rfc3339_rounded_down() -> None:
    moment = datetime(2025, 3, 10, 12, 15, 30, 999_000, tzinfo=UTC)
    assert modified_since_param(moment) == "2025-03-10T12:15:30Z"
    from zoneinfo import ZoneInfo

    local = datetime(2025, 3, 10, 13, 15, 30, tzinfo=ZoneInfo("Europe/Stockholm"))
    assert modified_since_param(local) == "2025-03-10T12:15:30Z"
    with pytest.raises(ValueError, match="aware"):
        modified_since_param(datetime(2025, 3, 10))


def test_endpoints_ignore_ids() -> None:
    one = "customerinvoices/3a15e539-c560-435a-be28-d4a6e3226b91/payments"
    other = "customerinvoices/4aa3639f-b575-4165-809f-779b7d66502b/payments"
    assert endpoint_of(one) == endpoint_of(other) == "/customerinvoices/{id}/payments"
    assert endpoint_of("customerinvoices") != endpoint_of(one)


async def test_each_endpoint_gets_its_limiter_from_limiter_for() -> None:
    # What a shared budget plugs into: one limiter per endpoint, asked for once, used per call.
    made: list[str] = []
    calls: list[str] = []

    class Recording:
        def __init__(self, endpoint: str) -> None:
            self.endpoint = endpoint
            made.append(endpoint)

        async def acquire(self) -> resilience.Slot:
            calls.append(self.endpoint)
            return resilience.Slot(time.monotonic())

        def done(self, slot: resilience.Slot) -> None:
            del slot

    async with connect(VismaEAccountingState(), limiter_for=Recording) as visma:
        customer = visma.seed_customer()
        await visma.client.customer(customer["Id"])
        await visma.client.customer(customer["Id"])
        await visma.client.bank_accounts()
    assert made == ["/customers/{id}", "/bankaccounts"]
    assert calls == ["/customers/{id}", "/customers/{id}", "/bankaccounts"]


# ------------------------------------------------------------------------------ reads


async def test_listing_pages_through_every_invoice(visma: Connected) -> None:
    customer = visma.seed_customer()
    seeded = {visma.seed_invoice(customer["Id"])["Id"] for _ in range(23)}
    since = datetime(2025, 3, 10, tzinfo=UTC)
    listing = visma.client.invoices_modified_since(since)
    got = [invoice["Id"] async for invoice in listing]
    assert len(got) == 23
    assert set(got) == seeded
    gets = visma.api_requests("GET")
    assert [r["path"] for r in gets] == ["/v2/customerinvoices"] * 3
    assert [query_of(r) for r in gets] == [
        {"modifiedSinceUtc": "2025-03-10T00:00:00Z", "$page": str(p), "$pagesize": "10"}
        for p in (1, 2, 3)
    ]


async def test_the_watermark_is_the_first_pages_server_time(
    visma: Connected, clock: MovableClock
) -> None:
    customer = visma.seed_customer()
    untouched = visma.seed_invoice(customer["Id"])
    paid_later = visma.seed_invoice(customer["Id"])
    clock.advance(seconds=42.6)

    listing = visma.client.invoices_modified_since(clock() - timedelta(hours=1))
    with pytest.raises(RuntimeError):
        _ = listing.watermark
    assert {i["Id"] async for i in listing} == {untouched["Id"], paid_later["Id"]}
    watermark = listing.watermark
    assert watermark == datetime(2025, 3, 10, 11, 16, 12, tzinfo=UTC)  # whole seconds, down

    clock.advance(minutes=10)
    created_later = visma.seed_invoice(customer["Id"])
    await visma.client.create_payment(
        invoice_id=paid_later["Id"],
        amount=Decimal("25.00"),
        currency="SEK",
        payment_date=date(2025, 3, 10),
        bank_account_id=visma.company.bank_account_id,
    )
    again = visma.client.invoices_modified_since(watermark)
    changed = {i["Id"]: i async for i in again}
    assert set(changed) == {paid_later["Id"], created_later["Id"]}
    assert changed[paid_later["Id"]]["RemainingAmount"] == 100
    assert again.watermark == datetime(2025, 3, 10, 11, 26, 12, tzinfo=UTC)


async def test_a_half_read_listing_has_no_watermark(visma: Connected) -> None:
    customer = visma.seed_customer()
    for _ in range(12):
        visma.seed_invoice(customer["Id"])
    listing = visma.client.invoices_modified_since(datetime(2025, 1, 1, tzinfo=UTC))
    first = await anext(listing)
    assert first["InvoiceNumber"] == 1
    assert listing.server_time is not None
    with pytest.raises(RuntimeError):
        _ = listing.watermark


async def test_single_reads(visma: Connected) -> None:
    paper = visma.seed_customer(Name="Papper AB")
    peppol = visma.seed_customer(Name="Peppol AB", ElectronicAddress="0007:5566778899")
    invoice = visma.seed_invoice(peppol["Id"], price=200)
    fetched = await visma.client.invoice(invoice["Id"])
    assert (fetched["TotalAmount"], fetched["CustomerId"]) == (250, peppol["Id"])
    assert (await visma.client.customer(paper["Id"]))["Name"] == "Papper AB"
    assert await visma.client.autoinvoice_recipients(paper["Id"]) == []
    [recipient] = await visma.client.autoinvoice_recipients(peppol["Id"])
    assert recipient["ElectronicAddress"] == "0007:5566778899"
    [account] = await visma.client.bank_accounts()
    assert account["Id"] == visma.company.bank_account_id


async def test_a_404_is_permanent_with_the_error_code(visma: Connected) -> None:
    with pytest.raises(VismaError) as raised:
        await visma.client.invoice(visma.company.bank_account_id)
    error = raised.value
    assert (error.status, error.error_code, error.permanent) == (404, 3000, True)
    assert "ErrorCode 3000" in str(error)
    assert error.error_id
    assert len(visma.api_requests()) == 1


# ------------------------------------------------------------------------------ tokens


async def test_an_expired_access_token_is_refreshed_before_the_call(
    visma: Connected, clock: MovableClock
) -> None:
    customer = visma.seed_customer()
    await visma.client.customer(customer["Id"])
    clock.advance(hours=1)
    await visma.client.customer(customer["Id"])
    assert [r["status"] for r in visma.api_requests()] == [200, 200]  # never sent a dead token
    assert visma.session.refreshes == 2


async def test_a_401_refreshes_and_retries_once(visma: Connected) -> None:
    customer = visma.seed_customer()
    await visma.client.customer(customer["Id"])
    visma.state.expire_access_tokens(visma._company)
    assert (await visma.client.customer(customer["Id"]))["Id"] == customer["Id"]
    assert [r["status"] for r in visma.api_requests()] == [200, 401, 200]
    assert visma.session.refreshes == 2
    spent = visma.company.refresh_token
    assert visma.store.tokens is not None
    assert visma.store.tokens.refresh_token.get_secret_value() != spent


async def test_concurrent_calls_after_expiry_share_one_refresh(visma: Connected) -> None:
    customer = visma.seed_customer()
    await visma.client.customer(customer["Id"])
    visma.state.expire_access_tokens(visma._company)
    await asyncio.gather(*(visma.client.customer(customer["Id"]) for _ in range(8)))
    assert visma.session.refreshes == 2
    assert visma.state.stats(visma._company)["refresh_tokens_redeemed"] == 2


async def test_a_revoked_grant_surfaces_as_an_oauth_error(visma: Connected) -> None:
    customer = visma.seed_customer()
    await visma.client.customer(customer["Id"])
    visma.state.expire_access_tokens(visma._company)
    assert visma.store.tokens is not None
    # the current refresh token is spent elsewhere (e.g. a second, misconfigured poller)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(visma.state))) as h:
        await h.post(
            f"{BASE}/connect/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": visma.store.tokens.refresh_token.get_secret_value(),
            },
            auth=(visma.company.client_id, visma.company.client_secret),
        )
    with pytest.raises(OAuthError) as raised:
        await visma.client.customer(customer["Id"])
    assert raised.value.reauthorization_required


# -------------------------------------------------------------------------- rate limit


async def test_a_429_with_error_code_4010_is_waited_out() -> None:
    # The server allows 2 per second per endpoint; the client's own limiter is out of the way.
    state = VismaEAccountingState(rate_limit=2, rate_window_seconds=1.0)
    async with connect(state, rate_limit=1000) as visma:
        customer = visma.seed_customer()
        started = time.monotonic()
        for _ in range(4):
            await visma.client.customer(customer["Id"])
        elapsed = time.monotonic() - started
    statuses = [r["status"] for r in visma.api_requests()]
    assert statuses.count(200) == 4
    assert 429 in statuses
    # "Try again in 1 seconds." became a Retry-After: the retry waited the whole second
    assert elapsed >= 0.95


async def test_the_client_limiter_keeps_under_the_server_limit() -> None:
    state = VismaEAccountingState(rate_limit=3, rate_window_seconds=0.5)
    async with connect(state, rate_limit=3, rate_window=0.5) as visma:
        customer = visma.seed_customer()
        await asyncio.gather(*(visma.client.customer(customer["Id"]) for _ in range(7)))
        # a different endpoint has its own window
        await asyncio.gather(*(visma.client.bank_accounts() for _ in range(3)))
    assert [r["status"] for r in visma.api_requests()] == [200] * 10


async def test_an_injected_429_is_retried_for_reads(visma: Connected) -> None:
    customer = visma.seed_customer()
    visma.fault(FaultSpec(status=429, retry_after_seconds=0))
    await visma.client.customer(customer["Id"])
    assert [r["status"] for r in visma.api_requests()] == [429, 200]


# ---------------------------------------------------------------------------- payments


async def test_payments_reduce_the_remaining_amount_and_overpayment_is_refused(
    visma: Connected,
) -> None:
    customer = visma.seed_customer()
    invoice = visma.seed_invoice(customer["Id"])
    paid = await visma.client.create_payment(
        invoice_id=invoice["Id"],
        amount=Decimal("25.10"),
        currency="SEK",
        payment_date=date(2025, 3, 10),
        bank_account_id=visma.company.bank_account_id,
        reference="FACT",
    )
    assert paid["PaymentAmount"] == 25.1
    assert paid["BankTransactionId"]
    assert (await visma.client.invoice(invoice["Id"]))["RemainingAmount"] == 99.9
    with pytest.raises(VismaError) as raised:
        await visma.client.create_payment(
            invoice_id=invoice["Id"],
            amount=Decimal("99.91"),
            currency="SEK",
            payment_date=date(2025, 3, 10),
            bank_account_id=visma.company.bank_account_id,
        )
    assert (raised.value.status, raised.value.error_code) == (400, 4002)
    assert raised.value.permanent
    assert "Overpayment" in raised.value.message
    assert (await visma.client.invoice(invoice["Id"]))["RemainingAmount"] == 99.9
    with pytest.raises(ValueError, match="2 decimals"):
        await visma.client.create_payment(
            invoice_id=invoice["Id"],
            amount=Decimal("1.001"),
            currency="SEK",
            payment_date=date(2025, 3, 10),
            bank_account_id=visma.company.bank_account_id,
        )


async def test_a_factored_invoice_is_closed_with_the_fee(visma: Connected) -> None:
    customer = visma.seed_customer()
    invoice = visma.seed_invoice(customer["Id"])
    await visma.client.create_payment(
        invoice_id=invoice["Id"],
        amount=Decimal("122.50"),
        currency="SEK",
        payment_date=date(2025, 3, 10),
        bank_account_id=visma.company.bank_account_id,
        payment_type=PaymentType.COMPLETE_PAYMENT,
        factoring_fee=Decimal("2.50"),
        factoring_fee_account=6064,
    )
    closed = await visma.client.invoice(invoice["Id"])
    assert (closed["RemainingAmount"], closed["PaymentStatus"]) == (0, 0)


async def test_a_create_is_retried_on_429_only(visma: Connected) -> None:
    customer = visma.seed_customer()
    invoice = visma.seed_invoice(customer["Id"])
    pay = {
        "invoice_id": invoice["Id"],
        "amount": Decimal(10),
        "currency": "SEK",
        "payment_date": date(2025, 3, 10),
        "bank_account_id": visma.company.bank_account_id,
    }
    visma.fault(FaultSpec(status=429, method="POST", retry_after_seconds=0))
    await visma.client.create_payment(**pay)
    visma.fault(FaultSpec(status=500, method="POST"))
    with pytest.raises(VismaError) as raised:
        await visma.client.create_payment(**pay)
    assert (raised.value.status, raised.value.permanent) == (500, False)
    visma.fault(FaultSpec(status=503, method="POST", after_commit=True))
    with pytest.raises(VismaError):
        await visma.client.create_payment(**pay)
    posts = visma.api_requests("POST")
    assert [r["status"] for r in posts] == [429, 201, 500, 503]
    # the after-commit failure did register the payment: the caller finds it on the invoice
    assert (await visma.client.invoice(invoice["Id"]))["RemainingAmount"] == 105


# ------------------------------------------------------------------- over a real socket


async def test_reads_are_retried_after_a_timeout_and_creates_are_not(
    sandbox: RunningVismaEAccountingSandbox,
) -> None:
    async with connect(sandbox.state, base_url=sandbox.base_url, timeout=0.3) as visma:
        customer = visma.seed_customer()
        invoice = visma.seed_invoice(customer["Id"])
        visma.fault(FaultSpec(status=None, delay_seconds=0.6, method="GET"))
        assert (await visma.client.invoice(invoice["Id"]))["Id"] == invoice["Id"]
        visma.fault(FaultSpec(status=None, delay_seconds=0.6, method="POST"))
        with pytest.raises(httpx.TimeoutException):
            await visma.client.create_payment(
                invoice_id=invoice["Id"],
                amount=Decimal(10),
                currency="SEK",
                payment_date=date.today(),
                bank_account_id=visma.company.bank_account_id,
            )
        await asyncio.sleep(0.4)  # let the slow create finish on the server
        assert len(visma.api_requests("POST")) == 1
        assert len(visma.api_requests("GET")) == 2  # the slow one, then its retry


async def test_secrets_never_appear_in_exceptions(
    sandbox: RunningVismaEAccountingSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[BaseException] = []

    async def capture(call: Any) -> None:
        try:
            await call
        except Exception as exc:
            errors.append(exc)

    async with connect(sandbox.state, base_url=sandbox.base_url, timeout=0.3) as visma:
        customer = visma.seed_customer()
        invoice = visma.seed_invoice(customer["Id"])

        def payment(amount: int) -> Any:
            return visma.client.create_payment(
                invoice_id=invoice["Id"],
                amount=Decimal(amount),
                currency="SEK",
                payment_date=date.today(),
                bank_account_id=visma.company.bank_account_id,
            )

        await capture(visma.client.invoice(visma.company.bank_account_id))  # 404
        await capture(payment(1000))  # 400 overpayment
        visma.fault(FaultSpec(status=500, method="POST"))
        await capture(payment(1))  # 500 on a create
        visma.fault(FaultSpec(status=None, delay_seconds=0.5, method="POST"))
        await capture(payment(1))  # timeout on a create
        assert visma.store.tokens is not None
        tokens = visma.store.tokens
        secrets = [
            visma.company.client_secret,
            visma.company.refresh_token,
            tokens.refresh_token.get_secret_value(),
            tokens.access_token.get_secret_value(),
        ]
        # a refresh the token endpoint refuses (the refresh token spent elsewhere)
        visma.state.expire_access_tokens(visma._company)
        visma.state.redeem_refresh_token(
            visma.state.authenticate_client(visma.company.client_id, visma.company.client_secret)
            or pytest.fail("client"),
            tokens.refresh_token.get_secret_value(),
        )
        await capture(visma.client.customer(customer["Id"]))

    # a server that is not there: a transport error after every retry (back-off made instant)
    async def instant(_delay: float) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(
        resilience, "asyncio", types.SimpleNamespace(sleep=instant, Lock=asyncio.Lock)
    )
    async with connect(sandbox.state, base_url="http://127.0.0.1:9", timeout=0.5) as gone:
        gone.store.tokens = Tokens(
            SecretStr(secrets[3]), SecretStr(secrets[2]), datetime.now(UTC) + timedelta(hours=1)
        )
        await capture(gone.client.customer(customer["Id"]))

    assert [type(e) for e in errors][:3] == [VismaError, VismaError, VismaError]
    assert isinstance(errors[3], httpx.TimeoutException)
    assert isinstance(errors[4], OAuthError)
    assert isinstance(errors[5], httpx.TransportError)
    for error in errors:
        for secret in secrets:
            assert secret not in describe(error)
