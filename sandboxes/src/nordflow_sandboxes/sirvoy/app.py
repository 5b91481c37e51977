"""The Sirvoy sandbox as a FastAPI app: the read API under `/api/v1`, the admin under `/sandbox`.

Sirvoy publishes no REST API (support FAQ "Kan man använda en öppen API i Sirvoy?": "Vi
erbjuder inte en öppen API", only the callback). ASSUMPTION (confirm with Sirvoy): the read
API here — paths, bearer token, `modifiedSince` and keyset paging, the JSON shapes — is the
sandbox's design, so that a catch-up poll can find what a missed webhook carried.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Any, Literal, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from nordflow_sandboxes.kit import admin
from nordflow_sandboxes.kit.faults import Fault, ReadFaultIn
from nordflow_sandboxes.kit.gate import Admitted, Gate, bearer, tenant_of
from nordflow_sandboxes.kit.state import TokenInUseError
from nordflow_sandboxes.sirvoy import serialize as out
from nordflow_sandboxes.sirvoy import service
from nordflow_sandboxes.sirvoy.domain import Account
from nordflow_sandboxes.sirvoy.errors import (
    INJECTED_FAULT,
    INTERNAL_ERROR,
    INVALID_PARAMETER,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
    SirvoyApiError,
)
from nordflow_sandboxes.sirvoy.state import MAX_WEBHOOK_URLS, SirvoyState

logger = logging.getLogger("nordflow_sandboxes.sirvoy")

API_PREFIX = "/api/v1"


def create_app(state: SirvoyState | None = None) -> FastAPI:
    """Build the sandbox app around `state` (a fresh default state when None)."""
    state = state or SirvoyState()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    return admin.sandbox_app(
        state,
        "sirvoy",
        title="Nordflow Sirvoy sandbox",
        version="2.0",
        routers=[_api_router(state), _admin_router(state)],
        gate=_gate(state),
        lifespan=lifespan,
    )


# ------------------------------------------------------------------------------ helpers


def _is_api_path(path: str) -> bool:
    return path.startswith("/api/")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return SirvoyApiError(status, code, message, headers).response()


def _account(request: Request) -> Account:
    return cast(Account, tenant_of(request))


def _fault_response(fault: Fault, _admitted: Admitted[Account]) -> Response:
    status = fault.status or 500
    if status == 429:
        retry_after = str(max(fault.retry_after_seconds, 0))
        return _error(429, RATE_LIMITED, "Too many requests", headers={"Retry-After": retry_after})
    return _error(status, INJECTED_FAULT, f"Injected fault: HTTP {status}")


# --------------------------------------------------------------------------------- gate


def _gate(state: SirvoyState) -> Gate[Account]:
    """Authentication, fault injection and the request log for `/api/...`."""

    def admit(request: Request) -> Admitted[Account] | Response:
        token = bearer(request)
        account = state.account_for_token(token) if token else None
        if account is None:
            # The message never echoes what was sent: it may be somebody's real token.
            return _error(401, UNAUTHORIZED, "Send a valid API token as 'Authorization: Bearer'")
        return Admitted(account)

    return Gate(
        is_api_path=_is_api_path,
        admit=admit,
        fault_response=_fault_response,
        crash_response=lambda: _error(500, INTERNAL_ERROR, "Internal error"),
        errors=(_http_error, _invalid),
        logger=logger,
    )


def _http_error(request: Request, error: StarletteHTTPException) -> SirvoyApiError:
    if error.status_code == 404:
        return SirvoyApiError(404, NOT_FOUND, f"No such resource: {request.url.path}")
    return SirvoyApiError(error.status_code, INVALID_PARAMETER, str(error.detail))


def _invalid(_request: Request, error: RequestValidationError) -> SirvoyApiError:
    return SirvoyApiError(400, INVALID_PARAMETER, f"Invalid request: {error.errors()}")


# ------------------------------------------------------------------------- read API


def _api_router(state: SirvoyState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    def page_body(request: Request, page: service.Page, data: list[dict[str, Any]]) -> JSONResponse:
        return JSONResponse(
            {
                "data": data,
                "meta": {
                    "pageSize": service.parse_page_size(request.query_params.get("pageSize")),
                    "nextCursor": page.next_cursor,
                    "serverTime": out.instant(request.state.server_time),
                },
            }
        )

    def query(request: Request) -> dict[str, str]:
        # Taken before the listing, so a change committed during it is at or after this time.
        request.state.server_time = state.now()
        return dict(request.query_params)

    @router.get("/invoices")
    async def list_invoices(request: Request) -> JSONResponse:
        account = _account(request)
        with state.lock:
            page = service.list_invoices(account, query(request))
            return page_body(request, page, [out.invoice(account, i) for i in page.items])

    @router.get("/invoices/{invoice_id}")
    async def get_invoice(request: Request, invoice_id: int) -> JSONResponse:
        account = _account(request)
        with state.lock:
            return JSONResponse(out.invoice(account, service.get_invoice(account, invoice_id)))

    @router.get("/payments")
    async def list_payments(request: Request) -> JSONResponse:
        account = _account(request)
        with state.lock:
            page = service.list_payments(account, query(request))
            return page_body(request, page, [out.payment(p) for p in page.items])

    @router.get("/payments/{payment_id}")
    async def get_payment(request: Request, payment_id: int) -> JSONResponse:
        account = _account(request)
        with state.lock:
            return JSONResponse(out.payment(service.get_payment(account, payment_id)))

    @router.get("/bookings/{booking_id}")
    async def get_booking(request: Request, booking_id: int) -> JSONResponse:
        account = _account(request)
        with state.lock:
            return JSONResponse(out.booking(account, service.get_booking(account, booking_id)))

    return router


# ------------------------------------------------------------------------ admin bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(_Body):
    """Body of `POST /sandbox/accounts`."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    token: str | None = Field(default=None, min_length=8, max_length=500)
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=500)
    webhook_url: str | None = Field(default=None, pattern=r"^https?://")


