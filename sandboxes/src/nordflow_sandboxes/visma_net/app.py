"""Visma.net ERP API sandbox app: `/v1/...` as Visma.net has it, `/sandbox/...` for tests."""

from __future__ import annotations

import logging
import uuid
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nordflow_sandboxes.kit import admin
from nordflow_sandboxes.kit.faults import Fault as KitFault
from nordflow_sandboxes.kit.faults import FaultIn as KitFaultIn
from nordflow_sandboxes.kit.gate import Admitted, Gate, bearer, route_errors, tenant_of
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
    not_found,
)
from nordflow_sandboxes.visma_net.state import CompanyIdInUseError, RateDecision, VismaNetState
from nordflow_sandboxes.visma_net.values import etag_of

logger = logging.getLogger("nordflow_sandboxes.visma_net")

API_PREFIX = "/v1"
COMPANY_HEADER = "ipp-company-id"


def create_app(state: VismaNetState | None = None) -> FastAPI:
    """Build the sandbox app around `state` (a fresh default state when None)."""
    state = state or VismaNetState()
    return admin.sandbox_app(
        state,
        "visma_net",
        title="Nordflow Visma.net ERP API sandbox",
        version="1",
        routers=[_api_router(state), connect_router(state.connect), _admin_router(state)],
        gate=_gate(state),
    )


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
    return VismaNetError(status, code, message, headers).response()


def _company_header(request: Request) -> str | None:
    value = request.headers.get(COMPANY_HEADER)
    return value.strip() if value and value.strip() else None


def _company(request: Request) -> Company:
    return cast(Company, tenant_of(request))


def _created(request: Request, path: str) -> Response:
    """201 with the new record's address, as Visma.net answers a create."""
    location = f"{str(request.base_url).rstrip('/')}{API_PREFIX}/{path}"
    return Response(status_code=201, headers={"Location": location})


def _release_only(noun: str, action: str) -> None:
    if action != "release":
        raise not_found(f"Unknown {noun} action '{action}' (the sandbox has release)")


def _rate_limited(decision: RateDecision) -> JSONResponse:
    return _error(
        429,
        SANDBOX_RATE_LIMITED,
        "Too many requests: the hourly limit of this company and client is reached; "
        f"retry after {decision.reset_seconds} s",
        headers={**decision.headers(), "Retry-After": str(decision.reset_seconds)},
    )


def _fault_response(fault: KitFault, admitted: Admitted[Company]) -> JSONResponse:
    status = fault.status or 500
    if status == 429:
        retry = max(fault.retry_after_seconds, 0)
        return _error(
            429,
            SANDBOX_RATE_LIMITED,
            f"Too many requests (injected); retry after {retry} s",
            headers={**admitted.headers, "Retry-After": str(retry)},
        )
    return _error(status, SANDBOX_SYSTEM_ERROR, f"Injected fault: HTTP {status}")


# --------------------------------------------------------------------------------- gate


def _gate(state: VismaNetState) -> Gate[Company]:
    """Authentication, company choice, rate limiting, faults and the request log for `/v1/...`."""

    def admit(request: Request) -> Admitted[Company] | Response:
        token = bearer(request)
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
        decision = state.acquire_rate(company, token)
        refusal = None if decision.allowed else _rate_limited(decision)
        # Visma.net sends its rate-limit headers on every answer.
        return Admitted(company, refusal, decision.headers())

    return Gate(
        is_api_path=is_api_path,
        admit=admit,
        fault_response=_fault_response,
        crash_response=lambda: _error(500, SANDBOX_SYSTEM_ERROR, "An error has occurred."),
        errors=route_errors(
            VismaNetError,
            SANDBOX_NOT_FOUND,
            SANDBOX_BAD_REQUEST,
            malformed="The request is invalid: ",
        ),
        logger=logger,
        record=RequestRecord.of,
        normalise_path=normalise_path,
    )


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
        return _created(request, f"customer/{customer.number}")

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
        return _created(request, f"customerinvoice/{invoice.reference_number}")

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
        _release_only("invoice", action)
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
        return _created(request, f"customercreditnote/{note.reference_number}")

    @router.post("/customercreditnote/{reference}/action/{action}")
    async def credit_note_action(request: Request, reference: str, action: str) -> JSONResponse:
        _release_only("credit note", action)
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
        return _created(request, f"customerpayment/{payment.ref_nbr}")

    @router.post("/customerpayment/{ref_nbr}/action/{action}")
    async def payment_action(request: Request, ref_nbr: str, action: str) -> JSONResponse:
        _release_only("payment", action)
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


class FaultIn(KitFaultIn):
    """Body of `POST /sandbox/faults`."""

    fault_type = Fault

    path_prefix: str = Field(default=f"{API_PREFIX}/", pattern=r"^/[vV]1(/.*)?$")


def _admin_router(state: VismaNetState) -> APIRouter:
    router = admin.admin_router()

    def company_of(request: Request) -> Company:
        token = bearer(request)
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

    @router.post("/companies", status_code=201)
    async def create_company(body: CompanyIn) -> dict[str, str]:
        try:
            company, token = state.create_company(body.name, body.token, body.company_id)
        except CompanyIdInUseError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {"company_id": company.company_id, "token": token, "name": company.name}

    admin.add_tenant_routes(router, state, company_of, FaultIn, listing="companies")
    return router
