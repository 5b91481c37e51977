"""The eAccounting API v2 sandbox as a FastAPI app: `/v2/...`, `/connect/token`, `/sandbox/...`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, cast
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from nordflow_sandboxes.kit.faults import FaultIn as SharedFaultIn
from nordflow_sandboxes.visma_eaccounting import serialize as out
from nordflow_sandboxes.visma_eaccounting import service
from nordflow_sandboxes.visma_eaccounting.domain import (
    DEFAULT_SCOPE,
    AccessGrant,
    Company,
    Fault,
    RequestRecord,
)
from nordflow_sandboxes.visma_eaccounting.errors import (
    CANT_REACH_SYSTEM_DEPENDENCY,
    DATA_MODEL_VALIDATION_ERROR,
    INTERNAL_SERVER_ERROR,
    NO_ACCESS_TO_SCOPES,
    NOT_AUTHORIZED,
    RESOURCE_NOT_FOUND,
    VismaApiError,
    error_body,
    not_found,
    too_many_requests,
)
from nordflow_sandboxes.visma_eaccounting.state import (
    ClientSecretMismatchError,
    RefreshRefused,
    VismaEAccountingState,
)

logger = logging.getLogger("nordflow_sandboxes.visma_eaccounting")

API_PREFIX = "/v2"
TOKEN_PATH = "/connect/token"  # noqa: S105 - a path, not a secret
ADMIN_PREFIX = "/sandbox"
SALES_RESOURCES = frozenset({"customers", "customerinvoices", "articles"})


def create_app(state: VismaEAccountingState | None = None) -> FastAPI:
    """Build the sandbox app around `state` (a fresh default state when None)."""
    state = state or VismaEAccountingState()
    app = FastAPI(
        title="Nordflow Visma eAccounting API v2 sandbox",
        version="2",
        docs_url=f"{ADMIN_PREFIX}/docs",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.state.visma_eaccounting = state
    app.include_router(_token_router(state))
    app.include_router(_api_router(state))
    app.include_router(_admin_router(state))
    _install_gate(app, state)
    _install_error_handlers(app)
    return app


# ------------------------------------------------------------------------------ helpers


def _is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(f"{API_PREFIX}/")


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _company(request: Request) -> Company:
    return cast(Company, request.state.company)


def _fault_response(fault: Fault, state: VismaEAccountingState) -> JSONResponse:
    status = fault.status or 500
    if status == 429:
        retry = max(fault.retry_after_seconds, 0)
        limiter = state.rate_limiter
        return JSONResponse(
            too_many_requests(limiter.limit, limiter.window_seconds, retry), status_code=429
        )
    if status == 500:
        return _error(500, INTERNAL_SERVER_ERROR, "An unhandled error occurred (injected)")
    return _error(status, CANT_REACH_SYSTEM_DEPENDENCY, f"Injected fault: HTTP {status}")


async def _drain(response: Response) -> None:
    body_iterator = getattr(response, "body_iterator", None)
    if body_iterator is not None:
        async for _chunk in body_iterator:
            pass


def _scope_problem(grant: AccessGrant, method: str, path: str) -> str | None:
    scopes = grant.scopes
    if "ea:api" not in scopes:
        return "The token lacks the ea:api scope"
    resource = path[len(API_PREFIX) + 1 :].split("/", 1)[0].lower()
    if resource not in SALES_RESOURCES:
        return None
    if method == "GET" and scopes & {"ea:sales", "ea:sales_readonly"}:
        return None
    if method != "GET" and "ea:sales" in scopes:
        return None
    return f"{method} /v2/{resource} requires the ea:sales scope"


# --------------------------------------------------------------------------------- gate


def _install_gate(app: FastAPI, state: VismaEAccountingState) -> None:
    """Bearer authentication, scopes, the rate limit, faults and the request log for `/v2`."""

    @app.middleware("http")
    async def eaccounting_gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not _is_api_path(path):
            return await call_next(request)
        token = _bearer(request)
        grant = state.access_grant(token) if token else None
        company = state.company(grant.company_id) if grant else None
        if grant is None or company is None:
            return _error(
                401,
                NOT_AUTHORIZED,
                "Authorization has been denied for this request: no valid bearer token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
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
                ),
            )
            return response

        if grant.expires <= state.now():
            return log(
                _error(
                    401,
                    NOT_AUTHORIZED,
                    "Authorization has been denied for this request: the access token expired",
                    headers={
                        "WWW-Authenticate": (
                            'Bearer error="invalid_token", '
                            'error_description="The access token expired"'
                        )
                    },
                ),
                faulted=False,
            )
        problem = _scope_problem(grant, method, path)
        if problem is not None:
            return log(_error(403, NO_ACCESS_TO_SCOPES, problem), faulted=False)
        retry_after = state.acquire_rate(grant.client_id, path)
        if retry_after is not None:
            limiter = state.rate_limiter
            body = too_many_requests(limiter.limit, limiter.window_seconds, retry_after)
            return log(JSONResponse(body, status_code=429), faulted=False)
        request.state.company = company

        fault = state.take_fault(company, method, path)
        if fault is not None and not fault.after_commit:
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.status is not None:
                return log(_fault_response(fault, state), faulted=True)
        try:
            response = await call_next(request)
        except ClientDisconnect:
            # The client gave up (a timeout) before its body was read: nothing was stored.
            response = Response(status_code=499)
        except Exception:
            logger.exception("unhandled error in %s %s", method, path)
            response = _error(500, INTERNAL_SERVER_ERROR, "An unhandled error occurred")
        if fault is not None and fault.after_commit:
            # The change is stored; the client now sees a slow answer or an error.
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.status is not None:
                await _drain(response)
                return log(_fault_response(fault, state), faulted=True)
        return log(response, faulted=fault is not None)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_request: Request, exc: Exception) -> Response:
        error = cast(VismaApiError, exc)
        return JSONResponse(error.body(), status_code=error.status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        error = cast(StarletteHTTPException, exc)
        if not _is_api_path(request.url.path):
            return await http_exception_handler(request, error)
        if error.status_code == 404:
            return _error(404, RESOURCE_NOT_FOUND, f"No such resource: {request.url.path}")
        return _error(
            error.status_code,
            DATA_MODEL_VALIDATION_ERROR,
            f"{request.method} {request.url.path}: {error.detail}",
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        error = cast(RequestValidationError, exc)
        if not _is_api_path(request.url.path):
            return await request_validation_exception_handler(request, error)
        return _error(400, DATA_MODEL_VALIDATION_ERROR, f"Invalid request: {error.errors()}")

    app.add_exception_handler(VismaApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


# ------------------------------------------------------------------------- token endpoint


def _oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """RFC 6749 §5.2 error response."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})},
    )


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 §2.3.1, form-encoded parts) or client_secret_post."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, sep, secret = decoded.partition(":")
        return (unquote_plus(client_id), unquote_plus(secret)) if sep else None
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None


