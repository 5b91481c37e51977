"""The web pages: server-rendered (Jinja2), live by htmx polling, in sv / nb / en.

Signing in with a control-panel token opens a session (an HttpOnly, SameSite=Strict cookie);
every form that changes something carries the session's form token. Pages show what the
API shows, within what the signed-in token may see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from nordflow_runtime.http import Pool
from nordflow_schemas.common import MAX_DATE, MIN_DATE, SourceSystem
from nordflow_schemas.events import Channel, OperatorAction

from ...deps import Deps
from ...domain.access import ForbiddenError
from ...domain.hints import problem_of
from ...domain.journey import ErrorItem, Status, Step
from ...domain.paging import BadCursorError
from ...domain.records import InvoiceSearch, SearchError
from ...domain.stats import BadRangeError, Granularity
from ...service import Repositories, actions, queries, tokens
from . import charts
from .api import send_command
from .i18n import LANGUAGES, NAMES, Translator, choose
from .security import LANGUAGE_COOKIE, SESSION_COOKIE, AppDeps, WebSession

router = APIRouter(include_in_schema=False)

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("control_panel", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_STATIC = {
    "htmx-2.0.11.min.js": "text/javascript",
    "panel.css": "text/css",
    "htmx-LICENSE.txt": "text/plain",
}
# Scripts and styles only from the panel itself; no frames, no referrer to other sites.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class BadInputError(ValueError):
    """A form field that cannot be read; the message starts with its name."""


@dataclass
class View:
    """Everything a page is rendered with."""

    request: Request
    session: tokens.Session
    deps: Deps
    repos: Repositories
    lang: str
    t: Translator
    zone: ZoneInfo
    tenant: str | None
    tenants: list[str]
    set_language: bool
    refused: str | None = None  # why the page's tenant was refused (a 403 page instead)

    # -- formatting ------------------------------------------------------------------------
    def money(self, amount: Decimal | str | None, currency: str | None = None) -> str:
        """An amount as people of the page's language write it (two decimals)."""
        if amount is None or amount == "":
            return self.t("none")
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            return str(amount)
        text = f"{value:,.2f}"
        if self.lang != "en":
            text = text.replace(",", "\u202f").replace(".", ",")
        return f"{text} {currency}" if currency else text

    def when(self, moment: dt.datetime | str | None) -> str:
        """A moment in the page's time zone."""
        if moment is None:
            return self.t("none")
        if isinstance(moment, str):
            moment = dt.datetime.fromisoformat(moment)
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def share(self, value: Decimal | None) -> str:
        """A share as a percentage."""
        if value is None:
            return self.t("none")
        return f"{(value * 100).quantize(Decimal('0.1'))} %".replace(
            ".", "," if self.lang != "en" else "."
        )

    def link(self, path: str, **params: Any) -> str:
        """A link that keeps the operator's tenant (and drops empty parameters)."""
        query = {k: v for k, v in params.items() if v not in (None, "")}
        if self.tenant and "tenant" not in query and self.session.principal.operator:
            query["tenant"] = self.tenant
        return f"{path}?{urlencode(query)}" if query else path

    def lang_link(self, code: str) -> str:
        """This page in another language."""
        params = {k: v for k, v in self.request.query_params.items() if k != "lang"}
        return self.link(self.request.url.path, **params, lang=code)

    def problem(self, error: ErrorItem) -> str:
        """What the error means, in plain words."""
        return self.t(f"problem.{problem_of(error.rule).value}")

    def fix(self, error: ErrorItem, system: str | None) -> str:
        """What to do about it, naming the field and the source system."""
        return self.t(
            f"fix.{problem_of(error.rule).value}",
            field=error.field,
            rule=error.rule,
            system=_system_name(system) or self.t("fix.source_fallback"),
        )

    def size(self, count: int) -> str:
        """A number of bytes as people read it (MiB, KiB)."""
        for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
            if count >= factor:
                text = f"{count / factor:.1f}".removesuffix(".0")
                return f"{text if self.lang == 'en' else text.replace('.', ',')} {unit}"
        return f"{count} B"

    def file_kinds(self, content_types: tuple[str, ...]) -> str:
        """MIME types by the names people know them by (PDF, PNG …)."""
        return ", ".join(_FILE_KINDS.get(c, c) for c in content_types)

    def step_title(self, step: Step) -> str:
        """A step's name in the page's language (a hold's and a decision's by what changed)."""
        variant = step.facts.get("change") or step.facts.get("decision")
        if step.kind in _VARIANT_KINDS and isinstance(variant, str):
            text = self.t(f"kind.{step.kind}.{variant}")
            if not text.startswith("kind."):
                return text
        key = f"kind.{step.kind}"
        text = self.t(key)
        return self.t("kind.other") + f" ({step.kind})" if text == key else text

    def step_detail(self, step: Step) -> str:
        """One line of what a step said."""
        f = step.facts
        t = self.t
        if step.kind in ("invoice.distributed", "invoice.delivery_uncertain"):
            parts = [t("journey.via", channel=t(f"channel.{f.get('channel')}"))]
            if f.get("recipient"):
                parts.append(t("journey.to", recipient=f["recipient"]))
            reference = f.get("partner_reference") or f.get("reference")
            if reference:
                parts.append(t("journey.reference", reference=reference))
            if f.get("cost") is not None:
                parts.append(
                    t("journey.cost", amount=self.money(f["cost"], f.get("cost_currency")))
                )
            return ", ".join(parts)
        if step.kind == "delivery.hold_updated":
            return self._hold_detail(f)
        if step.kind == "channel.suggestion_decided":
            text = t(
                "journey.decided",
                current=t(f"channel.{f.get('current_channel')}"),
                suggested=t(f"channel.{f.get('suggested_channel')}"),
            )
            if f.get("decided_by"):
                text += " " + t("journey.released_by", who=f["decided_by"])
            return text
        if step.kind == "invoice.delivery_failed":
            return t("journey.via", channel=t(f"channel.{f.get('channel')}"))
        if step.kind == "invoice.transferred":
            text = t(
                "journey.provider",
                provider=f.get("provider"),
                kind=f.get("agreement_kind"),
                transfer=f.get("transfer_id"),
            )
            if f.get("batch_id"):
                serial = f.get("file_serial")
                text += ", " + t(
                    "journey.batch",
                    batch=f["batch_id"],
                    serial=serial if serial is not None else t("none"),
                )
            return text
        if step.kind == "payment.received":
            text = t(
                "journey.paid",
                amount=self.money(f.get("amount_paid"), f.get("currency_paid")),
                payer=f.get("payer"),
                date=f.get("paid_on"),
            )
            return (
                f"{text} ({t('journey.paid_at_source')})" if f.get("recorded_at_source") else text
            )
        if step.kind == "ledger.entry.posted":
            return t(
                "journey.posted",
                kind=t(f"entry.{f.get('entry_kind')}"),
                reference=f.get("erp_reference"),
                account=f.get("account"),
                amount=self.money(f.get("amount_posted"), f.get("currency_posted")),
            )
        if step.kind in ("job.failed", "job.retried"):
            text = t("journey.job", service=f.get("service"), kind=f.get("job_kind"))
            if f.get("requested_by"):
                text += " " + t("journey.retried_by", who=f["requested_by"])
            return text
        if step.kind == "event.dead_lettered":
            return t("journey.dead_letter", consumer=f.get("consumer"))
        if step.kind == "channel.suggested":
            return t(
                "journey.suggested",
                customer=f.get("customer_key"),
                current=t(f"channel.{f.get('current_channel')}"),
                suggested=t(f"channel.{f.get('suggested_channel')}"),
            )
        if step.kind in ("erp.document.fetched", "invoice.rejected"):
            system = _system_name(f.get("source_system"))
            return f"{system or ''} {f.get('document_id') or ''}".strip()
        if step.kind in ("invoice.created", "invoice.updated"):
            return self.money(f.get("amount"), f.get("currency"))
        return ""

    def _hold_detail(self, f: Mapping[str, Any]) -> str:
        t = self.t
        change = f.get("change")
        if change == "placed":
            until = self.when(f.get("held_until"))
            reason = f.get("reason")
            if isinstance(reason, str):
                return t("journey.held_why", until=until, reason=t(f"hold_reason.{reason}"))
            return t("journey.held", until=until)
        if change in ("attachment_added", "attachment_removed"):
            return t("journey.attachment", filename=f.get("attachment"), count=f.get("attachments"))
        if change == "released" and f.get("released_by"):
            return t("journey.released_by", who=f["released_by"])
        return ""


