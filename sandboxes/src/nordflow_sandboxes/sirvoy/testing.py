"""Test helpers for other teams: run the Sirvoy sandbox, drive it, and receive its webhooks."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from nordflow_sandboxes.server import BackgroundServer
from nordflow_sandboxes.sirvoy.app import create_app
from nordflow_sandboxes.sirvoy.domain import WebhookSettings
from nordflow_sandboxes.sirvoy.state import SirvoyState

FaultStatus = Literal[429, 500, 502, 503, 504]
InvoiceType = Literal["invoice", "cashReceipt"]


@dataclass
class ManualClock:
    """A wall clock tests move by hand (pass it as `SirvoyState(clock=...)`)."""

    current: datetime = field(default_factory=lambda: datetime(2025, 3, 10, 11, 15, 30, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        """Move forward by `timedelta(**delta)`."""
        self.current += timedelta(**delta)


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
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


@dataclass(frozen=True)
class FaultSpec:
    """What `POST /sandbox/faults` takes (see the README for the semantics)."""

    status: FaultStatus | None = 500
    count: int = 1
    path_prefix: str = "/api/"
    method: Literal["GET"] | None = None
    delay_seconds: float = 0.0
    retry_after_seconds: int = 1

    def as_json(self) -> dict[str, Any]:
        """The admin request body."""
        return {
            "status": self.status,
            "count": self.count,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "delay_seconds": self.delay_seconds,
            "retry_after_seconds": self.retry_after_seconds,
        }


def _account_from(data: dict[str, Any]) -> SandboxAccount:
    return SandboxAccount(
        account_id=data["account_id"],
        property_id=int(data["property_id"]),
        name=data["name"],
        token=data["token"],
        webhook_secret=data["webhook_secret"],
    )


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class SirvoySandboxAdmin:
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints.

    Every call that creates or changes a record returns the sandbox's JSON for it (the
    booking in the documented webhook shape, the invoice or payment in the read API shape).
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def __enter__(self) -> SirvoySandboxAdmin:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, token: str | None, **kwargs: Any) -> Any:
        headers = _auth(token) if token else {}
        response = self._client.request(method, path, headers=headers, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def healthy(self) -> bool:
        """True when `/sandbox/healthz` answers ok."""
        return self._client.get("/sandbox/healthz").status_code == 200

    def create_account(
        self,
        name: str | None = None,
        token: str | None = None,
        webhook_secret: str | None = None,
        webhook_url: str | None = None,
    ) -> SandboxAccount:
        """A new empty account; random name, token and webhook secret unless given."""
        body = _drop_none(
            {
                "name": name or f"Hotel {secrets.token_hex(4)}",
                "token": token,
                "webhook_secret": webhook_secret,
                "webhook_url": webhook_url,
            }
        )
        return _account_from(self._send("POST", "/sandbox/accounts", None, json=body))

    # webhooks

    def register_webhook(self, token: str, url: str) -> dict[str, Any]:
        """Add a callback URL (Sirvoy: Settings > Sirvoy account > Booking event webhook)."""
        return dict(self._send("POST", "/sandbox/webhooks", token, json={"url": url}))

    def clear_webhooks(self, token: str) -> None:
        """Remove every callback URL of the account."""
        self._send("DELETE", "/sandbox/webhooks", token)

    def webhook_settings(
        self,
        token: str,
        *,
        duplicates: int | None = None,
        drop: bool | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Change the delivery switches; omitted ones keep their value."""
        body = _drop_none(
            {
                "duplicates": duplicates,
                "drop": drop,
                "max_attempts": max_attempts,
                "backoff_seconds": backoff_seconds,
            }
        )
        return dict(self._send("PUT", "/sandbox/webhooks/settings", token, json=body))

    def deliveries(self, token: str, limit: int = 100) -> list[dict[str, Any]]:
        """The account's last delivery attempts, oldest first."""
        data = self._send("GET", "/sandbox/webhooks/deliveries", token, params={"limit": limit})
        return list(data["deliveries"])

    def flush(self, token: str, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery was attempted; False if retries are still due."""
        data = self._send(
            "POST",
            "/sandbox/webhooks/flush",
            token,
            params={"timeout": timeout},
            timeout=timeout + 5,
        )
        return bool(data["idle"])

    # records

    def create_booking(self, token: str, **fields: Any) -> dict[str, Any]:
        """A booking (fields as `POST /sandbox/bookings` takes them); sends event `new`."""
        return dict(self._send("POST", "/sandbox/bookings", token, json=fields))

    def cancel_booking(self, token: str, booking_id: int) -> dict[str, Any]:
        """Cancel a booking; sends event `cancelled`."""
        return dict(self._send("POST", f"/sandbox/bookings/{booking_id}/cancel", token))

    def restore_booking(self, token: str, booking_id: int) -> dict[str, Any]:
        """Restore a cancelled booking; sends event `restored`."""
        return dict(self._send("POST", f"/sandbox/bookings/{booking_id}/restore", token))

    def create_invoice(
        self,
        token: str,
        booking_id: int,
        *,
        type: InvoiceType = "invoice",  # noqa: A002 - the API's field name
        stripe_payment: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """An invoice or cash receipt (with a Stripe card payment if asked); event `modified`."""
        body = {"type": type, "stripe_payment": stripe_payment, **fields}
        return dict(
            self._send("POST", f"/sandbox/bookings/{booking_id}/invoices", token, json=body)
        )

    def credit_invoice(self, token: str, invoice_id: int) -> dict[str, Any]:
        """A credit invoice crediting `invoice_id` in full; event `modified`."""
        return dict(self._send("POST", f"/sandbox/invoices/{invoice_id}/credit", token))

    def register_payment(self, token: str, **fields: Any) -> dict[str, Any]:
        """A payment (`invoice_id` and/or `booking_id`, `amount`, `provider`...); `modified`."""
        return dict(self._send("POST", "/sandbox/payments", token, json=fields))

    def void_payment(self, token: str, payment_id: int) -> dict[str, Any]:
        """Void a payment (amount becomes zero); event `modified`."""
        return dict(self._send("POST", f"/sandbox/payments/{payment_id}/void", token))

    # faults, logs

    def inject_fault(self, token: str, fault: FaultSpec | None = None) -> None:
        """Queue a fault for the read API of the account that `token` opens."""
        self._send("POST", "/sandbox/faults", token, json=(fault or FaultSpec()).as_json())

    def clear_faults(self, token: str) -> None:
        """Drop the account's pending faults."""
        self._send("DELETE", "/sandbox/faults", token)

    def requests(self, token: str, limit: int = 100) -> list[dict[str, Any]]:
        """The account's last read-API requests, oldest first."""
        data = self._send("GET", "/sandbox/requests", token, params={"limit": limit})
        return list(data["requests"])

    def stats(self, token: str) -> dict[str, Any]:
        """Counts of the account's bookings, invoices, payments, requests and webhooks."""
        return dict(self._send("GET", "/sandbox/stats", token))


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
class RunningSirvoySandbox:
    """A sandbox served on a loopback port in a background thread."""

    base_url: str
    state: SirvoyState
    _server: BackgroundServer

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
            name or f"Hotel {secrets.token_hex(4)}",
            token,
            webhook_urls=[webhook_url] if webhook_url else None,
        )
        return SandboxAccount(
            account.account_id, account.property_id, account.name, issued, account.webhook_secret
        )

    def stop(self) -> None:
        """Stop the server thread and the webhook sender."""
        self._server.stop()
        self.state.close()


def fast_webhooks(**overrides: Any) -> SirvoyState:
    """A state whose failed deliveries are retried within milliseconds (for tests)."""
    settings = WebhookSettings(backoff_seconds=0.02, max_attempts=4)
    for name, value in overrides.items():
        setattr(settings, name, value)
    return SirvoyState(webhook_defaults=settings)


def start_sirvoy_sandbox(
    state: SirvoyState | None = None, *, host: str = "127.0.0.1"
) -> RunningSirvoySandbox:
    """Serve a sandbox on a free port of `host`; the caller must `stop()` it."""
    state = state or SirvoyState()
    server = BackgroundServer(create_app(state), host=host, port=0)
    base_url = server.start()
    return RunningSirvoySandbox(base_url=base_url, state=state, _server=server)


@contextmanager
def running_sirvoy_sandbox(
    state: SirvoyState | None = None, *, host: str = "127.0.0.1"
) -> Iterator[RunningSirvoySandbox]:
    """`with running_sirvoy_sandbox() as sandbox:` serves a sandbox for the block."""
    sandbox = start_sirvoy_sandbox(state, host=host)
    try:
        yield sandbox
    finally:
        sandbox.stop()
