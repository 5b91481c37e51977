"""The eAccounting API v2 sandbox as a FastAPI app: `/v2/...`, `/connect/token`, `/sandbox/...`."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from nordflow_sandboxes.kit import admin
from nordflow_sandboxes.kit.faults import Fault, strikes_after, strikes_before
from nordflow_sandboxes.kit.faults import FaultIn as KitFaultIn
from nordflow_sandboxes.kit.gate import (
    Admitted,
    Gate,
    bearer,
    prefix_matcher,
    route_errors,
    tenant_of,
)
from nordflow_sandboxes.kit.oauth import (
    ClientSecretMismatchError,
    client_credentials,
    oauth_error,
    token_answer,
    token_form,
)
from nordflow_sandboxes.kit.state import RequestRecord
from nordflow_sandboxes.visma_eaccounting import serialize as out
from nordflow_sandboxes.visma_eaccounting import service
from nordflow_sandboxes.visma_eaccounting.domain import DEFAULT_SCOPE, AccessGrant, Company
from nordflow_sandboxes.visma_eaccounting.errors import (
    CANT_REACH_SYSTEM_DEPENDENCY,
    DATA_MODEL_VALIDATION_ERROR,
    INTERNAL_SERVER_ERROR,
    NO_ACCESS_TO_SCOPES,
    NOT_AUTHORIZED,
    RESOURCE_NOT_FOUND,
    VismaApiError,
    not_found,
    too_many_requests,
)
from nordflow_sandboxes.visma_eaccounting.state import RefreshRefused, VismaEAccountingState

logger = logging.getLogger("nordflow_sandboxes.visma_eaccounting")

API_PREFIX = "/v2"
TOKEN_PATH = "/connect/token"  # noqa: S105 - a path, not a secret
SALES_RESOURCES = frozenset({"customers", "customerinvoices", "articles"})
_is_api_path = prefix_matcher(API_PREFIX)


def create_app(state: VismaEAccountingState | None = None) -> FastAPI:
    """Build the sandbox app around `state` (a fresh default state when None)."""
    state = state or VismaEAccountingState()
    app = admin.sandbox_app(
        state,
        "visma_eaccounting",
        title="Nordflow Visma eAccounting API v2 sandbox",
        version="2",
        routers=[_token_router(state), _api_router(state), _admin_router(state)],
        gate=_gate(state),
    )

    async def on_disconnect(_request: Request, _exc: Exception) -> Response:
        # The client gave up (a timeout) before its body was read: nothing was stored.
        return Response(status_code=499)

    app.add_exception_handler(ClientDisconnect, on_disconnect)
    return app


# ------------------------------------------------------------------------------ helpers


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return VismaApiError(status, code, message, headers=headers).response()


def _company(request: Request) -> Company:
    return cast(Company, tenant_of(request))


def _rate_limited(state: VismaEAccountingState, retry_after: int) -> JSONResponse:
    limiter = state.rate_limiter
    body = too_many_requests(limiter.limit, limiter.window_seconds, retry_after)
    return JSONResponse(body, status_code=429)


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


def _gate(state: VismaEAccountingState) -> Gate[Company]:
    """Bearer authentication, scopes, the rate limit, faults and the request log for `/v2`."""

    def admit(request: Request) -> Admitted[Company] | Response:
        token = bearer(request)
        grant = state.access_grant(token) if token else None
        company = state.company(grant.company_id) if grant else None
        if grant is None or company is None:
            return _error(
                401,
                NOT_AUTHORIZED,
                "Authorization has been denied for this request: no valid bearer token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if grant.expires <= state.now():
            expired = _error(
                401,
                NOT_AUTHORIZED,
                "Authorization has been denied for this request: the access token expired",
                headers={
                    "WWW-Authenticate": (
                        'Bearer error="invalid_token", error_description="The access token expired"'
                    )
                },
            )
            return Admitted(company, expired)
        problem = _scope_problem(grant, request.method.upper(), request.url.path)
        if problem is not None:
            return Admitted(company, _error(403, NO_ACCESS_TO_SCOPES, problem))
        retry_after = state.acquire_rate(grant.client_id, request.url.path)
        if retry_after is not None:
            return Admitted(company, _rate_limited(state, retry_after))
        return Admitted(company)

    def fault_response(fault: Fault, _admitted: Admitted[Company]) -> JSONResponse:
        status = fault.status or 500
        if status == 429:
            return _rate_limited(state, max(fault.retry_after_seconds, 0))
        if status == 500:
            return _error(500, INTERNAL_SERVER_ERROR, "An unhandled error occurred (injected)")
        return _error(status, CANT_REACH_SYSTEM_DEPENDENCY, f"Injected fault: HTTP {status}")

    return Gate(
        is_api_path=_is_api_path,
        admit=admit,
        fault_response=fault_response,
        crash_response=lambda: _error(500, INTERNAL_SERVER_ERROR, "An unhandled error occurred"),
        errors=route_errors(VismaApiError, RESOURCE_NOT_FOUND, DATA_MODEL_VALIDATION_ERROR),
        logger=logger,
    )


# ------------------------------------------------------------------------- token endpoint


def _token_router(state: VismaEAccountingState) -> APIRouter:
    router = APIRouter(tags=["Visma identity (token endpoint)"])

    @router.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        """`grant_type=refresh_token`: rotates the refresh token (the old one stops working)."""
        form = await token_form(request)
        if not isinstance(form, dict):
            return form
        grant_type = form.get("grant_type")
        if not grant_type:
            return oauth_error(400, "invalid_request", "grant_type is missing")
        credentials = client_credentials(request, form)
        client = state.authenticate_client(*credentials) if credentials else None
        if client is None:
            return oauth_error(
                401,
                "invalid_client",
                "Client authentication failed",
                headers={"WWW-Authenticate": 'Basic realm="identity"'},
            )
        if grant_type != "refresh_token":
            return oauth_error(
                400, "unsupported_grant_type", "The sandbox issues tokens by refresh_token only"
            )
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return oauth_error(400, "invalid_request", "refresh_token is missing")

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
        if fault is not None and await strikes_before(fault):
            return log(_token_fault(fault), faulted=True)
        try:
            access, rotated = state.redeem_refresh_token(client, refresh_token)
        except RefreshRefused as refused:
            return log(oauth_error(400, refused.error, refused.description), faulted=False)
        # Rotated already: when the fault strikes, the client never learns the new token.
        if fault is not None and await strikes_after(fault):
            return log(_token_fault(fault), faulted=True)
        lifetime = int((access.expires - state.now()).total_seconds())
        body = {
            "access_token": access.token,
            "expires_in": lifetime,
            "token_type": "Bearer",
            "refresh_token": rotated,
            "scope": access.scope,
        }
        return log(token_answer(body), faulted=fault is not None)

    return router


def _token_fault(fault: Fault) -> JSONResponse:
    status = fault.status or 500
    error = "temporarily_unavailable" if status in (429, 503) else "server_error"
    return oauth_error(status, error, f"Injected fault: HTTP {status}")


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

    @router.post("/bankaccounts")
    async def create_bank_account(request: Request) -> JSONResponse:
        body = service.decode_body(await request.body())
        with state.lock:
            account = service.create_bank_account(_company(request), body)
            return ok(out.bank_account(account), 201)

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


class FaultIn(KitFaultIn):
    """Body of `POST /sandbox/companies/{id}/faults`."""

    path_prefix: str = Field(default=f"{API_PREFIX}/", pattern=r"^/(v2|connect)(/.*)?$")


def _admin_router(state: VismaEAccountingState) -> APIRouter:
    router = admin.admin_router()

    def company_of(company_id: str) -> Company:
        company = state.company(company_id)
        if company is None:
            raise HTTPException(404, f"no company {company_id!r}")
        return company

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

    admin.add_tenant_routes(
        router, state, company_of, FaultIn, listing="companies", path="/companies/{company_id}"
    )

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
