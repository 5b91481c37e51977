"""verify_webhook and parse_event on callbacks the Sirvoy sandbox really sent over HTTP."""

from __future__ import annotations

import json
import secrets
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from nordflow_connectors.sirvoy import (
    InvalidPayload,
    InvalidSignature,
    SirvoyClient,
    SirvoyEvent,
    parse_event,
    verify_webhook,
)
from nordflow_sandboxes.sirvoy.testing import (
    ReceivedWebhook,
    RunningSirvoySandbox,
    SandboxAccount,
    SirvoySandboxAdmin,
    WebhookReceiver,
    fast_webhooks,
    running_sirvoy_sandbox,
    running_webhook_receiver,
)
from pydantic import SecretStr


@pytest.fixture(scope="module")
def sirvoy_sandbox() -> Iterator[RunningSirvoySandbox]:
    with running_sirvoy_sandbox(fast_webhooks()) as sandbox:
        yield sandbox


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with running_webhook_receiver() as running:
        yield running


@pytest.fixture
def sirvoy_admin(sirvoy_sandbox: RunningSirvoySandbox) -> Iterator[SirvoySandboxAdmin]:
    with sirvoy_sandbox.admin() as admin:
        yield admin


@pytest.fixture
def hotel(sirvoy_admin: SirvoySandboxAdmin, receiver: WebhookReceiver) -> SandboxAccount:
    return sirvoy_admin.create_account(
        webhook_secret="whsec-" + secrets.token_hex(16), webhook_url=receiver.url
    )


@pytest.fixture
def secret(hotel: SandboxAccount) -> SecretStr:
    return SecretStr(hotel.webhook_secret)


@pytest.fixture
async def client(
    sirvoy_sandbox: RunningSirvoySandbox, hotel: SandboxAccount
) -> AsyncIterator[SirvoyClient]:
    async with SirvoyClient(sirvoy_sandbox.base_url, SecretStr(hotel.token)) as sirvoy:
        yield sirvoy


def deliveries(
    admin: SirvoySandboxAdmin, hotel: SandboxAccount, receiver: WebhookReceiver, n: int
) -> list[ReceivedWebhook]:
    assert admin.flush(hotel.token)
    return receiver.wait_for(n)


def verify(secret: SecretStr, hook: ReceivedWebhook, **kw: Any) -> SirvoyEvent:
    return verify_webhook(secret, hook.headers, hook.body, **kw)


def signed_at(hook: ReceivedWebhook) -> datetime:
    stamp = hook.headers["x-sirvoy-signature"].split(",")[0].removeprefix("t=")
    return datetime.fromtimestamp(int(stamp), UTC)


