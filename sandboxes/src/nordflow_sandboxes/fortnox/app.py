"""The Fortnox API v3 sandbox as a FastAPI app: `/3/...` and `/oauth-v1/token` like Fortnox,
`/sandbox/...` for tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nordflow_sandboxes.fortnox import serialize as out
from nordflow_sandboxes.fortnox import service
from nordflow_sandboxes.fortnox.domain import Company
from nordflow_sandboxes.fortnox.errors import (
    INVALID_LOGIN,
    INVALID_PARAMETER,
    MISSING_CREDENTIALS,
    SANDBOX_INJECTED_FAULT,
    SANDBOX_NOT_FOUND,
    SANDBOX_RATE_LIMITED,
    SYSTEM_EXCEPTION,
    FortnoxError,
)
from nordflow_sandboxes.fortnox.fields import decode_wrapped
from nordflow_sandboxes.fortnox.oauth import DEFAULT_SCOPE, TOKEN_PATH, token_router
from nordflow_sandboxes.fortnox.registers import registers_router
from nordflow_sandboxes.fortnox.state import FortnoxState
from nordflow_sandboxes.kit import admin
from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.faults import FaultIn as KitFaultIn
from nordflow_sandboxes.kit.gate import (
    Admitted,
    Gate,
    bearer,
    prefix_matcher,
    route_errors,
    tenant_of,
)
from nordflow_sandboxes.kit.oauth import ClientSecretMismatchError
from nordflow_sandboxes.kit.state import TokenInUseError
from nordflow_sandboxes.kit.values import STOCKHOLM

logger = logging.getLogger("nordflow_sandboxes.fortnox")

API_PREFIX = "/3"
_is_api_path = prefix_matcher(API_PREFIX)


def create_app(state: FortnoxState | None = None) -> FastAPI:
    """Build the sandbox app around `state` (a fresh default state when None)."""
    state = state or FortnoxState()
    return admin.sandbox_app(
        state,
        "fortnox",
        title="Nordflow Fortnox API v3 sandbox",
        version="3",
        routers=[
            _fortnox_router(state),
            registers_router(state),
            token_router(state.oauth),
            _admin_router(state),
        ],
        gate=_gate(state),
    )


# ------------------------------------------------------------------------------ helpers


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return FortnoxError(status, code, message, headers).response()


def _company(request: Request) -> Company:
    return cast(Company, tenant_of(request))


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _query(request: Request) -> dict[str, str]:
    return {key.lower(): value for key, value in request.query_params.items()}


def _rate_limited(retry_after: int) -> JSONResponse:
    return _error(
        429,
        SANDBOX_RATE_LIMITED,
        f"Too Many Requests: limit exceeded for this access token; retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def _fault_response(fault: Fault, _admitted: Admitted[Company]) -> JSONResponse:
    status = fault.status or 500
    if status == 429:
        return _rate_limited(max(fault.retry_after_seconds, 0))
    if status == 500:
        return _error(500, SYSTEM_EXCEPTION, "System exception")
    return _error(status, SANDBOX_INJECTED_FAULT, f"Injected fault: HTTP {status}")


# --------------------------------------------------------------------------------- gate


def _gate(state: FortnoxState) -> Gate[Company]:
    """Authentication, rate limiting, fault injection and the request log for `/3/...`."""

    def admit(request: Request) -> Admitted[Company] | Response:
        token = bearer(request)
        if token is None:
            return _error(
                401,
                MISSING_CREDENTIALS,
                "Kan inte logga in, access-token eller client-secret saknas(2).",
            )
        company = state.company_for_token(token)
        if company is None:
            if state.token_expired(token):
                return _error(
                    401,
                    INVALID_LOGIN,
                    "Ogiltig inloggning: the access token has expired",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return _error(401, INVALID_LOGIN, "Ogiltig inloggning")
        retry_after = state.acquire_rate(token)
        refusal = None if retry_after is None else _rate_limited(retry_after)
        return Admitted(company, refusal)

    return Gate(
        is_api_path=_is_api_path,
        admit=admit,
        fault_response=_fault_response,
        crash_response=lambda: _error(500, SYSTEM_EXCEPTION, "System exception"),
        errors=route_errors(
            FortnoxError,
            SANDBOX_NOT_FOUND,
            INVALID_PARAMETER,
            unknown="No such Fortnox resource",
            malformed="Ogiltig parameter i anropet. ",
        ),
        logger=logger,
    )


# ---------------------------------------------------------------------- Fortnox routes


def _fortnox_router(state: FortnoxState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    def ok(body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status)

    def listed(key: str, page: service.Page, view: Callable[[Any], Any]) -> JSONResponse:
        return ok({key: [view(item) for item in page.items], "MetaInformation": out.meta(page)})

    # customers ---------------------------------------------------------------------

    @router.get("/customers")
    async def list_customers(request: Request) -> JSONResponse:
        company, query, base = _company(request), _query(request), _base(request)
        with state.lock:
            page = service.paginate(service.list_customers(company, query), query)
            return listed("Customers", page, lambda c: out.customer_list_item(c, base))

    @router.get("/customers/{number}")
    async def get_customer(request: Request, number: str) -> JSONResponse:
        with state.lock:
            customer = service.get_customer(_company(request), number)
            return ok({"Customer": out.customer(customer, _base(request))})

    @router.post("/customers")
    async def create_customer(request: Request) -> JSONResponse:
        body = decode_wrapped(await request.body(), "Customer")
        with state.lock:
            customer = service.create_customer(_company(request), body, state.now())
            return ok({"Customer": out.customer(customer, _base(request))}, 201)

    @router.put("/customers/{number}")
    async def update_customer(request: Request, number: str) -> JSONResponse:
        body = decode_wrapped(await request.body(), "Customer")
        with state.lock:
            customer = service.update_customer(_company(request), number, body, state.now())
            return ok({"Customer": out.customer(customer, _base(request))})

    # invoices ----------------------------------------------------------------------

    @router.get("/invoices")
    async def list_invoices(request: Request) -> JSONResponse:
        company, query, base = _company(request), _query(request), _base(request)
        with state.lock:
            page = service.paginate(service.list_invoices(company, query, state.today()), query)
            return listed("Invoices", page, lambda i: out.invoice_list_item(i, base))

    @router.get("/invoices/{number}")
    async def get_invoice(request: Request, number: str) -> JSONResponse:
        document_number = service.parse_number(number, "DocumentNumber")
        with state.lock:
            invoice = service.get_invoice(_company(request), document_number)
            return ok({"Invoice": out.invoice(invoice, _base(request))})

    @router.post("/invoices")
    async def create_invoice(request: Request) -> JSONResponse:
        body = decode_wrapped(await request.body(), "Invoice")
        with state.lock:
            invoice = service.create_invoice(_company(request), body, state.now(), state.today())
            return ok({"Invoice": out.invoice(invoice, _base(request))}, 201)

    @router.put("/invoices/{number}")
    async def update_invoice(request: Request, number: str) -> JSONResponse:
        document_number = service.parse_number(number, "DocumentNumber")
        body = decode_wrapped(await request.body(), "Invoice")
        with state.lock:
            invoice = service.update_invoice(_company(request), document_number, body, state.now())
            return ok({"Invoice": out.invoice(invoice, _base(request))})

    @router.put("/invoices/{number}/{action}")
    async def invoice_action(request: Request, number: str, action: str) -> JSONResponse:
        document_number = service.parse_number(number, "DocumentNumber")
        company = _company(request)
        with state.lock:
            now = state.now()
            if action == "bookkeep":
                invoice = service.bookkeep_invoice(company, document_number, now)
            elif action == "cancel":
                invoice = service.cancel_invoice(company, document_number, now)
            elif action == "credit":
                invoice = service.credit_invoice(company, document_number, now, state.today())
            elif action == "externalprint":
                invoice = service.externalprint_invoice(company, document_number, now)
            else:
                raise FortnoxError(404, SANDBOX_NOT_FOUND, f"Unknown invoice action {action!r}")
            return ok({"Invoice": out.invoice(invoice, _base(request))})

    # invoice payments --------------------------------------------------------------

    @router.get("/invoicepayments")
    async def list_payments(request: Request) -> JSONResponse:
        company, query, base = _company(request), _query(request), _base(request)
        with state.lock:
            page = service.paginate(service.list_payments(company, query), query)
            return listed("InvoicePayments", page, lambda p: out.payment_list_item(p, base))

    @router.get("/invoicepayments/{number}")
    async def get_payment(request: Request, number: str) -> JSONResponse:
        payment_number = service.parse_number(number, "Number")
        company = _company(request)
        with state.lock:
            payment = service.get_payment(company, payment_number)
            return ok({"InvoicePayment": out.payment(payment, company, _base(request))})

    @router.post("/invoicepayments")
    async def create_payment(request: Request) -> JSONResponse:
        body = decode_wrapped(await request.body(), "InvoicePayment")
        company = _company(request)
        with state.lock:
            payment = service.create_payment(
                company,
                body,
                state.now(),
                state.today(),
                require_booked_invoice=state.payments_require_booked_invoice,
            )
            return ok({"InvoicePayment": out.payment(payment, company, _base(request))}, 201)

    @router.put("/invoicepayments/{number}")
    async def update_payment(request: Request, number: str) -> JSONResponse:
        payment_number = service.parse_number(number, "Number")
        body = decode_wrapped(await request.body(), "InvoicePayment")
        company = _company(request)
        with state.lock:
            payment = service.update_payment(company, payment_number, body, state.now())
            return ok({"InvoicePayment": out.payment(payment, company, _base(request))})

    @router.put("/invoicepayments/{number}/bookkeep")
    async def bookkeep_payment(request: Request, number: str) -> JSONResponse:
        payment_number = service.parse_number(number, "Number")
        company = _company(request)
        with state.lock:
            payment = service.bookkeep_payment(company, payment_number, state.now())
            return ok({"InvoicePayment": out.payment(payment, company, _base(request))})

    @router.delete("/invoicepayments/{number}")
    async def delete_payment(request: Request, number: str) -> Response:
        payment_number = service.parse_number(number, "Number")
        with state.lock:
            service.delete_payment(_company(request), payment_number, state.now())
        return Response(status_code=204)

    # company -----------------------------------------------------------------------

    @router.get("/companyinformation")
    async def company_information(request: Request) -> JSONResponse:
        return ok({"CompanyInformation": out.company_information(_company(request))})

    return router


# ------------------------------------------------------------------------ admin routes


class CompanyIn(BaseModel):
    """Body of `POST /sandbox/companies`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    token: str | None = Field(default=None, min_length=8, max_length=500)
    organisation_number: str = ""
    rate_limited: bool = True