def _token_router(state: VismaEAccountingState) -> APIRouter:
    router = APIRouter(tags=["Visma identity (token endpoint)"])

    @router.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        """`grant_type=refresh_token`: rotates the refresh token (the old one stops working)."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return _oauth_error(400, "invalid_request", "Use application/x-www-form-urlencoded")
        try:
            parsed = parse_qs((await request.body()).decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return _oauth_error(400, "invalid_request", "The body is not UTF-8")
        form = {key: values[0] for key, values in parsed.items() if values}
        grant_type = form.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "grant_type is missing")
        credentials = _client_credentials(request, form)
        client = state.authenticate_client(*credentials) if credentials else None
        if client is None:
            return _oauth_error(
                401,
                "invalid_client",
                "Client authentication failed",
                headers={"WWW-Authenticate": 'Basic realm="identity"'},
            )
        if grant_type != "refresh_token":
            return _oauth_error(
                400, "unsupported_grant_type", "The sandbox issues tokens by refresh_token only"
            )
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return _oauth_error(400, "invalid_request", "refresh_token is missing")

        grant = state.refresh_grant(refresh_token)
        company = state.company(grant.company_id) if grant else None

        def log(response: Response, faulted: bool) -> Response:
            if company is not None:
                state.record_request(
                    company,
                    RequestRecord(
                        state.now(), "POST", TOKEN_PATH, "", response.status_code, faulted
                    ),
                )
            return response

        fault = state.take_fault(company, "POST", TOKEN_PATH) if company else None
        if fault is not None and not fault.after_commit:
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.status is not None:
                return log(_token_fault(fault.status), faulted=True)
        try:
            access, rotated = state.redeem_refresh_token(client, refresh_token)
        except RefreshRefused as refused:
            return log(_oauth_error(400, refused.error, refused.description), faulted=False)
        if fault is not None and fault.after_commit:
            # Rotated already: the client never learns the new refresh token.
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.status is not None:
                return log(_token_fault(fault.status), faulted=True)
        lifetime = int((access.expires - state.now()).total_seconds())
        body = {
            "access_token": access.token,
            "expires_in": lifetime,
            "token_type": "Bearer",
            "refresh_token": rotated,
            "scope": access.scope,
        }
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        return log(JSONResponse(body, headers=headers), faulted=fault is not None)

    return router


def _token_fault(status: int) -> JSONResponse:
    error = "temporarily_unavailable" if status in (429, 503) else "server_error"
    return _oauth_error(status, error, f"Injected fault: HTTP {status}")


# -------------------------------------------------------------------------- API routes


def _api_router(state: VismaEAccountingState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    def ok(body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status)

    def listing(page: service.Page, data: list[dict[str, Any]]) -> JSONResponse:
        return ok(out.paginated(page, data, state.now()))

    # customers ---------------------------------------------------------------------

    @router.get("/customers")
    async def list_customers(request: Request) -> JSONResponse:
        company, query = _company(request), service.query_of(request.query_params)
        with state.lock:
            page = service.paginate(service.list_customers(company, query), query)
            return listing(page, [out.customer(c, company) for c in page.items])

    @router.get("/customers/{customer_id}")
    async def get_customer(request: Request, customer_id: str) -> JSONResponse:
        company = _company(request)
        with state.lock:
            return ok(out.customer(service.get_customer(company, customer_id), company))

    @router.post("/customers")
    async def create_customer(request: Request) -> JSONResponse:
        body = service.decode_body(await request.body())
        company = _company(request)
        with state.lock:
            customer = service.create_customer(company, body, state.now())
            return ok(out.customer(customer, company), 201)

    @router.get("/customers/{customer_id}/autoinvoicerecipients")
    async def autoinvoice_recipients(request: Request, customer_id: str) -> JSONResponse:
        company, query = _company(request), service.query_of(request.query_params)
        service.refuse_unsupported(query)
        with state.lock:
            recipients = out.autoinvoice_recipients(service.get_customer(company, customer_id))
            page = service.paginate(recipients, query)
            return listing(page, page.items)

    # customer invoices -------------------------------------------------------------

    @router.get("/customerinvoices")
    async def list_invoices(request: Request) -> JSONResponse:
        company, query = _company(request), service.query_of(request.query_params)
        with state.lock:
            today = state.today()
            page = service.paginate(service.list_invoices(company, query), query)
            return listing(page, [out.invoice(i, company, today) for i in page.items])

    @router.get("/customerinvoices/{invoice_id}")
    async def get_invoice(request: Request, invoice_id: str) -> JSONResponse:
        company = _company(request)
        with state.lock:
            invoice = service.get_invoice(company, invoice_id)
            return ok(out.invoice(invoice, company, state.today()))

    @router.post("/customerinvoices")
    async def create_invoice(request: Request) -> JSONResponse:
        body = service.decode_body(await request.body())
        company = _company(request)
        with state.lock:
            today = state.today()
            invoice = service.create_invoice(company, body, state.now(), today)
            return ok(out.invoice(invoice, company, today), 201)

    @router.post("/customerinvoices/{invoice_id}/payments")
    async def create_payment(request: Request, invoice_id: str) -> JSONResponse:
        body = service.decode_body(await request.body())
        company = _company(request)
        with state.lock:
            payment = service.create_payment(company, invoice_id, body, state.now(), state.today())
            return ok(out.payment(payment), 201)

    # reference data ----------------------------------------------------------------

    @router.get("/articles")
    async def list_articles(request: Request) -> JSONResponse:
        company, query = _company(request), service.query_of(request.query_params)
        service.refuse_unsupported(query)
        with state.lock:
            articles = sorted(company.articles.values(), key=lambda a: a.number)
            page = service.paginate(articles, query)
            return listing(page, [out.article(a) for a in page.items])

    @router.get("/articles/{article_id}")
    async def get_article(request: Request, article_id: str) -> JSONResponse:
        company = _company(request)
        with state.lock:
            article = company.articles.get(article_id.lower())
            if article is None:
                raise not_found("Article", article_id)
            return ok(out.article(article))

    @router.get("/bankaccounts")
    async def list_bank_accounts(request: Request) -> JSONResponse:
        company, query = _company(request), service.query_of(request.query_params)
        service.refuse_unsupported(query)
        with state.lock:
            page = service.paginate(list(company.bank_accounts.values()), query)
            return listing(page, [out.bank_account(b) for b in page.items])

    @router.get("/termsofpayment")
    async def list_terms_of_payment(request: Request) -> JSONResponse:
        company, query = _company(request), service.query_of(request.query_params)
        service.refuse_unsupported(query)
        with state.lock:
            page = service.paginate([out.terms_of_payment(company)], query)
            return listing(page, page.items)

    return router


# ------------------------------------------------------------------------ admin routes


class CompanyIn(BaseModel):
    """Body of `POST /sandbox/companies`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    client_id: str | None = Field(default=None, min_length=3, max_length=200)
    client_secret: str | None = Field(default=None, min_length=8, max_length=500)
    scope: str = DEFAULT_SCOPE
    organisation_number: str = ""
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")