def describe(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


# ------------------------------------------------------------------------- signatures


def test_a_genuine_callback_verifies_and_parses(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    booking = sirvoy_admin.create_booking(
        hotel.token, guest={"firstName": "Eva", "lastName": "Lind"}
    )
    invoice = sirvoy_admin.create_invoice(hotel.token, booking["bookingId"], due_days=14)
    sirvoy_admin.register_payment(hotel.token, invoice_id=invoice["invoiceId"], amount=400)
    new, modified, paid = deliveries(sirvoy_admin, hotel, receiver, 3)

    created = verify(secret, new)
    assert (created.event, created.version) == ("new", "2.0")
    assert (created.booking_id, created.property_id) == (booking["bookingId"], hotel.property_id)
    assert created.booking.guest.first_name == "Eva"
    assert created.generated_at is not None
    assert created.generated_at.tzinfo is not None
    assert created.invoices == ()
    assert created.payments == ()

    invoiced = verify(secret, modified)
    [parsed] = invoiced.invoices
    assert parsed.invoice_id == invoice["invoiceId"]
    assert parsed.type == "invoice"
    assert parsed.total_amount == Decimal(invoice["totalAmount"])
    assert parsed.due_date is not None
    assert not parsed.paid_via_external_provider

    [payment] = verify(secret, paid).payments
    assert (payment.invoice_id, payment.amount) == (invoice["invoiceId"], Decimal(400))
    assert verify(secret, paid).invoices[0].balance == Decimal(invoice["totalAmount"]) - 400


def test_a_tampered_body_fails(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    sirvoy_admin.create_booking(hotel.token)
    [hook] = deliveries(sirvoy_admin, hotel, receiver, 1)
    tampered = hook.body.replace(b'"cancelled":false', b'"cancelled":true')
    assert tampered != hook.body
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_webhook(secret, hook.headers, tampered)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_webhook(secret, hook.headers, hook.body + b" ")


def test_a_wrong_secret_fails_and_no_secret_is_ever_shown(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    sirvoy_admin.create_booking(hotel.token)
    [hook] = deliveries(sirvoy_admin, hotel, receiver, 1)
    wrong = SecretStr("whsec-" + secrets.token_hex(16))
    failures: list[BaseException] = []
    attempts: list[tuple[SecretStr, dict[str, str], bytes, dict[str, Any]]] = [
        (wrong, hook.headers, hook.body, {}),
        (secret, hook.headers, hook.body + b"x", {}),
        (secret, hook.headers, hook.body, {"now": signed_at(hook) + timedelta(hours=1)}),
        (secret, {}, hook.body, {}),
    ]
    for key, headers, body, kw in attempts:
        with pytest.raises(InvalidSignature) as failed:
            verify_webhook(key, headers, body, **kw)
        failures.append(failed.value)
    signature = hook.headers["x-sirvoy-signature"].split("v1=")[1]
    for failure in failures:
        text = describe(failure)
        assert hotel.webhook_secret not in text
        assert wrong.get_secret_value() not in text
        assert signature not in text


def test_a_stale_or_future_timestamp_fails(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    sirvoy_admin.create_booking(hotel.token)
    [hook] = deliveries(sirvoy_admin, hotel, receiver, 1)
    sent = signed_at(hook)
    assert verify(secret, hook, now=sent + timedelta(minutes=4)).event == "new"
    with pytest.raises(InvalidSignature, match="stale or replayed"):
        verify(secret, hook, now=sent + timedelta(minutes=6))
    with pytest.raises(InvalidSignature, match="stale or replayed"):
        verify(secret, hook, now=sent - timedelta(minutes=6))
    tight = verify(secret, hook, now=sent + timedelta(seconds=20), tolerance=timedelta(minutes=1))
    assert tight.event == "new"
    with pytest.raises(InvalidSignature):
        verify(secret, hook, now=sent + timedelta(seconds=61), tolerance=timedelta(minutes=1))


def test_a_missing_or_malformed_header_fails(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    sirvoy_admin.create_booking(hotel.token)
    [hook] = deliveries(sirvoy_admin, hotel, receiver, 1)
    others = {k: v for k, v in hook.headers.items() if k != "x-sirvoy-signature"}
    with pytest.raises(InvalidSignature, match="missing X-Sirvoy-Signature"):
        verify_webhook(secret, others, hook.body)
    with pytest.raises(InvalidSignature, match="missing"):
        verify_webhook(secret, {**others, "X-Sirvoy-Signature": ""}, hook.body)
    for bad in ("v1=abc", "t=12", "t=soon,v1=abc", "sha256=abc"):
        with pytest.raises(InvalidSignature, match="malformed"):
            verify_webhook(secret, {**others, "X-Sirvoy-Signature": bad}, hook.body)


def test_headers_match_case_insensitively_and_rotated_secrets_verify(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    sirvoy_admin.create_booking(hotel.token)
    [hook] = deliveries(sirvoy_admin, hotel, receiver, 1)
    value = hook.headers["x-sirvoy-signature"]
    assert verify_webhook(secret, {"X-SIRVOY-SIGNATURE": value}, hook.body).event == "new"
    stamp, genuine = value.split(",")
    rotated = f"{stamp},v1={'0' * 64},{genuine}"
    assert verify_webhook(secret, {"x-sirvoy-signature": rotated}, hook.body).event == "new"


# ------------------------------------------------------------------ delivery semantics


def test_a_duplicate_delivery_has_the_same_event_id(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    sirvoy_admin.webhook_settings(hotel.token, duplicates=1)
    booking = sirvoy_admin.create_booking(hotel.token)
    sirvoy_admin.create_invoice(hotel.token, booking["bookingId"])
    hooks = deliveries(sirvoy_admin, hotel, receiver, 4)
    events = [verify(secret, hook) for hook in hooks]
    assert [e.event for e in events] == ["new", "new", "modified", "modified"]
    assert events[0].event_id == events[1].event_id
    assert events[2].event_id == events[3].event_id
    assert events[0].event_id != events[2].event_id
    assert len({e.event_id for e in events}) == 2


def test_a_retried_delivery_has_the_same_event_id(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    receiver.fail_next(1)
    sirvoy_admin.create_booking(hotel.token)
    [hook] = deliveries(sirvoy_admin, hotel, receiver, 1)
    attempts = sirvoy_admin.deliveries(hotel.token)
    assert [d["outcome"] for d in attempts] == ["failed", "delivered"]
    # The body that failed is the body that arrived: the id is a function of the body.
    assert verify(secret, hook).event_id == parse_event(hook.body).event_id


async def test_a_dropped_webhook_is_found_by_the_poll(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    client: SirvoyClient,
) -> None:
    watermark = (await client.changes_since(None)).server_time
    sirvoy_admin.webhook_settings(hotel.token, drop=True)
    booking = sirvoy_admin.create_booking(hotel.token)
    invoice = sirvoy_admin.create_invoice(hotel.token, booking["bookingId"])
    paid = sirvoy_admin.register_payment(hotel.token, invoice_id=invoice["invoiceId"])
    assert sirvoy_admin.flush(hotel.token)
    assert receiver.received == []
    assert {d["outcome"] for d in sirvoy_admin.deliveries(hotel.token)} == {"dropped"}

    found = await client.changes_since(watermark)
    assert [i.invoice_id for i in found.invoices] == [invoice["invoiceId"]]
    assert [p.payment_id for p in found.payments] == [paid["paymentId"]]
    assert found.invoices[0].balance == 0
    assert found.server_time >= watermark


def test_cash_invoices_paid_via_stripe_and_credits_in_events(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    booking = sirvoy_admin.create_booking(hotel.token)["bookingId"]
    receipt = sirvoy_admin.create_invoice(
        hotel.token, booking, type="cashReceipt", stripe_payment=True
    )
    invoice = sirvoy_admin.create_invoice(hotel.token, booking)
    credit = sirvoy_admin.credit_invoice(hotel.token, invoice["invoiceId"])
    last = verify(secret, deliveries(sirvoy_admin, hotel, receiver, 4)[-1])

    by_id = {i.invoice_id: i for i in last.invoices}
    assert set(by_id) == {receipt["invoiceId"], invoice["invoiceId"]}
    stripe_receipt = by_id[receipt["invoiceId"]]
    assert stripe_receipt.is_cash_invoice
    assert stripe_receipt.external_payment_provider == "stripe"
    assert stripe_receipt.paid_via_external_provider
    assert not by_id[invoice["invoiceId"]].paid_via_external_provider
    [credit_invoice] = last.credit_invoices
    assert credit_invoice.invoice_id == credit["invoiceId"]
    assert credit_invoice.credited_invoice_id == invoice["invoiceId"]
    assert credit_invoice.total_amount == -by_id[invoice["invoiceId"]].total_amount
    [stripe_payment] = last.payments
    assert stripe_payment.provider == "stripe"
    assert stripe_payment.provider_reference is not None


def test_cancel_and_restore_are_parsed(
    sirvoy_admin: SirvoySandboxAdmin,
    hotel: SandboxAccount,
    receiver: WebhookReceiver,
    secret: SecretStr,
) -> None:
    booking = sirvoy_admin.create_booking(hotel.token)["bookingId"]
    sirvoy_admin.cancel_booking(hotel.token, booking)
    sirvoy_admin.restore_booking(hotel.token, booking)
    events = [verify(secret, h) for h in deliveries(sirvoy_admin, hotel, receiver, 3)]
    assert [(e.event, e.booking.cancelled) for e in events] == [
        ("new", False),
        ("cancelled", True),
        ("restored", False),
    ]


# ---------------------------------------------------------------------------- parsing


# The shape of Sirvoy's published version 1.0 example callback (support article "Kan man
# använda en öppen API i Sirvoy?"), with our own values: strings for some numbers, no
# invoices, `generatedTime` instead of `generatedAt`.
VERSION_1_EXAMPLE: dict[str, Any] = {
    "version": "1.0",
    "generatedTime": "2016-03-15T10:18:49+00:00",
    "event": "new",
    "propertyId": 1,
    "bookingId": 25935,
    "bookingDate": "2016-03-15T09:41:37+00:00",
    "arrivalDate": "2016-03-15",
    "departureDate": "2016-03-16",
    "eta": None,
    "guest": {
        "firstName": "Kim",
        "lastName": None,
        "businessName": None,
        "address": "Exempelgatan 2",
        "postcode": "302 38",
        "city": "Halmstad",
        "country": "SE",
        "phone": "+46700000000",
        "email": "kim@example.com",
        "passportNo": None,
        "language": "sv",
        "message": None,
    },
    "internalComment": None,
    "couponCode": None,
    "rooms": [
        {
            "RoomTypeName": "Dubbelrum",
            "RoomTypeDescription": "Med utsikt",
            "RoomName": "Rum 2",
            "arrivalDate": "2016-03-15",
            "departureDate": "2016-03-16",
            "adults": "1",
            "quantity": 1,
            "price": "2000",
            "roomTotal": 2000,
            "guestName": None,
            "comment": None,
        }
    ],
    "additionalItems": [
        {"description": "Frukost", "specificDate": "2016-03-15", "quantity": "1", "price": "10"}
    ],
    "currency": "SEK",
    "totalPrice": 2020,
}


def test_the_documented_version_1_example_parses() -> None:
    event = parse_event(json.dumps(VERSION_1_EXAMPLE).encode())
    assert (event.event, event.version, event.booking_id) == ("new", "1.0", 25935)
    assert event.generated_at == datetime(2016, 3, 15, 10, 18, 49, tzinfo=UTC)
    [room] = event.booking.rooms
    assert (room.room_name, room.adults, room.price) == ("Rum 2", 1, Decimal(2000))
    assert event.booking.total_price == Decimal(2020)
    assert event.invoices == event.credit_invoices == ()
    assert event.payments == ()


def test_both_spellings_of_cancelled_are_accepted() -> None:
    for spelling in ("canceled", "cancelled", "CANCELLED"):
        body = json.dumps({**VERSION_1_EXAMPLE, "event": spelling}).encode()
        assert parse_event(body).event == "cancelled"


def test_bad_payloads_name_the_field_but_not_the_guest() -> None:
    with pytest.raises(InvalidPayload, match="not JSON"):
        parse_event(b"<xml/>")
    with pytest.raises(InvalidPayload, match="JSON object"):
        parse_event(b"[1, 2]")
    with pytest.raises(InvalidPayload, match="event"):
        parse_event(json.dumps({"bookingId": 1, "propertyId": 1}).encode())
    with pytest.raises(InvalidPayload, match="unknown value"):
        parse_event(json.dumps({**VERSION_1_EXAMPLE, "event": "deleted"}).encode())
    credit_without_original = {
        "invoiceId": 1,
        "invoiceNumber": 1,
        "type": "invoice",
        "isCreditInvoice": True,
        "invoiceDate": "2025-03-10",
        "currency": "SEK",
        "totalAmount": -100,
        "totalVat": -10.71,
    }
    broken = {
        **VERSION_1_EXAMPLE,
        "bookingId": "kim@example.com",
        "invoices": [credit_without_original],
    }
    with pytest.raises(InvalidPayload) as failed:
        parse_event(json.dumps(broken).encode())
    message = str(failed.value)
    assert "bookingId" in message
    assert "invoices.0" in message
    assert "creditedInvoiceId" in message
    assert "kim@example.com" not in message
