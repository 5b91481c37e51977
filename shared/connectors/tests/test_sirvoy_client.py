"""SirvoyClient against the Sirvoy sandbox served in-process: paging, modified-since, retries."""

from __future__ import annotations

import asyncio
import secrets
import time
import traceback
import types
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from nordflow_connectors import resilience
from nordflow_connectors.resilience import PartnerError
from nordflow_connectors.sirvoy import SirvoyClient
from nordflow_sandboxes.sirvoy import SirvoyState
from nordflow_sandboxes.sirvoy.testing import (
    FaultSpec,
    ManualClock,
    RunningSirvoySandbox,
    SandboxAccount,
    SirvoySandboxAdmin,
    running_sirvoy_sandbox,
)
from pydantic import SecretStr


@pytest.fixture(scope="module")
def sirvoy_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def sirvoy_sandbox(sirvoy_clock: ManualClock) -> Iterator[RunningSirvoySandbox]:
    with running_sirvoy_sandbox(SirvoyState(clock=sirvoy_clock)) as sandbox:
        yield sandbox


@pytest.fixture
def sirvoy_admin(sirvoy_sandbox: RunningSirvoySandbox) -> Iterator[SirvoySandboxAdmin]:
    with sirvoy_sandbox.admin() as admin:
        yield admin


@pytest.fixture
def hotel(sirvoy_admin: SirvoySandboxAdmin) -> SandboxAccount:
    return sirvoy_admin.create_account()


@pytest.fixture
async def client(
    sirvoy_sandbox: RunningSirvoySandbox, hotel: SandboxAccount
) -> AsyncIterator[SirvoyClient]:
    # The client takes the server root and appends /api/v1/ itself.
    async with SirvoyClient(sirvoy_sandbox.base_url, SecretStr(hotel.token)) as sirvoy:
        yield sirvoy


@pytest.fixture
def instant_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(_delay: float) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(
        resilience, "asyncio", types.SimpleNamespace(sleep=instant, Lock=asyncio.Lock)
    )


