"""The Sirvoy sandbox's booking event webhooks over real HTTP: signing, retries, copies, drops."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
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
def account(sirvoy_admin: SirvoySandboxAdmin, receiver: WebhookReceiver) -> SandboxAccount:
    return sirvoy_admin.create_account(webhook_url=receiver.url)


def payload(hook: ReceivedWebhook) -> dict[str, Any]:
    return dict(json.loads(hook.body))


def independent_signature_ok(secret: str, hook: ReceivedWebhook) -> bool:
    parts = dict(p.split("=", 1) for p in hook.headers["x-sirvoy-signature"].split(","))
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + hook.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_every_booking_change_is_posted_whole_and_signed(
    sirvoy_admin: SirvoySandboxAdmin, account: SandboxAccount, receiver: WebhookReceiver
) -> None:
    booking = sirvoy_admin.create_booking(account.token)
    booking_id = booking["bookingId"]
    invoice = sirvoy_admin.create_invoice(account.token, booking_id)
    sirvoy_admin.register_payment(account.token, invoice_id=invoice["invoiceId"])
    sirvoy_admin.credit_invoice(account.token, invoice["invoiceId"])
    sirvoy_admin.cancel_booking(account.token, booking_id)
    sirvoy_admin.restore_booking(account.token, booking_id)
    assert sirvoy_admin.flush(account.token)
    hooks = receiver.wait_for(6)
    bodies = [payload(h) for h in hooks]
    assert [b["event"] for b in bodies] == [
        "new",
        "modified",
        "modified",
        "modified",
        "cancelled",
        "restored",
    ]
    assert all(b["version"] == "2.0" and b["bookingId"] == booking_id for b in bodies)
    assert all(b["propertyId"] == account.property_id for b in bodies)
    assert [len(b["invoices"]) for b in bodies] == [0, 1, 1, 2, 2, 2]
    assert [len(b["payments"]) for b in bodies] == [0, 0, 1, 1, 1, 1]
    assert [b["cancelled"] for b in bodies[4:]] == [True, False]
    assert all(h.headers["content-type"] == "application/json" for h in hooks)
    assert all(independent_signature_ok(account.webhook_secret, h) for h in hooks)
    assert not independent_signature_ok("some-other-secret-value", hooks[0])


def test_a_failing_receiver_gets_the_same_body_again(
    sirvoy_admin: SirvoySandboxAdmin, account: SandboxAccount, receiver: WebhookReceiver
) -> None:
    receiver.fail_next(2, status=503)
    sirvoy_admin.create_booking(account.token)
    assert sirvoy_admin.flush(account.token)
    [hook] = receiver.wait_for(1)
    attempts = sirvoy_admin.deliveries(account.token)
    assert [(d["attempt"], d["outcome"], d["status"]) for d in attempts] == [
        (1, "failed", 503),
        (2, "failed", 503),
        (3, "delivered", 200),
    ]
    assert len({d["delivery_id"] for d in attempts}) == 1
    assert payload(hook)["event"] == "new"


def test_the_sender_gives_up_after_max_attempts(
    sirvoy_admin: SirvoySandboxAdmin, account: SandboxAccount, receiver: WebhookReceiver
) -> None:
    sirvoy_admin.webhook_settings(account.token, max_attempts=2)
    receiver.fail_next(5)
    sirvoy_admin.create_booking(account.token)
    assert sirvoy_admin.flush(account.token)
    outcomes = [d["outcome"] for d in sirvoy_admin.deliveries(account.token)]
    assert outcomes == ["failed", "gave_up"]
    assert receiver.received == []


def test_duplicates_repeat_the_identical_body(
    sirvoy_admin: SirvoySandboxAdmin, account: SandboxAccount, receiver: WebhookReceiver
) -> None:
    sirvoy_admin.webhook_settings(account.token, duplicates=2)
    sirvoy_admin.create_booking(account.token)
    assert sirvoy_admin.flush(account.token)
    hooks = receiver.wait_for(3)
    assert len({h.body for h in hooks}) == 1
    copies = sorted(d["copy"] for d in sirvoy_admin.deliveries(account.token))
    assert copies == [0, 1, 2]


def test_dropped_events_are_logged_but_never_sent(
    sirvoy_admin: SirvoySandboxAdmin, account: SandboxAccount, receiver: WebhookReceiver
) -> None:
    settings = sirvoy_admin.webhook_settings(account.token, drop=True)
    assert settings["settings"]["drop"] is True
    booking = sirvoy_admin.create_booking(account.token)
    sirvoy_admin.create_invoice(account.token, booking["bookingId"])
    assert sirvoy_admin.flush(account.token)
    assert receiver.received == []
    log = sirvoy_admin.deliveries(account.token)
    assert [(d["event"], d["outcome"]) for d in log] == [
        ("new", "dropped"),
        ("modified", "dropped"),
    ]
    sirvoy_admin.webhook_settings(account.token, drop=False)
    sirvoy_admin.create_booking(account.token)
    assert sirvoy_admin.flush(account.token)
    assert len(receiver.wait_for(1)) == 1


def test_each_registered_url_gets_its_own_copy(
    sirvoy_admin: SirvoySandboxAdmin, account: SandboxAccount, receiver: WebhookReceiver
) -> None:
    with running_webhook_receiver() as second:
        view = sirvoy_admin.register_webhook(account.token, second.url)
        assert view["urls"] == [receiver.url, second.url]
        sirvoy_admin.create_booking(account.token)
        assert sirvoy_admin.flush(account.token)
        assert receiver.wait_for(1)[0].body == second.wait_for(1)[0].body
    sirvoy_admin.clear_webhooks(account.token)
    sirvoy_admin.create_booking(account.token)
    assert sirvoy_admin.flush(account.token)
    assert len(receiver.received) == 1


def test_accounts_have_their_own_secrets_and_hooks(
    sirvoy_admin: SirvoySandboxAdmin, account: SandboxAccount, receiver: WebhookReceiver
) -> None:
    quiet = sirvoy_admin.create_account()  # no webhook registered
    assert quiet.webhook_secret != account.webhook_secret
    sirvoy_admin.create_booking(quiet.token)
    assert sirvoy_admin.flush(quiet.token)
    assert receiver.received == []
    assert sirvoy_admin.deliveries(quiet.token) == []
    assert sirvoy_admin.stats(quiet.token)["bookings"] == 1


def test_the_receiver_answers_sirvoy_health_checks(receiver: WebhookReceiver) -> None:
    assert httpx.get(receiver.url).status_code == 200
