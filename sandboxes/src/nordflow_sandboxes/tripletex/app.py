"""The Tripletex API v2 sandbox as a FastAPI app: `/v2/...` like Tripletex (session tokens,
HTTP Basic, `{value}` and `{fullResultSize, from, count, values}` answers), `/sandbox/...` for
tests."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from datetime import date
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nordflow_sandboxes.kit import admin
from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.faults import FaultIn as KitFaultIn
from nordflow_sandboxes.kit.gate import Admitted, Gate, route_errors, tenant_of
from nordflow_sandboxes.kit.state import TokenInUseError
from nordflow_sandboxes.tripletex import service
from nordflow_sandboxes.tripletex.errors import (
    BAD_REQUEST,
    NOT_FOUND,
    RATE_LIMITED,
    SYSTEM_ERROR,
    UNAUTHORIZED,
    TripletexError,
    invalid,
)
from nordflow_sandboxes.tripletex.service import Company
from nordflow_sandboxes.tripletex.state import TripletexState

logger = logging.getLogger("nordflow_sandboxes.tripletex")

API_PREFIX = "/v2"
SESSION_CREATE = f"{API_PREFIX}/token/session/:create"


def _is_api_path(path: str) -> bool:
    """The API behind session authentication (creating a session is not)."""
    return (path == API_PREFIX or path.startswith(f"{API_PREFIX}/")) and path != SESSION_CREATE


def create_app(state: TripletexState | None = None) -> FastAPI:
    """Build the sandbox app around `state` (a fresh default state when None)."""
    state = state or TripletexState()
    return admin.sandbox_app(
        state,
        "tripletex",
        title="Nordflow Tripletex API v2 sandbox",
        version="2",
        routers=[_session_router(state), _api_router(state), _admin_router(state)],
        gate=_gate(state),
    )


def _unauthorized(message: str) -> Response:
    return TripletexError(
        401, UNAUTHORIZED, message, headers={"WWW-Authenticate": 'Basic realm="Tripletex"'}
    ).response()


def _session_token(request: Request) -> str | None:
    """The password of `Authorization: Basic base64(<company id or 0>:<session token>)`."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, _, password = decoded.partition(":")
    return password or None


def _rate_limited(seconds: int, limit: int) -> Response:
    return TripletexError(
        429,
        RATE_LIMITED,
        "Too many requests",
        headers={
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": str(seconds),
        },
    ).response()


def _fault_response(fault: Fault, _admitted: Admitted[Company]) -> Response:
    status = fault.status or 500
    if status == 429:
        return _rate_limited(max(fault.retry_after_seconds, 0), 0)
    return TripletexError(status, SYSTEM_ERROR, f"Injected fault: HTTP {status}").response()


def _gate(state: TripletexState) -> Gate[Company]:
    def admit(request: Request) -> Admitted[Company] | Response:
        token = _session_token(request)
        if token is None:
            return _unauthorized("Send the session token with HTTP Basic (user 0)")
        session = state.session(token)
        company = state.company(session.company_id) if session is not None else None
        if company is None:
            return _unauthorized("Invalid or expired session token")
        wait = state.acquire_rate(company)
        refusal = None if wait is None else _rate_limited(wait, state.rate_limiter.limit)
        return Admitted(company, refusal)

    return Gate(
        is_api_path=_is_api_path,
        admit=admit,
        fault_response=_fault_response,
        crash_response=lambda: TripletexError(500, SYSTEM_ERROR, "Internal error").response(),
        errors=route_errors(
            TripletexError, NOT_FOUND, BAD_REQUEST, unknown="Not found", malformed="Bad request: "
        ),
        logger=logger,
    )


def _company(request: Request) -> Company:
    return cast(Company, tenant_of(request))


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _value(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"value": body}, status_code=status)