class AuthorizationIn(BaseModel):
    """Body of `POST /sandbox/oauth/authorizations` (a user activating an integration)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str | None = Field(default=None, min_length=1, max_length=200)
    client_secret: str | None = Field(default=None, min_length=8, max_length=500)
    scope: str = Field(default=DEFAULT_SCOPE, min_length=1, max_length=500)


class ExpireIn(BaseModel):
    """Body of `POST /sandbox/oauth/expire` (empty: every client's access tokens)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str | None = None


class FaultIn(KitFaultIn):
    """Body of `POST /sandbox/faults`."""

    path_prefix: str = Field(default=f"{API_PREFIX}/", pattern=r"^/3(/.*)?$")


def _admin_router(state: FortnoxState) -> APIRouter:
    router = admin.admin_router()
    company_of = admin.bearer_tenant(state.company_for_token, "company")
    admin.add_tenant_routes(router, state, company_of, FaultIn, listing="companies")

    @router.post("/companies", status_code=201)
    async def create_company(body: CompanyIn) -> dict[str, str]:
        try:
            company, token = state.create_company(
                body.name, body.token, body.organisation_number, rate_limited=body.rate_limited
            )
        except TokenInUseError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {"company_id": company.company_id, "token": token, "name": company.name}

    @router.post("/oauth/authorizations", status_code=201)
    async def authorize(request: Request, body: AuthorizationIn) -> dict[str, str]:
        """A new authorization of the company (by its bearer token) for a client: what the
        authorization-code exchange hands an integration. Each is an independent chain."""
        company = company_of(request)
        try:
            client, refresh = state.oauth.authorize(
                company, body.client_id, body.client_secret, body.scope
            )
        except ClientSecretMismatchError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {
            "company_id": company.company_id,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "refresh_token": refresh,
            "token_url": f"{_base(request)}{TOKEN_PATH}",
            "scope": body.scope,
        }

    @router.post("/oauth/expire")
    async def expire_access_tokens(request: Request, body: ExpireIn) -> dict[str, int]:
        """End the company's OAuth access tokens now (the next call answers 401)."""
        company = company_of(request)
        return {"expired": state.oauth.expire_access_tokens(company, body.client_id)}

    @router.get("/lastmodified")
    async def last_modified(
        request: Request, resource: Literal["invoices", "customers", "invoicepayments"] = "invoices"
    ) -> dict[str, Any]:
        """Full-precision modification times, which Fortnox itself does not expose."""
        company = company_of(request)
        with state.lock:
            records: dict[str, Any] = {
                "invoices": {str(k): v.last_modified for k, v in company.invoices.items()},
                "customers": {k: v.last_modified for k, v in company.customers.items()},
                "invoicepayments": {str(k): v.last_modified for k, v in company.payments.items()},
            }[resource]
        return {
            "resource": resource,
            "items": [
                {
                    "id": key,
                    "last_modified": stamp.isoformat(),
                    "last_modified_stockholm": stamp.astimezone(STOCKHOLM).isoformat(),
                }
                for key, stamp in records.items()
            ],
        }

    return router