class WebhookIn(_Body):
    """Body of `POST /sandbox/webhooks`."""

    url: str = Field(pattern=r"^https?://", max_length=2000)


class WebhookSettingsIn(_Body):
    """Body of `PUT /sandbox/webhooks/settings` (omitted fields keep their value)."""

    duplicates: int | None = Field(default=None, ge=0, le=5)
    drop: bool | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    backoff_seconds: float | None = Field(default=None, ge=0.0, le=3600.0)


class RoomIn(_Body):
    """One room of `POST /sandbox/bookings`."""

    room_type_name: str = "Double room"
    room_name: str = "101"
    adults: int = Field(default=2, ge=1, le=20)
    quantity: int = Field(default=1, ge=1, le=50)
    price: Decimal = Field(default=Decimal(1200), ge=0, le=1_000_000)


class BookingIn(_Body):
    """Body of `POST /sandbox/bookings`."""

    guest: dict[str, Any] | None = None
    arrival_date: date | None = None
    nights: int = Field(default=2, ge=1, le=365)
    rooms: list[RoomIn] = Field(default_factory=list, max_length=50)
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    booking_source: str = "Front desk"
    channel_booking_id: str | None = None


class RowIn(_Body):
    """One row of `POST /sandbox/bookings/{id}/invoices` (unit price includes VAT)."""

    description: str = Field(min_length=1, max_length=500)
    quantity: Decimal = Field(default=Decimal(1), gt=0, le=100_000)
    unit_price: Decimal = Field(ge=0, le=10_000_000)
    vat_rate: Decimal = Field(default=service.ACCOMMODATION_VAT, ge=0, le=100)
    account_code: str | None = service.ACCOMMODATION_ACCOUNT


class InvoiceIn(_Body):
    """Body of `POST /sandbox/bookings/{id}/invoices`."""

    type: Literal["invoice", "cashReceipt"] = "invoice"
    invoice_date: date | None = None
    due_days: int = Field(default=30, ge=0, le=365)
    rows: list[RowIn] = Field(default_factory=list, max_length=200)
    recipient: dict[str, Any] | None = None
    stripe_payment: bool = False
    transfer_payment_ids: list[int] = Field(default_factory=list, max_length=50)


class PaymentIn(_Body):
    """Body of `POST /sandbox/payments`: on an invoice, or on a booking (a prepayment)."""

    booking_id: int | None = None
    invoice_id: int | None = None
    amount: Decimal | None = Field(default=None, ge=-10_000_000, le=10_000_000)
    payment_date: date | None = None
    method: str = Field(default="bankTransfer", min_length=1, max_length=50)
    provider: str | None = Field(default=None, max_length=50)
    provider_reference: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _target(self) -> PaymentIn:
        if self.booking_id is None and self.invoice_id is None:
            raise ValueError("give invoice_id, booking_id, or both")
        return self


class FaultIn(ReadFaultIn):
    """Body of `POST /sandbox/faults`: the read API has only GETs, and nothing to commit."""

    path_prefix: str = Field(default="/api/", pattern=r"^/api(/.*)?$")
    method: Literal["GET"] | None = None


DEFAULT_GUEST: dict[str, Any] = {
    "firstName": "Anna",
    "lastName": "Andersson",
    "businessName": None,
    "address": "Storgatan 1",
    "postcode": "111 22",
    "city": "Stockholm",
    "country": "SE",
    "phone": "+46701234567",
    "email": "anna.andersson@example.com",
    "passportNo": None,
    "language": "sv",
    "message": None,
}


# ----------------------------------------------------------------------- admin routes