# Steps whose name depends on what they say: a hold's change, a suggestion's decision.
_VARIANT_KINDS = frozenset({"delivery.hold_updated", "channel.suggestion_decided"})
_FILE_KINDS = {
    "application/pdf": "PDF",
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "text/csv": "CSV",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "XLSX",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
}


_SYSTEM_NAMES = {
    "fortnox": "Fortnox",
    "visma-eaccounting": "Visma eAccounting",
    "visma-net": "Visma.net",
    "sirvoy": "Sirvoy",
    "winner": "Winner",
    "on-premise": "on-premise",
}


def _system_name(system: Any) -> str | None:
    return _SYSTEM_NAMES.get(system, system) if isinstance(system, str) else None


async def _view(
    request: Request, session: tokens.Session, deps: Deps, pool: Pool, tenant: str | None
) -> View:
    principal = session.principal
    repos = deps.repositories(pool)
    refused = None
    try:
        scope = principal.scope(_tenant_param(tenant))
    except ForbiddenError as exc:
        scope, refused = principal.scope(None), str(exc)
    asked = request.query_params.get("lang")
    lang = choose(
        asked,
        request.cookies.get(LANGUAGE_COOKIE),
        await queries.locale_of(repos, scope),
        request.headers.get("accept-language"),
    )
    return View(
        request=request,
        session=session,
        deps=deps,
        repos=repos,
        lang=lang,
        t=Translator(lang),
        zone=await queries.zone_of(repos, scope),
        tenant=scope,
        tenants=await repos.read.tenants() if principal.operator else [],
        set_language=asked in LANGUAGES,
        refused=refused,
    )