class CreditIn(BaseModel):
    """Body of `POST /sandbox/companies/{id}/customerinvoices/{invoice_id}/credit`."""

    model_config = ConfigDict(extra="forbid")

    invoice_date: date | None = None


class FaultIn(SharedFaultIn):
    """Body of `POST /sandbox/companies/{id}/faults`."""

    path_prefix: str = Field(default=f"{API_PREFIX}/", pattern=r"^/(v2|connect)(/.*)?$")


def _admin_router(state: VismaEAccountingState) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["sandbox admin"])

    def company_of(company_id: str) -> Company:
        company = state.company(company_id)
        if company is None:
            raise HTTPException(404, f"no company {company_id!r}")
        return company

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.post("/companies", status_code=201)
    async def create_company(body: CompanyIn) -> dict[str, Any]:
        try:
            company, client, refresh = state.create_company(
                body.name,
                client_id=body.client_id,
                client_secret=body.client_secret,
                scope=body.scope,
                organisation_number=body.organisation_number,
                currency=body.currency,
            )
        except ClientSecretMismatchError as exc:
            raise HTTPException(409, str(exc)) from exc
        return company_facts(company, client.client_id, client.client_secret, refresh)

    @router.get("/stats")
    async def all_stats() -> dict[str, Any]:
        return {"companies": [state.stats(c) for c in state.companies()]}

    @router.get("/companies/{company_id}/stats")
    async def stats(company_id: str) -> dict[str, Any]:
        return state.stats(company_of(company_id))

    @router.post("/companies/{company_id}/faults", status_code=201)
    async def add_fault(company_id: str, body: FaultIn) -> dict[str, Any]:
        fault = Fault(**body.fault_fields())
        state.add_fault(company_of(company_id), fault)
        return {"fault": fault.as_json()}

    @router.get("/companies/{company_id}/faults")
    async def list_faults(company_id: str) -> dict[str, Any]:
        company = company_of(company_id)
        with state.lock:
            return {"faults": [f.as_json() for f in company.faults]}

    @router.delete("/companies/{company_id}/faults", status_code=204)
    async def clear_faults(company_id: str) -> Response:
        state.clear_faults(company_of(company_id))
        return Response(status_code=204)

    @router.get("/companies/{company_id}/requests")
    async def recent_requests(company_id: str, limit: int = 100) -> dict[str, Any]:
        records = state.recent_requests(company_of(company_id), max(0, min(limit, 2000)))
        return {"requests": [r.as_json() for r in records]}

    @router.get("/companies/{company_id}/payments")
    async def payments(company_id: str) -> dict[str, Any]:
        """Every payment (eAccounting has no list of a customer invoice's payments)."""
        company = company_of(company_id)
        with state.lock:
            return {
                "payments": [
                    {"InvoiceId": p.invoice_id, **out.payment(p)} for p in company.payments
                ]
            }

    @router.post("/companies/{company_id}/customerinvoices/{invoice_id}/credit", status_code=201)
    async def credit_invoice(
        company_id: str, invoice_id: str, body: CreditIn | None = None
    ) -> dict[str, Any]:
        """Credit an invoice in full, as the eAccounting UI does ("Kreditera")."""
        company = company_of(company_id)
        with state.lock:
            today = state.today()
            credit = service.credit_invoice(
                company, invoice_id, state.now(), today, body.invoice_date if body else None
            )
            return out.invoice(credit, company, today)

    @router.post("/companies/{company_id}/expire-access-tokens")
    async def expire_access_tokens(company_id: str) -> dict[str, int]:
        return {"expired": state.expire_access_tokens(company_of(company_id))}

    @router.post("/companies/{company_id}/refresh-tokens", status_code=201)
    async def new_refresh_token(company_id: str) -> dict[str, str]:
        """Another grant for the company's client, as a new authorization would give."""
        company = company_of(company_id)
        token = state.issue_refresh_token(company, company.client_id, DEFAULT_SCOPE)
        return {"refresh_token": token}

    return router


def company_facts(
    company: Company, client_id: str, client_secret: str, refresh_token: str
) -> dict[str, Any]:
    """What a launcher or test needs to connect to a company."""
    return {
        "company_id": company.company_id,
        "name": company.name,
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
        "bank_account_id": next(iter(company.bank_accounts)),
        "terms_of_payment_id": company.terms_of_payment_id,
        "articles": {str(int(a.vat_rate * 100)): a.id for a in company.articles.values()},
    }