def describe(error: BaseException) -> str:
    """Everything an operator could see of an exception: message, repr and traceback."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


# ---------------------------------------------------------------------------- listing


async def test_invoices_are_read_across_pages_in_modification_order(
    sirvoy_sandbox: RunningSirvoySandbox,
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
) -> None:
    booking = sirvoy_admin.create_booking(hotel.token)
    ids = [
        sirvoy_admin.create_invoice(hotel.token, booking["bookingId"])["invoiceId"]
        for _ in range(5)
    ]
    async with SirvoyClient(sirvoy_sandbox.base_url, SecretStr(hotel.token), page_size=2) as paged:
        seen = [i.invoice_id async for i in paged.invoices_modified_since()]
    assert seen == ids
    listed = [r for r in sirvoy_admin.requests(hotel.token) if r["path"] == "/api/v1/invoices"]
    assert len(listed) == 3
    assert "cursor=" not in listed[0]["query"]
    assert all("cursor=" in r["query"] for r in listed[1:])


async def test_modified_since_returns_only_later_changes(
    client: SirvoyClient,
    sirvoy_admin: SirvoySandboxAdmin,
    sirvoy_clock: ManualClock,
    hotel: SandboxAccount,
) -> None:
    booking = sirvoy_admin.create_booking(hotel.token)
    old = sirvoy_admin.create_invoice(hotel.token, booking["bookingId"])
    sirvoy_clock.advance(minutes=10)
    since = sirvoy_clock.current
    new = sirvoy_admin.create_invoice(hotel.token, booking["bookingId"])
    sirvoy_clock.advance(seconds=1)
    paid = sirvoy_admin.register_payment(hotel.token, invoice_id=old["invoiceId"])

    invoices = [i.invoice_id async for i in client.invoices_modified_since(since)]
    payments = [p.payment_id async for p in client.payments_modified_since(since)]
    # The old invoice changed too: its payment moved its modification time.
    assert invoices == [new["invoiceId"], old["invoiceId"]]
    assert payments == [paid["paymentId"]]


async def test_the_catch_up_poll_hands_back_a_watermark(
    client: SirvoyClient,
    sirvoy_admin: SirvoySandboxAdmin,
    sirvoy_clock: ManualClock,
    hotel: SandboxAccount,
) -> None:
    booking = sirvoy_admin.create_booking(hotel.token)
    first = sirvoy_admin.create_invoice(hotel.token, booking["bookingId"])
    everything = await client.changes_since(None)
    assert [i.invoice_id for i in everything.invoices] == [first["invoiceId"]]
    assert everything.server_time == sirvoy_clock.current

    sirvoy_clock.advance(seconds=1)
    assert (await client.changes_since(everything.server_time + timedelta(microseconds=1))) == (
        type(everything)((), (), sirvoy_clock.current)
    )
    sirvoy_clock.advance(seconds=1)
    payment = sirvoy_admin.register_payment(hotel.token, invoice_id=first["invoiceId"], amount=100)
    later = await client.changes_since(everything.server_time)
    assert [p.payment_id for p in later.payments] == [payment["paymentId"]]
    assert later.payments[0].amount == Decimal(100)
    assert [i.balance for i in later.invoices] == [Decimal(first["totalAmount"]) - 100]


async def test_naive_datetimes_are_refused(client: SirvoyClient) -> None:
    with pytest.raises(ValueError, match="aware"):
        await anext(client.invoices_modified_since(ManualClock().current.replace(tzinfo=None)))


# ------------------------------------------------------------------------ single reads


async def test_cash_receipts_paid_through_stripe_are_flagged(
    client: SirvoyClient, sirvoy_admin: SirvoySandboxAdmin, hotel: SandboxAccount
) -> None:
    booking = sirvoy_admin.create_booking(hotel.token)["bookingId"]
    stripe = sirvoy_admin.create_invoice(
        hotel.token, booking, type="cashReceipt", stripe_payment=True
    )
    cash = sirvoy_admin.create_invoice(hotel.token, booking, type="cashReceipt")
    regular = sirvoy_admin.create_invoice(hotel.token, booking)
    sirvoy_admin.register_payment(
        hotel.token, invoice_id=regular["invoiceId"], method="card", provider="stripe"
    )
    prepaid = sirvoy_admin.register_payment(
        hotel.token, booking_id=booking, amount=2400, method="card", provider="stripe"
    )
    transferred = sirvoy_admin.create_invoice(
        hotel.token, booking, type="cashReceipt", transfer_payment_ids=[prepaid["paymentId"]]
    )

    by_stripe = await client.invoice(stripe["invoiceId"])
    assert by_stripe.is_cash_invoice
    assert by_stripe.external_payment_provider == "stripe"
    assert by_stripe.paid_via_external_provider
    assert (await client.invoice(transferred["invoiceId"])).paid_via_external_provider
    in_cash = await client.invoice(cash["invoiceId"])
    assert in_cash.is_cash_invoice
    assert not in_cash.paid_via_external_provider
    # An ordinary invoice later paid by card is not a cash invoice: it is synced.
    ordinary = await client.invoice(regular["invoiceId"])
    assert ordinary.external_payment_provider == "stripe"
    assert not ordinary.paid_via_external_provider
    payment = await client.payment(by_stripe.payments[0].payment_id)
    assert (payment.provider, payment.invoice_id) == ("stripe", stripe["invoiceId"])


async def test_credit_invoices_reference_their_original(
    client: SirvoyClient, sirvoy_admin: SirvoySandboxAdmin, hotel: SandboxAccount
) -> None:
    booking = sirvoy_admin.create_booking(hotel.token)["bookingId"]
    original = sirvoy_admin.create_invoice(hotel.token, booking)
    credit = sirvoy_admin.credit_invoice(hotel.token, original["invoiceId"])
    fetched = await client.invoice(credit["invoiceId"])
    assert fetched.is_credit_invoice
    assert fetched.credited_invoice_id == original["invoiceId"]
    assert fetched.credited_invoice_number == str(original["invoiceNumber"])
    assert fetched.total_amount == -Decimal(original["totalAmount"])
    changes = await client.changes_since(None)
    assert [c.invoice_id for c in changes.credit_invoices] == [credit["invoiceId"]]
    whole = await client.booking(booking)
    assert [i.invoice_id for i in whole.invoices] == [original["invoiceId"], credit["invoiceId"]]
    assert whole.rooms[0].room_name == "101"
    assert whole.rooms[0].price == Decimal(1200)


# ------------------------------------------------------------------ failures and limits


async def test_reads_are_retried_on_5xx_and_429(
    client: SirvoyClient,
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    instant_backoff: None,
) -> None:
    booking = sirvoy_admin.create_booking(hotel.token)["bookingId"]
    invoice = sirvoy_admin.create_invoice(hotel.token, booking)
    sirvoy_admin.inject_fault(hotel.token, FaultSpec(status=503, count=2))
    sirvoy_admin.inject_fault(hotel.token, FaultSpec(status=429, retry_after_seconds=0))
    fetched = await client.invoice(invoice["invoiceId"])
    assert fetched.invoice_id == invoice["invoiceId"]
    statuses = [r["status"] for r in sirvoy_admin.requests(hotel.token)]
    assert statuses == [503, 503, 429, 200]


async def test_a_persistent_failure_is_a_partner_error(
    client: SirvoyClient,
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    instant_backoff: None,
) -> None:
    sirvoy_admin.inject_fault(hotel.token, FaultSpec(status=502, count=10))
    with pytest.raises(PartnerError) as failed:
        await client.invoice(1)
    assert failed.value.status == 502
    assert not failed.value.permanent
    sirvoy_admin.clear_faults(hotel.token)
    with pytest.raises(PartnerError) as missing:
        await client.invoice(1)
    assert (missing.value.status, missing.value.permanent) == (404, True)


async def test_the_token_never_appears_in_an_exception(
    sirvoy_sandbox: RunningSirvoySandbox,
    sirvoy_admin: SirvoySandboxAdmin,
    instant_backoff: None,
) -> None:
    token = "tok-" + secrets.token_hex(16)
    sirvoy_admin.create_account(token=token)
    errors: list[BaseException] = []
    unknown = SirvoyClient(sirvoy_sandbox.base_url, SecretStr(token + "-wrong"))
    known = SirvoyClient(sirvoy_sandbox.base_url, SecretStr(token))
    unreachable = SirvoyClient("http://127.0.0.1:9", SecretStr(token), timeout=0.5)
    for sirvoy in (unknown, known, unreachable):
        try:
            await sirvoy.invoice(123)
        except Exception as exc:
            errors.append(exc)
        assert token not in repr(sirvoy)
        await sirvoy.aclose()
    assert [type(e) for e in errors[:2]] == [PartnerError, PartnerError]
    assert [e.status for e in errors[:2] if isinstance(e, PartnerError)] == [401, 404]
    assert isinstance(errors[2], httpx.TransportError)
    for error in errors:
        assert token not in describe(error)


async def test_an_optional_rate_limit_paces_the_client(
    sirvoy_sandbox: RunningSirvoySandbox, hotel: SandboxAccount
) -> None:
    async with SirvoyClient(
        sirvoy_sandbox.base_url, SecretStr(hotel.token), rate_limit=2, rate_window=0.3
    ) as paced:
        started = time.monotonic()
        for _ in range(3):
            [i async for i in paced.invoices_modified_since()]
        assert time.monotonic() - started >= 0.3
