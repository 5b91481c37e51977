"""Test helpers for other teams: run the Sirvoy sandbox, drive it, and receive its webhooks."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from nordflow_sandboxes.kit import testing as kit
from nordflow_sandboxes.kit.testing import ManualClock, Steps, auth, operation, random_name, send
from nordflow_sandboxes.server import BackgroundServer
from nordflow_sandboxes.sirvoy.app import create_app
from nordflow_sandboxes.sirvoy.domain import WebhookSettings
from nordflow_sandboxes.sirvoy.state import SirvoyState

__all__ = [
    "FaultSpec",
    "ManualClock",
    "ReceivedWebhook",
    "RunningSirvoySandbox",
    "SandboxAccount",
    "SirvoySandboxAdmin",
    "WebhookReceiver",
    "fast_webhooks",
    "running_sirvoy_sandbox",
    "running_webhook_receiver",
    "start_sirvoy_sandbox",
]

InvoiceType = Literal["invoice", "cashReceipt"]


@dataclass(frozen=True)
class SandboxAccount:
    """An account (one property) in the sandbox, its API token and its webhook secret."""

    account_id: str
    property_id: int
    name: str
    token: str
    webhook_secret: str

    @property
    def headers(self) -> dict[str, str]:
        """Request headers a client sends for this account."""
        return {**auth(self.token), "Accept": "application/json"}


@dataclass(frozen=True)
class FaultSpec(kit.FaultSpec):
    """What `POST /sandbox/faults` takes: the read API has only GETs, and nothing to commit."""

    path_prefix: str = "/api/"
    method: Literal["GET"] | None = None

    def __post_init__(self) -> None:
        if self.after_commit:
            raise ValueError("the read API stores nothing: its faults cannot be after commit")

    def as_json(self) -> dict[str, Any]:
        """The admin request body."""
        body = super().as_json()
        del body["after_commit"]
        return body


def _account_from(data: dict[str, Any]) -> SandboxAccount:
    return SandboxAccount(
        account_id=data["account_id"],
        property_id=int(data["property_id"]),
        name=data["name"],
        token=data["token"],
        webhook_secret=data["webhook_secret"],
    )


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _call(method: str, path: str, token: str | None, **options: Any) -> Steps[Any]:
    """One admin request; its JSON answer, if any (raises on an HTTP error)."""
    headers = auth(token) if token else {}
    response = yield from send(method, path, headers=headers, **options)
    response.raise_for_status()
    return response.json() if response.content else None


class SirvoyAdminOps(kit.BearerTenantAdmin):
    """The sandbox's `/sandbox/...` admin operations; an account is named by its token.

    Every call that creates or changes a record returns the sandbox's JSON for it (the
    booking in the documented webhook shape, the invoice or payment in the read API shape).
    """

    fault_spec = FaultSpec

    @operation
    def create_account(
        self,
        name: str | None = None,
        token: str | None = None,
        webhook_secret: str | None = None,
        webhook_url: str | None = None,
    ) -> Steps[SandboxAccount]:
        """A new empty account; random name, token and webhook secret unless given."""
        body = _drop_none(
            {
                "name": name or random_name("Hotel"),
                "token": token,
                "webhook_secret": webhook_secret,
                "webhook_url": webhook_url,
            }
        )
        return _account_from((yield from _call("POST", "/sandbox/accounts", None, json=body)))

    # webhooks

    @operation
    def register_webhook(self, token: str, url: str) -> Steps[dict[str, Any]]:
        """Add a callback URL (Sirvoy: Settings > Sirvoy account > Booking event webhook)."""
        return dict((yield from _call("POST", "/sandbox/webhooks", token, json={"url": url})))

    @operation
    def clear_webhooks(self, token: str) -> Steps[None]:
        """Remove every callback URL of the account."""
        yield from _call("DELETE", "/sandbox/webhooks", token)

    @operation
    def webhook_settings(
        self,
        token: str,
        *,
        duplicates: int | None = None,
        drop: bool | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
    ) -> Steps[dict[str, Any]]:
        """Change the delivery switches; omitted ones keep their value."""
        body = _drop_none(
            {
                "duplicates": duplicates,
                "drop": drop,
                "max_attempts": max_attempts,
                "backoff_seconds": backoff_seconds,
            }
        )
        return dict((yield from _call("PUT", "/sandbox/webhooks/settings", token, json=body)))

    @operation
    def deliveries(self, token: str, limit: int = 100) -> Steps[list[dict[str, Any]]]:
        """The account's last delivery attempts, oldest first."""
        path, params = "/sandbox/webhooks/deliveries", {"limit": limit}
        return list((yield from _call("GET", path, token, params=params))["deliveries"])

    @operation
    def flush(self, token: str, timeout: float = 10.0) -> Steps[bool]:
        """Wait until every queued delivery was attempted; False if retries are still due."""
        data = yield from _call(
            "POST",
            "/sandbox/webhooks/flush",
            token,
            params={"timeout": timeout},
            timeout=timeout + 5,
        )
        return bool(data["idle"])

    # records

    @operation
    def create_booking(self, /, token: str, **fields: Any) -> Steps[dict[str, Any]]:
        """A booking (fields as `POST /sandbox/bookings` takes them); sends event `new`."""
        return dict((yield from _call("POST", "/sandbox/bookings", token, json=fields)))

    @operation
    def cancel_booking(self, token: str, booking_id: int) -> Steps[dict[str, Any]]:
        """Cancel a booking; sends event `cancelled`."""
        return dict((yield from _call("POST", f"/sandbox/bookings/{booking_id}/cancel", token)))

    @operation
    def restore_booking(self, token: str, booking_id: int) -> Steps[dict[str, Any]]:
        """Restore a cancelled booking; sends event `restored`."""
        return dict((yield from _call("POST", f"/sandbox/bookings/{booking_id}/restore", token)))

    @operation
    def create_invoice(
        self,
        /,
        token: str,
        booking_id: int,
        *,
        type: InvoiceType = "invoice",  # noqa: A002 - the API's field name
        stripe_payment: bool = False,
        **fields: Any,
    ) -> Steps[dict[str, Any]]:
        """An invoice or cash receipt (with a Stripe card payment if asked); event `modified`."""
        body = {"type": type, "stripe_payment": stripe_payment, **fields}
        path = f"/sandbox/bookings/{booking_id}/invoices"
        return dict((yield from _call("POST", path, token, json=body)))

    @operation
    def credit_invoice(self, token: str, invoice_id: int) -> Steps[dict[str, Any]]:
        """A credit invoice crediting `invoice_id` in full; event `modified`."""
        return dict((yield from _call("POST", f"/sandbox/invoices/{invoice_id}/credit", token)))

    @operation
    def register_payment(self, /, token: str, **fields: Any) -> Steps[dict[str, Any]]:
        """A payment (`invoice_id` and/or `booking_id`, `amount`, `provider`...); `modified`."""
        return dict((yield from _call("POST", "/sandbox/payments", token, json=fields)))

    @operation
    def void_payment(self, token: str, payment_id: int) -> Steps[dict[str, Any]]:
        """Void a payment (amount becomes zero); event `modified`."""
        return dict((yield from _call("POST", f"/sandbox/payments/{payment_id}/void", token)))


