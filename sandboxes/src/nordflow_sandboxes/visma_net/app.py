"""Visma.net ERP API sandbox app: `/v1/...` as Visma.net has it, `/sandbox/...` for tests."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from nordflow_sandboxes.kit.faults import FaultIn as SharedFaultIn
from nordflow_sandboxes.visma_net import serialize as out
from nordflow_sandboxes.visma_net import service
from nordflow_sandboxes.visma_net.connect import connect_router
from nordflow_sandboxes.visma_net.domain import Company, Fault, RequestRecord
from nordflow_sandboxes.visma_net.errors import (
    COMPANY_NOT_SET,
    SANDBOX_BAD_REQUEST,
    SANDBOX_NOT_FOUND,
    SANDBOX_RATE_LIMITED,
    SANDBOX_SYSTEM_ERROR,
    SANDBOX_UNAUTHORIZED,
    VismaNetError,
    error_body,
    not_found,
)
from nordflow_sandboxes.visma_net.state import CompanyIdInUseError, RateDecision, VismaNetState
from nordflow_sandboxes.visma_net.values import etag_of

logger = logging.getLogger("nordflow_sandboxes.visma_net")

API_PREFIX = "/v1"
ADMIN_PREFIX = "/sandbox"
COMPANY_HEADER = "ipp-company-id"


def create_app(state: VismaNetState | None = None) -> FastAPI:
    """Build the sandbox app around `state` (a fresh default state when None)."""
    state = state or VismaNetState()
    app = FastAPI(
        title="Nordflow Visma.net ERP API sandbox",
        version="1",
        docs_url=f"{ADMIN_PREFIX}/docs",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.state.visma_net = state
    app.include_router(_api_router(state))
    app.include_router(connect_router(state.connect))
    app.include_router(_admin_router(state))
    _install_gate(app, state)
    _install_error_handlers(app)
    return app


# ------------------------------------------------------------------------------ helpers


def is_api_path(path: str) -> bool:
    """Whether a path is one of the emulated Visma.net API paths (any letter case)."""
    lowered = path.lower()
    return lowered == API_PREFIX or lowered.startswith(f"{API_PREFIX}/")


def normalise_path(path: str) -> str:
    """Lower-case the fixed segments: Visma.net routes ignore case (`CustomerInvoice` works).

    Identifiers (`/v1/customer/{number}`) keep their case.
    """
    parts = path.split("/")
    for index in (1, 2):
        if len(parts) > index:
            parts[index] = parts[index].lower()
    if len(parts) > 5 and parts[4].lower() == "action":
        parts[4], parts[5] = "action", parts[5].lower()
    return "/".join(parts)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _company_header(request: Request) -> str | None:
    value = request.headers.get(COMPANY_HEADER)
    return value.strip() if value and value.strip() else None


def _company(request: Request) -> Company:
    return cast(Company, request.state.company)


def _location(request: Request, path: str) -> dict[str, str]:
    return {"Location": f"{str(request.base_url).rstrip('/')}{API_PREFIX}/{path}"}


def _rate_limited(decision: RateDecision) -> JSONResponse:
    return _error(
        429,
        SANDBOX_RATE_LIMITED,
        "Too many requests: the hourly limit of this company and client is reached; "
        f"retry after {decision.reset_seconds} s",
        headers={**decision.headers(), "Retry-After": str(decision.reset_seconds)},
    )


def _fault_response(fault: Fault, decision: RateDecision) -> JSONResponse:
    status = fault.status or 500
    if status == 429:
        retry = max(fault.retry_after_seconds, 0)
        return _error(
            429,
            SANDBOX_RATE_LIMITED,
            f"Too many requests (injected); retry after {retry} s",
            headers={**decision.headers(), "Retry-After": str(retry)},
        )
    return _error(status, SANDBOX_SYSTEM_ERROR, f"Injected fault: HTTP {status}")


async def _drain(response: Response) -> None:
    body_iterator = getattr(response, "body_iterator", None)
    if body_iterator is not None:
        async for _chunk in body_iterator:
            pass


# --------------------------------------------------------------------------------- gate


def _install_gate(app: FastAPI, state: VismaNetState) -> None:
    """Authentication, company choice, rate limiting, faults and the request log for `/v1/...`."""

    @app.middleware("http")
    async def visma_net_gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not is_api_path(request.url.path):
            return await call_next(request)
        path = normalise_path(request.url.path)
        request.scope["path"] = path
        token = _bearer(request)
        if token is None or not state.token_known(token):
            return _error(
                401, SANDBOX_UNAUTHORIZED, "Authorization has been denied for this request."
            )
        company = state.company_for(token, _company_header(request))
        if company is None:
            return _error(
                400,
                COMPANY_NOT_SET,
                f"The {COMPANY_HEADER} header is missing or names a company this client "
                "has no access to.",
            )
        request.state.company = company
        method = request.method.upper()

        def log(response: Response, faulted: bool) -> Response:
            state.record_request(
                company,
                RequestRecord(
                    at=state.now(),
                    method=method,
                    path=path,
                    query=request.url.query,
                    status=response.status_code,
                    fault=faulted,
                    if_match=request.headers.get("if-match"),
                ),
            )
            return response

        decision = state.acquire_rate(company, token)
        if not decision.allowed:
            return log(_rate_limited(decision), faulted=False)

        fault = state.take_fault(company, method, path)
        if fault is not None and not fault.after_commit:
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.status is not None:
                return log(_fault_response(fault, decision), faulted=True)

        try:
            response = await call_next(request)
        except Exception:
            logger.exception("unhandled error in %s %s", method, path)
            response = _error(500, SANDBOX_SYSTEM_ERROR, "An error has occurred.")

        if fault is not None and fault.after_commit:
            # The change is committed; the client now sees a slow answer or an error.
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.status is not None:
                await _drain(response)
                return log(_fault_response(fault, decision), faulted=True)
        response.headers.update(decision.headers())
        return log(response, faulted=fault is not None)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_visma_error(_request: Request, exc: Exception) -> Response:
        error = cast(VismaNetError, exc)
        return JSONResponse(error.body(), status_code=error.status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        error = cast(StarletteHTTPException, exc)
        if not is_api_path(request.url.path):
            return await http_exception_handler(request, error)
        if error.status_code == 404:
            return _error(404, SANDBOX_NOT_FOUND, f"No such resource: {request.url.path}")
        return _error(
            error.status_code,
            SANDBOX_BAD_REQUEST,
            f"{request.method} {request.url.path}: {error.detail}",
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        error = cast(RequestValidationError, exc)
        if not is_api_path(request.url.path):
            return await request_validation_exception_handler(request, error)
        return _error(400, SANDBOX_BAD_REQUEST, f"The request is invalid: {error.errors()}")

    app.add_exception_handler(VismaNetError, on_visma_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


# ---------------------------------------------------------------------- Visma.net routes


def _action_result() -> dict[str, Any]:
    return {"actionId": str(uuid.uuid4()), "actionResult": "Done", "errorInfo": None}


def _api_router(state: VismaNetState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    zone = state.api_timezone

    def ok(body: Any, etag: int | None = None) -> JSONResponse:
        headers = {"ETag": f'"{etag_of(etag)}"'} if etag is not None else None
        return JSONResponse(body, status_code=200, headers=headers)

    def query_of(request: Request) -> dict[str, str]:
        return service.lower_query(request.query_params.multi_items())

    # customers ---------------------------------------------------------------------

    @router.get("/customer")
    async def list_customers(request: Request) -> JSONResponse:
        with state.lock:
            page = service.list_customers(_company(request), query_of(request), state)
            return ok(out.page_items(page, lambda c: out.customer(c, zone)))

    @router.get("/customer/{number}")
    async def get_customer(request: Request, number: str) -> JSONResponse:
        with state.lock:
            customer = service.get_customer(_company(request), number)
            return ok(out.customer(customer, zone), customer.rowversion)

    @router.post("/customer")
    async def create_customer(request: Request) -> Response:
        body = service.decode_body(await request.body())
        with state.lock:
            customer = service.create_customer(_company(request), body, state)
        return Response(status_code=201, headers=_location(request, f"customer/{customer.number}"))

    # invoices ----------------------------------------------------------------------

    @router.get("/customerinvoice")
    async def list_invoices(request: Request) -> JSONResponse:
        company = _company(request)
        with state.lock:
            page = service.list_invoices(company, query_of(request), state)
            return ok(out.page_items(page, lambda i: out.invoice(i, company, zone)))

    @router.get("/customerinvoice/{reference}")
    async def get_invoice(request: Request, reference: str) -> JSONResponse:
        company = _company(request)
        with state.lock:
            invoice = service.get_invoice(company, reference)
            return ok(out.invoice(invoice, company, zone), invoice.rowversion)

    @router.post("/customerinvoice")
    async def create_invoice(request: Request) -> Response:
        body = service.decode_body(await request.body())
        with state.lock:
            invoice = service.create_invoice(_company(request), body, state)
        location = _location(request, f"customerinvoice/{invoice.reference_number}")
        return Response(status_code=201, headers=location)

    @router.put("/customerinvoice/{reference}")
    async def update_invoice(request: Request, reference: str) -> Response:
        body = service.decode_body(await request.body())
        if_match = request.headers.get("if-match")
        with state.lock:
            invoice = service.update_invoice(_company(request), reference, body, if_match, state)
            etag = etag_of(invoice.rowversion)
        return Response(status_code=204, headers={"ETag": f'"{etag}"'})

    @router.post("/customerinvoice/{reference}/action/{action}")
    async def invoice_action(request: Request, reference: str, action: str) -> JSONResponse:
        if action != "release":
            raise not_found(f"Unknown invoice action '{action}' (the sandbox has release)")
        with state.lock:
            service.release_invoice(
                _company(request), reference, request.headers.get("if-match"), state
            )
        return ok(_action_result())

    # customer credit notes ---------------------------------------------------------

    @router.get("/customercreditnote/{reference}")
    async def get_credit_note(request: Request, reference: str) -> JSONResponse:
        company = _company(request)
        with state.lock:
            note = service.get_invoice(company, reference)
            if not note.credit_note:
                raise not_found(f"Credit note {reference} not found")
            body = out.invoice(note, company, zone)
            body["lines"] = body.pop("invoiceLines")  # CustomerCreditNoteDto names them so
            return ok(body, note.rowversion)

    @router.post("/customercreditnote")
    async def create_credit_note(request: Request) -> Response:
        body = service.decode_body(await request.body())
        with state.lock:
            note = service.create_credit_note(_company(request), body, state)
        location = _location(request, f"customercreditnote/{note.reference_number}")
        return Response(status_code=201, headers=location)

    @router.post("/customercreditnote/{reference}/action/{action}")
    async def credit_note_action(request: Request, reference: str, action: str) -> JSONResponse:
        if action != "release":
            raise not_found(f"Unknown credit note action '{action}' (the sandbox has release)")
        with state.lock:
            service.release_invoice(
                _company(request), reference, request.headers.get("if-match"), state
            )
        return ok(_action_result())

    # customer payments -------------------------------------------------------------

    @router.get("/customerpayment")
    async def list_payments(request: Request) -> JSONResponse:
        company = _company(request)
        with state.lock:
            page = service.list_payments(company, query_of(request), state)
            return ok(out.page_items(page, lambda p: out.payment(p, company, zone)))

    @router.get("/customerpayment/{ref_nbr}")
    async def get_payment(request: Request, ref_nbr: str) -> JSONResponse:
        company = _company(request)
        with state.lock:
            payment = service.get_payment(company, ref_nbr)
            return ok(out.payment(payment, company, zone), payment.rowversion)

    @router.post("/customerpayment")
    async def create_payment(request: Request) -> Response:
        body = service.decode_body(await request.body())
        with state.lock:
            payment = service.create_payment(_company(request), body, state)
        location = _location(request, f"customerpayment/{payment.ref_nbr}")
        return Response(status_code=201, headers=location)

    @router.post("/customerpayment/{ref_nbr}/action/{action}")
    async def payment_action(request: Request, ref_nbr: str, action: str) -> JSONResponse:
        if action != "release":
            raise not_found(f"Unknown payment action '{action}' (the sandbox has release)")
        raw = await request.body()
        body = service.decode_body(raw) if raw.strip() else {}
        with state.lock:
            service.release_payment(
                _company(request), ref_nbr, body, request.headers.get("if-match"), state
            )
        return ok(_action_result())

    return router


# ------------------------------------------------------------------------ admin routes


class CompanyIn(BaseModel):
    """Body of `POST /sandbox/companies`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    token: str | None = Field(default=None, min_length=8, max_length=500)
    company_id: str | None = Field(default=None, pattern=r"^[0-9A-Za-z_-]{1,40}$")