def _tenant_param(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > 64 or not all(c.isalnum() or c == "-" for c in value):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "tenant: not a tenant id")
    return value


def _render(
    view: View | None, template: str, *, status_code: int = 200, **context: Any
) -> Response:
    base: dict[str, Any] = {"languages": LANGUAGES, "language_names": NAMES}
    if view is not None:
        base |= {
            "v": view,
            "t": view.t,
            "lang": view.lang,
            "principal": view.session.principal,
            "csrf": view.session.csrf,
            "tenant": view.tenant,
            "tenants": view.tenants,
            "refresh": view.deps.settings.refresh_seconds,
            "path": view.request.url.path,
            "query": dict(view.request.query_params),
        }
    html = _TEMPLATES.get_template(template).render(**base, **context)
    response = HTMLResponse(html, status_code=status_code, headers=_HEADERS)
    if view is not None and view.set_language:
        response.set_cookie(
            LANGUAGE_COOKIE, view.lang, max_age=365 * 86400, samesite="strict", httponly=True
        )
    return response


def _partial(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _check_csrf(session: tokens.Session, token: str) -> None:
    if not token or token != session.csrf:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "csrf: the form is stale; reload the page")


# -- static files and signing in ---------------------------------------------------------------
@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The panel's own scripts and styles (htmx is vendored: no CDN)."""
    if name not in _STATIC:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    data = resources.files("control_panel").joinpath("static", name).read_bytes()
    return Response(
        data,
        media_type=_STATIC[name],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/")
async def home() -> Response:
    """To the invoices (or the sign-in page)."""
    return RedirectResponse("/invoices", status.HTTP_303_SEE_OTHER)


def _anonymous(request: Request) -> Translator:
    lang = choose(
        request.query_params.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        None,
        request.headers.get("accept-language"),
    )
    return Translator(lang)


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    """The sign-in form."""
    t = _anonymous(request)
    return _render(None, "sign_in.html", t=t, lang=t.language, error=None)


@router.post("/sign-in")
async def sign_in(
    request: Request, deps: AppDeps, pool: Pool, token: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    """Open a session for a valid token; the cookie never holds the token itself."""
    t = _anonymous(request)
    if not token.strip():
        return _render(
            None, "sign_in.html", status_code=400, t=t, lang=t.language, error=t("sign_in.missing")
        )
    opened = await tokens.sign_in(
        deps.repositories(pool).tokens, token, deps.clock(), deps.settings.session_hours
    )
    if opened is None:
        return _render(
            None, "sign_in.html", status_code=401, t=t, lang=t.language, error=t("sign_in.bad")
        )
    response = RedirectResponse("/invoices", status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        opened.session_id,
        max_age=deps.settings.session_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=deps.settings.session_cookie_secure,
    )
    return response


@router.post("/sign-out")
async def sign_out(
    session: WebSession, deps: AppDeps, pool: Pool, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """End the session."""
    _check_csrf(session, csrf)
    await tokens.sign_out(deps.repositories(pool).tokens, session.session_id)
    response = RedirectResponse("/sign-in", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- invoices ----------------------------------------------------------------------------------
def _text(params: Mapping[str, str], name: str, longest: int = 100) -> str | None:
    value = params.get(name, "").strip()
    if len(value) > longest:
        raise BadInputError(f"{name}: at most {longest} characters")
    return value or None


def _date(params: Mapping[str, str], name: str) -> dt.date | None:
    value = _text(params, name, 10)
    if value is None:
        return None
    try:
        found = dt.date.fromisoformat(value)
    except ValueError:
        raise BadInputError(f"{name}: a date like 2025-03-10") from None
    if not MIN_DATE <= found <= MAX_DATE:
        raise BadInputError(f"{name}: between {MIN_DATE} and {MAX_DATE}")
    return found


def _amount(params: Mapping[str, str], name: str) -> Decimal | None:
    value = _text(params, name, 20)
    if value is None:
        return None
    try:
        amount = Decimal(value.replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        raise BadInputError(f"{name}: a number like 1250.50") from None
    if not amount.is_finite() or not 0 <= amount <= 10**12:
        raise BadInputError(f"{name}: between 0 and 1000000000000")
    return amount


def _choice(params: Mapping[str, str], name: str, allowed: list[str]) -> str | None:
    value = _text(params, name, 40)
    if value is not None and value not in allowed:
        raise BadInputError(f"{name}: one of {', '.join(allowed)}")
    return value


def _search(params: Mapping[str, str]) -> InvoiceSearch:
    status_value = _choice(params, "status", [s.value for s in Status])
    return InvoiceSearch(
        text=_text(params, "q"),
        number=_text(params, "number"),
        customer=_text(params, "customer"),
        source=_choice(params, "source", [s.value for s in SourceSystem]),
        status=Status(status_value) if status_value else None,
        date_from=_date(params, "from"),
        date_to=_date(params, "to"),
        amount_min=_amount(params, "amount_min"),
        amount_max=_amount(params, "amount_max"),
    )


def _bad(view: View, message: str, code: int = 400) -> Response:
    return _render(view, "error.html", status_code=code, message=message)


@router.get("/invoices")
async def invoices_page(
    request: Request, session: WebSession, deps: AppDeps, pool: Pool, tenant: str | None = None
) -> Response:
    """Search the invoices; the first page refreshes itself."""
    view = await _view(request, session, deps, pool, tenant)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    params = request.query_params
    try:
        search = _search(params)
        page = await queries.search_invoices(
            view.repos, session.principal, view.tenant, search, 50, _text(params, "cursor", 512)
        )
    except (BadInputError, SearchError, BadCursorError) as exc:
        return _bad(view, str(exc))
    context: dict[str, Any] = {
        "page": page,
        "statuses": list(Status),
        "sources": [s.value for s in SourceSystem],
        "system_name": _system_name,
        "rejected_view": params.get("status") == Status.REJECTED.value,
        "live": not params.get("cursor"),
        "rows_url": view.link("/invoices", **{k: v for k, v in params.items() if k != "lang"}),
        "next_url": view.link(
            "/invoices",
            **{k: v for k, v in params.items() if k not in ("cursor", "lang")},
            cursor=page.next_cursor,
        )
        if page.next_cursor
        else None,
    }
    if _partial(request):
        return _render(view, "_invoice_rows.html", **context)
    return _render(view, "invoices.html", **context)


@router.get("/invoices/{invoice_id}")
async def invoice_page(
    invoice_id: str,
    request: Request,
    session: WebSession,
    deps: AppDeps,
    pool: Pool,
    tenant: str | None = None,
) -> Response:
    """An invoice's journey, its errors with what to fix, and its document; live."""
    view = await _view(request, session, deps, pool, tenant)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    if len(invoice_id) > 200:
        return _bad(view, "invoice_id: too long")
    found = await queries.invoice_detail(view.repos, session.principal, invoice_id)
    if found is None:
        return _render(view, "error.html", status_code=404, message=view.t("journey.not_found"))
    if not session.principal.operator or found.row.tenant_id != view.tenant:
        view.zone = await queries.zone_of(view.repos, found.row.tenant_id)
    errors = [(s, e) for s in found.steps for e in s.errors]
    archive = None
    sequence = found.row.summary.archive_sequence
    if sequence is not None and deps.settings.distribution_router_url:
        base = deps.settings.distribution_router_url.rstrip("/")
        archive = f"{base}/api/v1/documents/{sequence}/content"
    context: dict[str, Any] = {
        "d": found,
        "s": found.row.summary,
        "errors": errors,
        "archive_url": archive,
        "system_name": _system_name,
        "live_url": f"/invoices/{invoice_id}" + (f"?tenant={view.tenant}" if view.tenant else ""),
    }
    if _partial(request):
        return _render(view, "_journey.html", **context)
    return _render(view, "invoice.html", **context)


async def _act(view: View, pool: Pool, back: str, build: Any, *args: Any) -> Response:
    """Send an operator action's command (checked and recorded by ``build``) and go back to
    ``back``, which shows the request and then the service's answer."""
    try:
        command = await send_command(view.deps, pool, build, *args)
    except actions.NotFoundError as exc:
        return _bad(view, str(exc), 404)
    except actions.ConflictError as exc:
        return _bad(view, str(exc), 409)
    except ForbiddenError as exc:
        return _bad(view, str(exc), 403)
    return RedirectResponse(view.link(back, requested=command.action_id), status.HTTP_303_SEE_OTHER)


# -- connections, delivery, books ----------------------------------------------------------------
@router.get("/connections")
async def connections_page(
    request: Request, session: WebSession, deps: AppDeps, pool: Pool, tenant: str | None = None
) -> Response:
    """Each source connection's mode, last poll and last error, with Sync now."""
    view = await _view(request, session, deps, pool, tenant)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    rows = await view.repos.read.connections(view.tenant)
    history = await view.repos.read.actions(view.tenant, 20)
    return _render(
        view,
        "connections.html",
        rows=rows,
        system_name=_system_name,
        history=[a for a in history if a.action == "sync_connection"],
        flash=request.query_params.get("requested"),
    )


@router.post("/connections/{connection_id}/sync")
async def sync_connection(
    connection_id: str,
    request: Request,
    session: WebSession,
    deps: AppDeps,
    pool: Pool,
    csrf: Annotated[str, Form(max_length=100)] = "",
    tenant: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Ask erp-poller to poll the connection now."""
    _check_csrf(session, csrf)
    view = await _view(request, session, deps, pool, tenant or None)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    return await _act(
        view,
        pool,
        "/connections",
        actions.sync_connection,
        session.principal,
        view.tenant,
        connection_id[:200],
        deps.clock(),
    )


@router.get("/delivery")
async def delivery_page(
    request: Request, session: WebSession, deps: AppDeps, pool: Pool, tenant: str | None = None
) -> Response:
    """Channel per customer, the suggestions to accept or dismiss, and the invoices held
    right now with what to add (distribution-router's API takes the files) and Send now."""
    view = await _view(request, session, deps, pool, tenant)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    requested = _text(request.query_params, "requested", 64)
    return _render(
        view,
        "delivery.html",
        customers=await view.repos.read.customer_channels(view.tenant, 200),
        suggestions=await view.repos.read.suggestions(view.tenant, 200),
        holds=await view.repos.read.holds(view.tenant, deps.clock(), 200),
        router_url=(deps.settings.distribution_router_url or "").rstrip("/") or None,
        history=[
            a
            for a in await view.repos.read.actions(view.tenant, 50)
            if a.action in _DELIVERY_ACTIONS
        ][:20],
        flash=await queries.action(view.repos, session.principal, requested) if requested else None,
    )


_DELIVERY_ACTIONS = frozenset(
    {
        OperatorAction.ACCEPT_SUGGESTION.value,
        OperatorAction.DISMISS_SUGGESTION.value,
        OperatorAction.RELEASE_HOLD.value,
    }
)


@router.post("/delivery/suggestions/{suggestion_id}/{decision}")
async def decide_suggestion(
    suggestion_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    decision: Literal["accept", "dismiss"],
    request: Request,
    session: WebSession,
    deps: AppDeps,
    pool: Pool,
    csrf: Annotated[str, Form(max_length=100)] = "",
    tenant: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Ask distribution-router to accept a suggested channel (the customer's channel from
    then on) or to dismiss it."""
    _check_csrf(session, csrf)
    view = await _view(request, session, deps, pool, tenant or None)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    return await _act(
        view,
        pool,
        "/delivery",
        actions.decide_suggestion,
        session.principal,
        view.tenant,
        suggestion_id,
        decision == "accept",
        deps.clock(),
    )


@router.post("/delivery/holds/{invoice_id}/release")
async def release_hold(
    invoice_id: str,
    request: Request,
    session: WebSession,
    deps: AppDeps,
    pool: Pool,
    csrf: Annotated[str, Form(max_length=100)] = "",
    tenant: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Ask distribution-router to send a held invoice now."""
    _check_csrf(session, csrf)
    view = await _view(request, session, deps, pool, tenant or None)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    return await _act(
        view,
        pool,
        "/delivery",
        actions.release_hold,
        session.principal,
        view.tenant,
        invoice_id[:200],
        deps.clock(),
    )


@router.get("/books")
async def books_page(
    request: Request, session: WebSession, deps: AppDeps, pool: Pool, tenant: str | None = None
) -> Response:
    """Transfers to factors, entries written into the ERP, payments."""
    view = await _view(request, session, deps, pool, tenant)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    read = view.repos.read
    return _render(
        view,
        "books.html",
        transfers=await read.transfers(view.tenant, 200),
        entries=await read.entries(view.tenant, 200),
        payments=await read.payments(view.tenant, 200),
    )


# -- problems --------------------------------------------------------------------------------------
@router.get("/problems")
async def problems_page(
    request: Request, session: WebSession, deps: AppDeps, pool: Pool, tenant: str | None = None
) -> Response:
    """Failed jobs and dead letters of every service, with Retry and Replay; live."""
    view = await _view(request, session, deps, pool, tenant)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    jobs = await queries.failed_jobs(view.repos, session.principal, view.tenant, None, 100, None)
    letters = await queries.dead_letters(view.repos, session.principal, view.tenant, 100, None)
    history = await view.repos.read.actions(view.tenant, 30)
    requested = _text(request.query_params, "requested", 64)
    flash = await queries.action(view.repos, session.principal, requested) if requested else None
    context: dict[str, Any] = {
        "jobs": jobs.items,
        "letters": letters.items,
        "history": history,
        "flash": flash,
        "live_url": view.link("/problems", requested=requested),
    }
    if _partial(request):
        return _render(view, "_problems.html", **context)
    return _render(view, "problems.html", **context)


@router.post("/problems/jobs/{service}/{job_id}/retry")
async def retry_job(
    service: str,
    job_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    session: WebSession,
    deps: AppDeps,
    pool: Pool,
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Ask the job's service to run it again."""
    _check_csrf(session, csrf)
    view = await _view(request, session, deps, pool, request.query_params.get("tenant"))
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    return await _act(
        view,
        pool,
        "/problems",
        actions.retry_job,
        session.principal,
        service[:64],
        job_id,
        deps.clock(),
    )


@router.post("/problems/dead-letters/{letter_id}/replay")
async def replay_dead_letter(
    letter_id: str,
    request: Request,
    session: WebSession,
    deps: AppDeps,
    pool: Pool,
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Ask the service that dead-lettered the record to publish it again (operators)."""
    _check_csrf(session, csrf)
    view = await _view(request, session, deps, pool, request.query_params.get("tenant"))
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    return await _act(
        view,
        pool,
        "/problems",
        actions.replay_dead_letter,
        session.principal,
        letter_id[:500],
        deps.clock(),
    )


# -- statistics ------------------------------------------------------------------------------------
@router.get("/statistics")
async def statistics_page(
    request: Request, session: WebSession, deps: AppDeps, pool: Pool, tenant: str | None = None
) -> Response:
    """Charts per day or month of the tenant's time zone."""
    view = await _view(request, session, deps, pool, tenant)
    if view.refused is not None:
        return _bad(view, view.refused, 403)
    params = request.query_params
    today = deps.clock().astimezone(view.zone).date()
    try:
        granularity = Granularity(
            _choice(params, "granularity", [g.value for g in Granularity]) or "day"
        )
        default_start = (
            today - dt.timedelta(days=29)
            if granularity is Granularity.DAY
            else (today.replace(day=1) - dt.timedelta(days=330)).replace(day=1)
        )
        start = _date(params, "from") or default_start
        end = _date(params, "to") or today
        found = await queries.statistics(
            view.repos,
            session.principal,
            view.tenant,
            start,
            end,
            granularity,
            deps.settings.unit_prices(),
            deps.settings.price_currency,
        )
    except (BadInputError, BadRangeError) as exc:
        return _bad(view, str(exc))
    channels = [c.value for c in Channel]
    sources = sorted({k for p in found.periods for k in p.created})
    labels = [
        p.period.isoformat() if granularity is Granularity.DAY else p.period.strftime("%Y-%m")
        for p in found.periods
    ]
    return _render(
        view,
        "statistics.html",
        stats=found,
        start=start,
        end=end,
        granularity=granularity.value,
        sent_chart=charts.stacked(
            labels,
            {view.t(f"channel.{c}"): [p.sent.get(c, 0) for p in found.periods] for c in channels},
        ),
        created_chart=charts.stacked(
            labels,
            {_system_name(s) or s: [p.created.get(s, 0) for p in found.periods] for s in sources},
        ),
        rejected_chart=charts.stacked(
            labels,
            {
                view.t("stats.rejected"): [p.rejected for p in found.periods],
                view.t("stats.failed"): [p.failed for p in found.periods],
            },
        ),
        channels=channels,
    )