class SirvoySandboxAdmin(SirvoyAdminOps, kit.AdminClient):
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints."""


# ----------------------------------------------------------------------------- receiver


@dataclass(frozen=True)
class ReceivedWebhook:
    """One POST the receiver got: lower-cased headers and the raw body."""

    headers: dict[str, str]
    body: bytes
    received_at: datetime


class WebhookReceiver:
    """A loopback HTTP endpoint that records webhook POSTs (and answers GET health checks).

    `fail_next(n, status)` makes the next n POSTs fail, to exercise the sender's retries.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.Condition()
        self._received: list[ReceivedWebhook] = []
        self._failures: deque[int] = deque()
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])
        self._server = BackgroundServer(app, host=host, port=0)
        self.base_url = self._server.base_url

    @property
    def url(self) -> str:
        """The callback URL to register."""
        return f"{self.base_url}/hooks/sirvoy"

    async def _handle(self, request: Request) -> Response:
        if request.method == "GET":
            return PlainTextResponse("OK")
        body = await request.body()
        with self._lock:
            if self._failures:
                return PlainTextResponse("failing on purpose", status_code=self._failures.popleft())
            self._received.append(
                ReceivedWebhook(
                    {k.lower(): v for k, v in request.headers.items()}, body, datetime.now(UTC)
                )
            )
            self._lock.notify_all()
        return PlainTextResponse("OK")

    def start(self) -> WebhookReceiver:
        """Start serving; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop the server thread."""
        self._server.stop()

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next `count` POSTs with `status` (they are not recorded)."""
        with self._lock:
            self._failures.extend([status] * count)

    @property
    def received(self) -> list[ReceivedWebhook]:
        """Every recorded POST so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget what was received."""
        with self._lock:
            self._received.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedWebhook]:
        """Wait until at least `count` POSTs arrived; raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._received)} of {count} webhooks received")
                self._lock.wait(remaining)
            return list(self._received)


@contextmanager
def running_webhook_receiver(host: str = "127.0.0.1") -> Iterator[WebhookReceiver]:
    """`with running_webhook_receiver() as receiver:` records webhooks for the block."""
    receiver = WebhookReceiver(host).start()
    try:
        yield receiver
    finally:
        receiver.stop()


# ------------------------------------------------------------------------------ sandbox


@dataclass
class RunningSirvoySandbox(kit.RunningSandbox[SirvoyState]):
    """A sandbox served on a loopback port in a background thread."""

    @property
    def api_url(self) -> str:
        """The read API root including `/api/v1` (for raw HTTP calls). `SirvoyClient` adds
        it itself, so give the client `base_url`."""
        return f"{self.base_url}/api/v1"

    def admin(self) -> SirvoySandboxAdmin:
        """A blocking admin client (close it, or use it as a context manager)."""
        return SirvoySandboxAdmin(self.base_url)

    def create_account(
        self, name: str | None = None, token: str | None = None, webhook_url: str | None = None
    ) -> SandboxAccount:
        """Create an account directly in the state (no HTTP round trip)."""
        account, issued = self.state.create_account(
            name or random_name("Hotel"),
            token,
            webhook_urls=[webhook_url] if webhook_url else None,
        )
        return SandboxAccount(
            account.account_id, account.property_id, account.name, issued, account.webhook_secret
        )

    def stop(self) -> None:
        """Stop the server thread and the webhook sender."""
        super().stop()
        self.state.close()


def fast_webhooks(**overrides: Any) -> SirvoyState:
    """A state whose failed deliveries are retried within milliseconds (for tests)."""
    settings = WebhookSettings(backoff_seconds=0.02, max_attempts=4)
    for name, value in overrides.items():
        setattr(settings, name, value)
    return SirvoyState(webhook_defaults=settings)


_runner = kit.Runner(SirvoyState, create_app, RunningSirvoySandbox)
# `start_sirvoy_sandbox(state=None, *, host=...)`: the caller must `stop()` it.
start_sirvoy_sandbox = _runner.start
# `with running_sirvoy_sandbox() as sandbox:` serves a sandbox for the block.
running_sirvoy_sandbox = _runner.running