class FaultIn(SharedFaultIn):
    """Body of `POST /sandbox/faults`."""

    path_prefix: str = Field(default=f"{API_PREFIX}/", pattern=r"^/[vV]1(/.*)?$")


def _admin_router(state: VismaNetState) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["sandbox admin"])

    def company_of(request: Request) -> Company:
        token = _bearer(request)
        company = None
        if token:
            wanted = _company_header(request)
            company = state.company_for(token, wanted, require_header=False)
        if company is None:
            raise HTTPException(
                401,
                "send the company's token as 'Authorization: Bearer <token>' and its id as "
                f"'{COMPANY_HEADER}' (optional when the token opens one company)",
            )
        return company

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.post("/companies", status_code=201)
    async def create_company(body: CompanyIn) -> dict[str, str]:
        try:
            company, token = state.create_company(body.name, body.token, body.company_id)
        except CompanyIdInUseError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {"company_id": company.company_id, "token": token, "name": company.name}

    @router.post("/faults", status_code=201)
    async def add_fault(request: Request, body: FaultIn) -> dict[str, Any]:
        company = company_of(request)
        fault = Fault(**body.fault_fields())
        state.add_fault(company, fault)
        return {"fault": fault.as_json()}

    @router.get("/faults")
    async def list_faults(request: Request) -> dict[str, Any]:
        company = company_of(request)
        with state.lock:
            return {"faults": [f.as_json() for f in company.faults]}

    @router.delete("/faults", status_code=204)
    async def clear_faults(request: Request) -> Response:
        state.clear_faults(company_of(request))
        return Response(status_code=204)

    @router.get("/requests")
    async def recent_requests(request: Request, limit: int = 100) -> dict[str, Any]:
        company = company_of(request)
        records = state.recent_requests(company, max(0, min(limit, 2000)))
        return {"requests": [r.as_json() for r in records]}

    @router.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        if _bearer(request):
            return state.stats(company_of(request))
        return {"companies": [state.stats(c) for c in state.companies()]}

    return router