def _admin_router(state: SirvoyState) -> APIRouter:
    router = admin.admin_router()
    account_of = admin.bearer_tenant(state.account_for_token, "account")

    @router.post("/accounts", status_code=201)
    async def create_account(body: AccountIn) -> dict[str, Any]:
        try:
            account, token = state.create_account(
                body.name or "Sandbox Hotel",
                body.token,
                body.webhook_secret,
                [body.webhook_url] if body.webhook_url else None,
            )
        except TokenInUseError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {
            "account_id": account.account_id,
            "property_id": account.property_id,
            "name": account.name,
            "token": token,
            "webhook_secret": account.webhook_secret,
        }

    # webhooks ------------------------------------------------------------------------

    def webhook_view(account: Account) -> dict[str, Any]:
        return {"urls": list(account.webhook_urls), "settings": account.webhook.as_json()}

    @router.get("/webhooks")
    async def get_webhooks(request: Request) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            return webhook_view(account)

    @router.post("/webhooks", status_code=201)
    async def add_webhook(request: Request, body: WebhookIn) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            if body.url not in account.webhook_urls:
                if len(account.webhook_urls) >= MAX_WEBHOOK_URLS:
                    raise HTTPException(409, f"at most {MAX_WEBHOOK_URLS} webhooks per account")
                account.webhook_urls.append(body.url)
            return webhook_view(account)

    @router.delete("/webhooks", status_code=204)
    async def clear_webhooks(request: Request) -> Response:
        account = account_of(request)
        with state.lock:
            account.webhook_urls.clear()
        return Response(status_code=204)

    @router.put("/webhooks/settings")
    async def webhook_settings(request: Request, body: WebhookSettingsIn) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            for name, value in body.model_dump(exclude_none=True).items():
                setattr(account.webhook, name, value)
            return webhook_view(account)

    @router.get("/webhooks/deliveries")
    async def deliveries(request: Request, limit: int = 100) -> dict[str, Any]:
        account = account_of(request)
        records = state.recent_deliveries(account, max(0, min(limit, 5000)))
        return {"deliveries": [r.as_json() for r in records]}

    @router.post("/webhooks/flush")
    def flush(request: Request, timeout: float = 10.0) -> dict[str, Any]:
        """Wait (in a worker thread) until every queued delivery has been attempted."""
        account_of(request)
        idle = state.webhooks.wait_idle(max(0.0, min(timeout, 120.0)))
        return {"idle": idle, "pending": state.webhooks.pending()}

    # records -------------------------------------------------------------------------

    @router.post("/bookings", status_code=201)
    async def create_booking(request: Request, body: BookingIn) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            booking = service.create_booking(
                account,
                now=state.now(),
                today=state.today(),
                guest={**DEFAULT_GUEST, **(body.guest or {})},
                arrival_date=body.arrival_date,
                nights=body.nights,
                rooms=[service.RoomSpec(**room.model_dump()) for room in body.rooms],
                currency=body.currency,
                booking_source=body.booking_source,
                channel_booking_id=body.channel_booking_id,
            )
            state.publish(account, booking, "new")
            return out.booking(account, booking)

    def set_cancelled(request: Request, booking_id: int, cancelled: bool) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            booking = service.set_cancelled(account, booking_id, cancelled, state.now())
            state.publish(account, booking, "cancelled" if cancelled else "restored")
            return out.booking(account, booking)

    @router.post("/bookings/{booking_id}/cancel")
    async def cancel_booking(request: Request, booking_id: int) -> dict[str, Any]:
        return set_cancelled(request, booking_id, cancelled=True)

    @router.post("/bookings/{booking_id}/restore")
    async def restore_booking(request: Request, booking_id: int) -> dict[str, Any]:
        return set_cancelled(request, booking_id, cancelled=False)

    @router.post("/bookings/{booking_id}/invoices", status_code=201)
    async def create_invoice(request: Request, booking_id: int, body: InvoiceIn) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            invoice = service.create_invoice(
                account,
                booking_id,
                kind=body.type,
                now=state.now(),
                today=state.today(),
                invoice_date=body.invoice_date,
                due_days=body.due_days,
                rows=[service.RowSpec(**row.model_dump()) for row in body.rows],
                recipient=body.recipient,
                stripe_payment=body.stripe_payment,
                transfer_payment_ids=body.transfer_payment_ids,
            )
            state.publish(account, account.bookings[booking_id], "modified")
            return out.invoice(account, invoice)

    @router.post("/invoices/{invoice_id}/credit", status_code=201)
    async def credit_invoice(request: Request, invoice_id: int) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            credit = service.credit_invoice(
                account, invoice_id, now=state.now(), today=state.today()
            )
            state.publish(account, account.bookings[credit.booking_id], "modified")
            return out.invoice(account, credit)

    @router.post("/payments", status_code=201)
    async def create_payment(request: Request, body: PaymentIn) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            payment = service.register_payment(
                account, now=state.now(), today=state.today(), **body.model_dump()
            )
            state.publish(account, account.bookings[payment.booking_id], "modified")
            return out.payment(payment)

    @router.post("/payments/{payment_id}/void")
    async def void_payment(request: Request, payment_id: int) -> dict[str, Any]:
        account = account_of(request)
        with state.lock:
            payment = service.void_payment(account, payment_id, state.now())
            state.publish(account, account.bookings[payment.booking_id], "modified")
            return out.payment(payment)

    admin.add_tenant_routes(router, state, account_of, FaultIn, listing="accounts")
    return router