def _listing(items: list[Any], request: Request, view: Callable[[Any], Any]) -> JSONResponse:
    chosen, start, total = service.page(items, dict(request.query_params))
    return JSONResponse(
        {
            "fullResultSize": total,
            "from": start,
            "count": len(chosen),
            "versionDigest": None,
            "values": [view(item) for item in chosen],
        }
    )


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        document = json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise TripletexError(400, BAD_REQUEST, f"Request body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise TripletexError(400, BAD_REQUEST, "Request body must be a JSON object")
    return document


def _id(raw: str) -> int:
    if not raw.isdigit():
        raise TripletexError(400, BAD_REQUEST, f"Not an id: {raw!r}")
    return int(raw)


# ----------------------------------------------------------------------------- session


def _session_router(state: TripletexState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    @router.put("/token/session/:create")
    async def create_session(
        consumerToken: str = "",  # noqa: N803 - Tripletex's parameter names
        employeeToken: str = "",  # noqa: N803
        expirationDate: str = "",  # noqa: N803
    ) -> JSONResponse:
        """A session token for the consumer and employee tokens, valid to `expirationDate`."""
        try:
            expires = date.fromisoformat(expirationDate)
        except ValueError:
            raise invalid("expirationDate", "Ugyldig dato (yyyy-MM-dd).") from None
        if expires < state.today():
            raise invalid("expirationDate", "Datoen kan ikke være i fortiden.")
        token = state.create_session(consumerToken, employeeToken, expires)
        if token is None:
            raise TripletexError(403, UNAUTHORIZED, "Invalid consumer or employee token")
        return _value(
            {
                "id": 0,
                "version": 0,
                "consumerToken": {"id": 0},
                "employeeToken": {"id": 0},
                "expirationDate": expires.isoformat(),
                "token": token,
            }
        )

    return router


# ------------------------------------------------------------------------------ the API


def _api_router(state: TripletexState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    @router.get("/token/session/>whoAmI")
    async def who_am_i(request: Request) -> JSONResponse:
        company = _company(request)
        return _value(
            {"employeeId": company.employee_id, "companyId": company.company_id, "language": "no"}
        )

    @router.get("/ledger/vatType")
    async def vat_types(request: Request) -> JSONResponse:
        base = _base(request)
        items = service.vat_types(dict(request.query_params))
        return _listing(items, request, lambda v: service.vat_type_json(v, base))

    # customers -----------------------------------------------------------------------

    @router.get("/customer")
    async def search_customers(request: Request) -> JSONResponse:
        base = _base(request)
        with state.lock:
            items = service.search_customers(_company(request), dict(request.query_params))
            return _listing(items, request, lambda r: service.customer_json(r, base))

    @router.get("/customer/{customer_id}")
    async def get_customer(request: Request, customer_id: str) -> JSONResponse:
        with state.lock:
            record = service.get(_company(request).customers, _id(customer_id), "customer")
            return _value(service.customer_json(record, _base(request)))

    @router.post("/customer")
    async def post_customer(request: Request) -> JSONResponse:
        body = await _body(request)
        with state.lock:
            record = service.create_customer(_company(request), body, state.now())
            return _value(service.customer_json(record, _base(request)), 201)

    @router.put("/customer/{customer_id}")
    async def put_customer(request: Request, customer_id: str) -> JSONResponse:
        body = await _body(request)
        with state.lock:
            record = service.update_customer(_company(request), _id(customer_id), body, state.now())
            return _value(service.customer_json(record, _base(request)))

    # projects ------------------------------------------------------------------------

    @router.get("/project")
    async def search_projects(request: Request) -> JSONResponse:
        base = _base(request)
        with state.lock:
            items = service.search_projects(_company(request), dict(request.query_params))
            return _listing(items, request, lambda r: service.project_json(r, base))

    @router.get("/project/{project_id}")
    async def get_project(request: Request, project_id: str) -> JSONResponse:
        with state.lock:
            record = service.get(_company(request).projects, _id(project_id), "project")
            return _value(service.project_json(record, _base(request)))

    @router.post("/project")
    async def post_project(request: Request) -> JSONResponse:
        body = await _body(request)
        with state.lock:
            record = service.create_project(_company(request), body, state.now(), state.today())
            return _value(service.project_json(record, _base(request)), 201)

    @router.put("/project/{project_id}")
    async def put_project(request: Request, project_id: str) -> JSONResponse:
        body = await _body(request)
        with state.lock:
            record = service.update_project(_company(request), _id(project_id), body, state.now())
            return _value(service.project_json(record, _base(request)))

    # products ------------------------------------------------------------------------

    @router.get("/product")
    async def search_products(request: Request) -> JSONResponse:
        base = _base(request)
        with state.lock:
            items = service.search_products(_company(request), dict(request.query_params))
            return _listing(items, request, lambda r: service.product_json(r, base))

    @router.get("/product/{product_id}")
    async def get_product(request: Request, product_id: str) -> JSONResponse:
        with state.lock:
            record = service.get(_company(request).products, _id(product_id), "product")
            return _value(service.product_json(record, _base(request)))

    @router.post("/product")
    async def post_product(request: Request) -> JSONResponse:
        body = await _body(request)
        with state.lock:
            record = service.create_product(_company(request), body, state.now())
            return _value(service.product_json(record, _base(request)), 201)

    # orders and invoices ---------------------------------------------------------------

    def expand_lines(request: Request) -> bool:
        return "orderLines(" in request.query_params.get("fields", "")

    @router.get("/order")
    async def search_orders(request: Request) -> JSONResponse:
        base, lines = _base(request), expand_lines(request)
        with state.lock:
            items = service.search_orders(_company(request), dict(request.query_params))
            return _listing(items, request, lambda o: service.order_json(o, base, lines=lines))

    @router.get("/order/{order_id}")
    async def get_order(request: Request, order_id: str) -> JSONResponse:
        with state.lock:
            order = _company(request).orders.get(_id(order_id))
            if order is None:
                raise TripletexError(404, NOT_FOUND, f"Object not found: order {order_id}")
            return _value(service.order_json(order, _base(request), lines=expand_lines(request)))

    @router.post("/order")
    async def post_order(request: Request) -> JSONResponse:
        body = await _body(request)
        with state.lock:
            order = service.create_order(_company(request), body, state.now())
            return _value(service.order_json(order, _base(request), lines=True), 201)

    @router.put("/order/{order_id}/:invoice")
    async def invoice_order(
        request: Request,
        order_id: str,
        invoiceDate: str = "",  # noqa: N803 - Tripletex's parameter names
        sendToCustomer: bool = True,  # noqa: N803
    ) -> JSONResponse:
        try:
            invoice_date = date.fromisoformat(invoiceDate)
        except ValueError:
            raise invalid("invoiceDate", "Ugyldig dato (yyyy-MM-dd).") from None
        with state.lock:
            invoice = service.invoice_order(
                _company(request), _id(order_id), invoice_date, sendToCustomer, state.now()
            )
            return _value(service.invoice_json(invoice, _base(request)))

    @router.get("/invoice")
    async def search_invoices(request: Request) -> JSONResponse:
        base = _base(request)
        with state.lock:
            items = service.search_invoices(_company(request), dict(request.query_params))
            return _listing(items, request, lambda i: service.invoice_json(i, base))

    @router.get("/invoice/{invoice_id}")
    async def get_invoice(request: Request, invoice_id: str) -> JSONResponse:
        with state.lock:
            invoice = _company(request).invoices.get(_id(invoice_id))
            if invoice is None:
                raise TripletexError(404, NOT_FOUND, f"Object not found: invoice {invoice_id}")
            return _value(service.invoice_json(invoice, _base(request)))

    return router


# ------------------------------------------------------------------------ admin routes


class CompanyIn(BaseModel):
    """Body of `POST /sandbox/companies`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    employee_token: str | None = Field(default=None, min_length=8, max_length=500)
    consumer_token: str | None = Field(default=None, min_length=8, max_length=500)


class FaultIn(KitFaultIn):
    """Body of `POST /sandbox/faults`."""

    path_prefix: str = Field(default=f"{API_PREFIX}/", pattern=r"^/v2(/.*)?$")


def _admin_router(state: TripletexState) -> APIRouter:
    router = admin.admin_router()
    company_of = admin.bearer_tenant(state.company_for_employee_token, "company's employee")
    admin.add_tenant_routes(router, state, company_of, FaultIn, listing="companies")

    @router.post("/companies", status_code=201)
    async def create_company(body: CompanyIn) -> dict[str, Any]:
        try:
            company, employee, consumer = state.create_company(
                body.name, body.employee_token, body.consumer_token
            )
        except TokenInUseError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {
            "company_id": company.company_id,
            "name": company.name,
            "employee_token": employee,
            "consumer_token": consumer,
        }

    @router.post("/sessions/expire")
    async def expire_sessions(request: Request) -> dict[str, int]:
        """End the company's session tokens now (the next API call answers 401)."""
        return {"expired": state.expire_sessions(company_of(request))}

    @router.get("/records")
    async def records(request: Request) -> dict[str, Any]:
        """Everything the company holds, for assertions (customers … invoices)."""
        company = company_of(request)
        base = str(request.base_url).rstrip("/")
        with state.lock:
            return {
                "customers": [service.customer_json(r, base) for r in company.customers.values()],
                "projects": [service.project_json(r, base) for r in company.projects.values()],
                "products": [service.product_json(r, base) for r in company.products.values()],
                "orders": [
                    service.order_json(o, base, lines=True) for o in company.orders.values()
                ],
                "invoices": [service.invoice_json(i, base) for i in company.invoices.values()],
            }

    return router
