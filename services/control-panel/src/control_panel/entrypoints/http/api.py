"""The read API for dashboards and partner teams: ``/api/v1`` (OpenAPI at ``/openapi.json``).

Every request carries a control-panel token; a tenant's token sees only its tenant, an
operator's sees every tenant (``?tenant=`` narrows it). Lists page by ``cursor``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, status
from nordflow_runtime import outbox
from nordflow_runtime.http import Pool
from nordflow_schemas.common import Amount, SaneDate, SourceSystem
from nordflow_schemas.envelope import envelope
from nordflow_schemas.events import OperatorActionRequested
from nordflow_schemas.topics import CONTROL_PANEL
from pydantic import BaseModel, ConfigDict, Field

from ...domain.access import ForbiddenError, Principal
from ...domain.hints import problem_of
from ...domain.journey import ErrorItem, Status, Step
from ...domain.paging import BadCursorError
from ...domain.records import (
    ActionRow,
    ConnectionRow,
    CustomerChannel,
    DeadLetterRow,
    EntryRow,
    FailedJob,
    HoldRow,
    InvoiceRow,
    InvoiceSearch,
    JobState,
    PaymentRow,
    SearchError,
    SuggestionRow,
    TransferRow,
)
from ...domain.stats import BadRangeError, Granularity, PeriodFigures
from ...service import actions, queries
from .security import ApiPrincipal, AppDeps

router = APIRouter(prefix="/api/v1", tags=["control panel"])
T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=200, description="At most this many items")]
CursorParam = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page")
]
TenantParam = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Operators: only this tenant. A tenant's token may give only its own.",
    ),
]


class Out(BaseModel):
    """Base of every response model."""

    model_config = ConfigDict(frozen=True)


class PageOut(Out, Generic[T]):
    """One page; pass ``next_cursor`` as ``cursor`` for the next (null: the last page)."""

    items: list[T]
    next_cursor: str | None


class InvoiceOut(Out):
    """An invoice as the list shows it."""

    tenant_id: str
    invoice_id: str
    number: str | None
    customer: str | None
    customer_key: str | None
    source_system: str | None
    connection_id: str | None
    document_id: str | None
    document_type: str | None
    currency: str | None
    amount: Amount | None = Field(description="Payable amount, a decimal string")
    issue_date: dt.date | None
    due_date: dt.date | None
    status: Status
    channel: str | None
    partner_reference: str | None
    archive_sequence: int | None
    error_count: int
    test_mode: bool
    trace_id: str | None
    first_seen_at: dt.datetime
    last_event_at: dt.datetime

    @classmethod
    def of(cls, row: InvoiceRow) -> InvoiceOut:
        """From the read model's row."""
        return cls(tenant_id=row.tenant_id, invoice_id=row.invoice_id, **row.summary.__dict__)


class ErrorOut(Out):
    """One problem: the field to fix, the rule, the message, and its kind in plain words."""

    step: str
    field: str
    rule: str
    message: str
    problem: str = Field(description="required, date, amount, vat, identity, reach, …")

    @classmethod
    def of(cls, step: Step, error: ErrorItem) -> ErrorOut:
        """From a step's error."""
        return cls(
            step=step.kind,
            field=error.field,
            rule=error.rule,
            message=error.message,
            problem=problem_of(error.rule).value,
        )


class StepOut(Out):
    """One step of the journey: the topic it came from, when, and what it said."""

    event_id: str
    kind: str = Field(description="The topic, e.g. invoice.distributed")
    occurred_at: dt.datetime
    trace_id: str | None
    test_mode: bool
    facts: dict[str, Any]
    errors: list[ErrorOut]

    @classmethod
    def of(cls, step: Step) -> StepOut:
        """From the read model's step."""
        return cls(
            event_id=step.event_id,
            kind=step.kind,
            occurred_at=step.occurred_at,
            trace_id=step.trace_id,
            test_mode=step.test_mode,
            facts=dict(step.facts),
            errors=[ErrorOut.of(step, e) for e in step.errors],
        )


class InvoiceDetailOut(InvoiceOut):
    """An invoice with its whole journey, every error, and its newest canonical document."""

    journey: list[StepOut]
    errors: list[ErrorOut]
    document: dict[str, Any] | None


class FailedJobOut(Out):
    """A service's job that failed for good, and whether it was retried since."""

    service: str
    job_id: int
    tenant_id: str
    kind: str
    job_key: str
    invoice_id: str | None
    state: JobState
    attempts: int
    error: str
    failed_at: dt.datetime | None
    retried_at: dt.datetime | None
    retried_by: str | None
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: FailedJob) -> FailedJobOut:
        """From the read model's row."""
        return cls(**row.__dict__)


class DeadLetterOut(Out):
    """A record a service could not process: where it sat and why."""

    letter_id: str
    tenant_id: str
    consumer: str
    origin_topic: str
    origin_partition: str
    origin_offset: str
    position: str = Field(description="<partition>:<offset> in event.dead_lettered")
    event_id: str | None
    event_type: str | None
    invoice_id: str | None
    subject: str | None
    reason: str
    dead_lettered_at: dt.datetime
    replayed_at: dt.datetime | None

    @classmethod
    def of(cls, row: DeadLetterRow) -> DeadLetterOut:
        """From the read model's row."""
        return cls(**row.__dict__)


class ActionOut(Out):
    """An operator action: what was asked and, once the service answered, the outcome."""

    action_id: str
    tenant_id: str
    service: str
    action: str
    target_id: str
    requested_by: str | None
    requested_at: dt.datetime | None
    outcome: str | None = Field(description="null until the service answers")
    message: str | None
    completed_at: dt.datetime | None

    @classmethod
    def of(cls, row: ActionRow) -> ActionOut:
        """From the read model's row."""
        return cls(**row.__dict__)

    @classmethod
    def requested(cls, command: OperatorActionRequested) -> ActionOut:
        """A command just sent."""
        return cls(
            action_id=command.action_id,
            tenant_id=command.tenant_id,
            service=command.service,
            action=command.action.value,
            target_id=command.target_id,
            requested_by=command.requested_by,
            requested_at=command.requested_at,
            outcome=None,
            message=None,
            completed_at=None,
        )


class ConnectionOut(Out):
    """A source connection's newest state (never its credentials)."""

    tenant_id: str
    connection_id: str
    system: str
    mode: str
    revision: int
    last_poll_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    next_poll_at: dt.datetime | None
    removed: bool
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: ConnectionRow) -> ConnectionOut:
        """From the read model's row."""
        return cls(**row.__dict__)


class TransferOut(Out):
    """An invoice handed to a factor."""

    tenant_id: str
    transfer_id: str
    invoice_id: str
    number: str
    provider: str
    agreement_kind: str
    amount: Amount
    currency: str
    transferred_at: dt.datetime
    test_mode: bool
    batch_id: str | None = Field(description="The provider's file (batch) it went in")
    file_serial: int | None = Field(description="That file's serial number at the provider")


class EntryOut(Out):
    """A payment or closing entry written into the tenant's ERP."""

    tenant_id: str
    invoice_id: str
    number: str | None
    entry_kind: str
    erp_reference: str
    amount: Amount
    currency: str
    account: str
    posted_at: dt.datetime


class PaymentOut(Out):
    """A payment against an invoice."""

    tenant_id: str
    payment_id: str
    invoice_id: str
    number: str | None
    amount: Amount
    currency: str
    paid_on: dt.date
    payer: str
    recorded_at_source: bool
    received_at: dt.datetime


class BooksOut(Out):
    """Transfers, ledger entries and payments, newest first."""

    transfers: list[TransferOut]
    entries: list[EntryOut]
    payments: list[PaymentOut]


class CustomerChannelOut(Out):
    """The channel a customer's newest send used."""

    tenant_id: str
    customer_key: str
    customer: str | None
    channel: str
    sent: int
    last_sent_at: dt.datetime


class SuggestionOut(Out):
    """A cheaper channel found for a customer (accept or dismiss it with
    ``POST /api/v1/suggestions/{suggestion_id}/accept`` or ``/dismiss``)."""

    tenant_id: str
    suggestion_id: int
    invoice_id: str
    customer_key: str
    current_channel: str
    suggested_channel: str
    recipient: str
    suggested_at: dt.datetime
    decision: str | None = Field(description="accepted or dismissed; null while open")
    decided_by: str | None
    decided_at: dt.datetime | None


class HoldFileOut(Out):
    """A file attached to a held invoice."""

    filename: str
    content_type: str
    size: int


class HoldNeedsOut(Out):
    """What an open hold waits for: files of these types, within these limits."""

    what: str = Field(description="attachments")
    content_types: list[str]
    max_files: int
    max_file_bytes: int


class HoldOut(Out):
    """An invoice held right now before it is sent, so files can go with it (add them in
    distribution-router's API; send it now with ``POST /api/v1/holds/{invoice_id}/release``)."""

    tenant_id: str
    invoice_id: str
    number: str | None
    customer: str | None
    reason: str | None = Field(description="customer_policy or tenant_policy")
    held_at: dt.datetime
    held_until: dt.datetime = Field(description="When it is sent by itself")
    needed: HoldNeedsOut | None
    attachments: list[HoldFileOut]
    revision: int
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: HoldRow) -> HoldOut:
        """From the read model's row."""
        needed = row.needed
        return cls(
            tenant_id=row.tenant_id,
            invoice_id=row.invoice_id,
            number=row.number,
            customer=row.customer,
            reason=row.reason,
            held_at=row.held_at,
            held_until=row.held_until,
            needed=HoldNeedsOut(
                what=needed.what,
                content_types=list(needed.content_types),
                max_files=needed.max_files,
                max_file_bytes=needed.max_file_bytes,
            )
            if needed is not None
            else None,
            attachments=[HoldFileOut(**f.__dict__) for f in row.attachments],
            revision=row.revision,
            updated_at=row.updated_at,
        )


class DeliveryOut(Out):
    """Channel per customer, the suggestions and the invoices held right now."""

    customers: list[CustomerChannelOut]
    suggestions: list[SuggestionOut]
    holds: list[HoldOut]


class PeriodOut(Out):
    """One period (its first day) of the tenant's calendar."""

    period: dt.date
    sent: dict[str, int] = Field(description="Invoices sent per channel")
    created: dict[str, int] = Field(description="Invoices created per source system")
    rejected: int
    failed: int = Field(description="Invoices whose sending failed")
    electronic_share: Decimal | None = Field(description="(PEPPOL + B2C) / sent, 4 decimals")
    cost: Amount = Field(
        description="What the sends cost as distribution-router recorded it; sends announced "
        "without a price in the price list's currency are estimated from the price list"
    )
    estimated: int = Field(description="How many of the sends' costs are estimated")

    @classmethod
    def of(cls, figures: PeriodFigures) -> PeriodOut:
        """From the use case's figures."""
        return cls(**figures.__dict__)


class StatisticsOut(Out):
    """Figures per day or month of the tenant's time zone (every tenant at once: UTC)."""

    tenant_id: str | None
    time_zone: str
    granularity: Granularity
    price_currency: str
    periods: list[PeriodOut]
    total: PeriodOut


class MeOut(Out):
    """Who the token belongs to."""

    name: str
    tenant_id: str | None
    operator: bool


def _bad_request(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))


def _forbidden(exc: ForbiddenError) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))


@router.get("/me")
async def me(principal: ApiPrincipal) -> MeOut:
    """The token's holder: a tenant, or an operator."""
    return MeOut(name=principal.name, tenant_id=principal.tenant_id, operator=principal.operator)


@router.get("/tenants")
async def tenants(principal: ApiPrincipal, deps: AppDeps, pool: Pool) -> list[str]:
    """Every tenant (operators); a tenant's token sees itself."""
    if not principal.operator:
        return [principal.tenant_id or ""]
    return await deps.repositories(pool).read.tenants()


@router.get("/invoices")
async def list_invoices(
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
    q: Annotated[str | None, Query(max_length=100, description="Number or customer")] = None,
    number: Annotated[str | None, Query(max_length=100, description="Number starts with")] = None,
    customer: Annotated[str | None, Query(max_length=100, description="Customer contains")] = None,
    source: SourceSystem | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    date_from: Annotated[
        SaneDate | None, Query(alias="from", description="Issue date (else first seen) from")
    ] = None,
    date_to: Annotated[SaneDate | None, Query(alias="to", description="… to, included")] = None,
    amount_min: Annotated[Decimal | None, Query(ge=0, le=10**12)] = None,
    amount_max: Annotated[Decimal | None, Query(ge=0, le=10**12)] = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> PageOut[InvoiceOut]:
    """Invoices newest first (by when they were first seen), filtered, a page at a time."""
    search = InvoiceSearch(
        text=q or None,
        number=number or None,
        customer=customer or None,
        source=source.value if source else None,
        status=status_,
        date_from=date_from,
        date_to=date_to,
        amount_min=amount_min,
        amount_max=amount_max,
    )
    try:
        page = await queries.search_invoices(
            deps.repositories(pool), principal, tenant, search, limit, cursor
        )
    except (SearchError, BadCursorError) as exc:
        raise _bad_request(exc) from None
    except ForbiddenError as exc:
        raise _forbidden(exc) from None
    return PageOut[InvoiceOut](
        items=[InvoiceOut.of(r) for r in page.items], next_cursor=page.next_cursor
    )


async def _detail(principal: Principal, deps: AppDeps, pool: Pool, invoice_id: str) -> Any:
    found = await queries.invoice_detail(deps.repositories(pool), principal, invoice_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no invoice {invoice_id!r}")
    return found


@router.get("/invoices/{invoice_id}")
async def get_invoice(
    invoice_id: str, principal: ApiPrincipal, deps: AppDeps, pool: Pool
) -> InvoiceDetailOut:
    """One invoice: its journey (oldest step first), every error, and its document.

    Another tenant's invoice answers 404, exactly like one that does not exist."""
    if len(invoice_id) > 200:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "invoice_id: too long")
    found = await _detail(principal, deps, pool, invoice_id)
    base = InvoiceOut.of(found.row)
    return InvoiceDetailOut(
        **base.model_dump(),
        journey=[StepOut.of(s) for s in found.steps],
        errors=[ErrorOut.of(s, e) for s in found.steps for e in s.errors],
        document=found.document,
    )


@router.get("/invoices/{invoice_id}/journey")
async def get_journey(
    invoice_id: str, principal: ApiPrincipal, deps: AppDeps, pool: Pool
) -> list[StepOut]:
    """The invoice's journey alone, oldest step first."""
    if len(invoice_id) > 200:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "invoice_id: too long")
    found = await _detail(principal, deps, pool, invoice_id)
    return [StepOut.of(s) for s in found.steps]


@router.get("/statistics")
async def get_statistics(
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    date_from: Annotated[SaneDate, Query(alias="from")],
    date_to: Annotated[SaneDate, Query(alias="to")],
    granularity: Granularity = Granularity.DAY,
    tenant: TenantParam = None,
) -> StatisticsOut:
    """Per day or month of the tenant's zone (both ends included, at most 400 periods):
    sends per channel, created per source, rejections, failed sends, electronic share and
    the cost (estimated for sends announced without a price). Test-mode invoices do not
    count."""
    try:
        found = await queries.statistics(
            deps.repositories(pool),
            principal,
            tenant,
            date_from,
            date_to,
            granularity,
            deps.settings.unit_prices(),
            deps.settings.price_currency,
        )
    except BadRangeError as exc:
        raise _bad_request(exc) from None
    except ForbiddenError as exc:
        raise _forbidden(exc) from None
    return StatisticsOut(
        tenant_id=found.tenant_id,
        time_zone=found.zone,
        granularity=found.granularity,
        price_currency=found.price_currency,
        periods=[PeriodOut.of(p) for p in found.periods],
        total=PeriodOut.of(found.total),
    )


@router.get("/connections")
async def list_connections(
    principal: ApiPrincipal, deps: AppDeps, pool: Pool, tenant: TenantParam = None
) -> list[ConnectionOut]:
    """Each source connection's mode, last poll and last error (from connection.updated)."""
    try:
        scope = principal.scope(tenant)
    except ForbiddenError as exc:
        raise _forbidden(exc) from None
    rows = await deps.repositories(pool).read.connections(scope)
    return [ConnectionOut.of(r) for r in rows]


@router.get("/delivery")
async def get_delivery(
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
    limit: Limit = 100,
) -> DeliveryOut:
    """The channel each customer's newest send used, the cheaper channels found (and what
    was decided), and the invoices held right now with what they wait for."""
    try:
        scope = principal.scope(tenant)
    except ForbiddenError as exc:
        raise _forbidden(exc) from None
    read = deps.repositories(pool).read
    customers: list[CustomerChannel] = await read.customer_channels(scope, limit)
    suggestions: list[SuggestionRow] = await read.suggestions(scope, limit)
    holds: list[HoldRow] = await read.holds(scope, deps.clock(), limit)
    return DeliveryOut(
        customers=[CustomerChannelOut(**c.__dict__) for c in customers],
        suggestions=[SuggestionOut(**s.__dict__) for s in suggestions],
        holds=[HoldOut.of(h) for h in holds],
    )


@router.get("/books")
async def get_books(
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
    limit: Limit = 100,
) -> BooksOut:
    """Transfers to factors, entries written into the ERP, and payments, newest first."""
    try:
        scope = principal.scope(tenant)
    except ForbiddenError as exc:
        raise _forbidden(exc) from None
    read = deps.repositories(pool).read
    transfers: list[TransferRow] = await read.transfers(scope, limit)
    entries: list[EntryRow] = await read.entries(scope, limit)
    payments: list[PaymentRow] = await read.payments(scope, limit)
    return BooksOut(
        transfers=[TransferOut(**t.__dict__) for t in transfers],
        entries=[EntryOut(**e.__dict__) for e in entries],
        payments=[PaymentOut(**p.__dict__) for p in payments],
    )


@router.get("/failed-jobs")
async def list_failed_jobs(
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
    state: JobState | None = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> PageOut[FailedJobOut]:
    """Jobs of every service that failed for good (and retried ones), newest first."""
    try:
        page = await queries.failed_jobs(
            deps.repositories(pool),
            principal,
            tenant,
            state.value if state else None,
            limit,
            cursor,
        )
    except BadCursorError as exc:
        raise _bad_request(exc) from None
    except ForbiddenError as exc:
        raise _forbidden(exc) from None
    return PageOut[FailedJobOut](
        items=[FailedJobOut.of(j) for j in page.items], next_cursor=page.next_cursor
    )


@router.get("/dead-letters")
async def list_dead_letters(
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> PageOut[DeadLetterOut]:
    """Records a service could not process, newest first."""
    try:
        page = await queries.dead_letters(deps.repositories(pool), principal, tenant, limit, cursor)
    except BadCursorError as exc:
        raise _bad_request(exc) from None
    except ForbiddenError as exc:
        raise _forbidden(exc) from None
    return PageOut[DeadLetterOut](
        items=[DeadLetterOut.of(d) for d in page.items], next_cursor=page.next_cursor
    )


async def send_command(
    deps: AppDeps, pool: Pool, build: Any, *args: Any
) -> OperatorActionRequested:
    """Check and record an action, and emit its command, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        command: OperatorActionRequested = await build(deps.repositories(conn), *args)
        await outbox.add(conn, envelope(command, source=f"/{CONTROL_PANEL}"))
    deps.committed()
    return command


def _action_error(exc: Exception) -> HTTPException:
    if isinstance(exc, actions.NotFoundError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, actions.ConflictError):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, ForbiddenError):
        return _forbidden(exc)
    raise exc


JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The job's id in its service")]
ACCEPTED: dict[int | str, dict[str, Any]] = {
    status.HTTP_202_ACCEPTED: {"description": "The command is on its way"}
}


@router.post("/failed-jobs/{service}/{job_id}/retry", status_code=202, responses=ACCEPTED)
async def retry_failed_job(
    service: str, job_id: JobId, principal: ApiPrincipal, deps: AppDeps, pool: Pool
) -> ActionOut:
    """Ask the job's service to make it pending again (``retry_job`` on
    operator.action_requested); follow the outcome at ``/api/v1/actions/{action_id}``."""
    if len(service) > 64:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "service: too long")
    try:
        command = await send_command(
            deps, pool, actions.retry_job, principal, service, job_id, deps.clock()
        )
    except (actions.NotFoundError, actions.ConflictError, ForbiddenError) as exc:
        raise _action_error(exc) from None
    return ActionOut.requested(command)


@router.post("/dead-letters/{letter_id}/replay", status_code=202, responses=ACCEPTED)
async def replay_dead_letter(
    letter_id: str, principal: ApiPrincipal, deps: AppDeps, pool: Pool
) -> ActionOut:
    """Ask the service that dead-lettered a record to publish it again (operators)."""
    if len(letter_id) > 500:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "letter_id: too long")
    try:
        command = await send_command(
            deps, pool, actions.replay_dead_letter, principal, letter_id, deps.clock()
        )
    except (actions.NotFoundError, actions.ConflictError, ForbiddenError) as exc:
        raise _action_error(exc) from None
    return ActionOut.requested(command)


@router.post("/connections/{connection_id}/sync", status_code=202, responses=ACCEPTED)
async def sync_connection(
    connection_id: str,
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
) -> ActionOut:
    """Ask erp-poller to poll the connection now (``sync_connection``)."""
    if len(connection_id) > 200:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "connection_id: too long")
    try:
        command = await send_command(
            deps, pool, actions.sync_connection, principal, tenant, connection_id, deps.clock()
        )
    except (actions.NotFoundError, actions.ConflictError, ForbiddenError) as exc:
        raise _action_error(exc) from None
    return ActionOut.requested(command)


SuggestionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The suggestion's id")]


async def _suggestion_command(
    suggestion_id: int,
    accept: bool,
    principal: Principal,
    deps: AppDeps,
    pool: Pool,
    tenant: str | None,
) -> ActionOut:
    try:
        command = await send_command(
            deps,
            pool,
            actions.decide_suggestion,
            principal,
            tenant,
            suggestion_id,
            accept,
            deps.clock(),
        )
    except (actions.NotFoundError, actions.ConflictError, ForbiddenError) as exc:
        raise _action_error(exc) from None
    return ActionOut.requested(command)


@router.post("/suggestions/{suggestion_id}/accept", status_code=202, responses=ACCEPTED)
async def accept_suggestion(
    suggestion_id: SuggestionId,
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
) -> ActionOut:
    """Ask distribution-router to make the suggested channel the customer's channel
    (``accept_suggestion``)."""
    return await _suggestion_command(suggestion_id, True, principal, deps, pool, tenant)


@router.post("/suggestions/{suggestion_id}/dismiss", status_code=202, responses=ACCEPTED)
async def dismiss_suggestion(
    suggestion_id: SuggestionId,
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
) -> ActionOut:
    """Ask distribution-router not to suggest this channel for the customer for a while
    (``dismiss_suggestion``)."""
    return await _suggestion_command(suggestion_id, False, principal, deps, pool, tenant)


@router.post("/holds/{invoice_id}/release", status_code=202, responses=ACCEPTED)
async def release_hold(
    invoice_id: str,
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
) -> ActionOut:
    """Ask distribution-router to send a held invoice now (``release_hold``)."""
    if len(invoice_id) > 200:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "invoice_id: too long")
    try:
        command = await send_command(
            deps, pool, actions.release_hold, principal, tenant, invoice_id, deps.clock()
        )
    except (actions.NotFoundError, actions.ConflictError, ForbiddenError) as exc:
        raise _action_error(exc) from None
    return ActionOut.requested(command)


@router.get("/actions/{action_id}")
async def get_action(
    action_id: str, principal: ApiPrincipal, deps: AppDeps, pool: Pool
) -> ActionOut:
    """An operator action and, once its service answered, the outcome."""
    found = await queries.action(deps.repositories(pool), principal, action_id[:64])
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action_id!r}")
    return ActionOut.of(found)


@router.get("/actions")
async def list_actions(
    principal: ApiPrincipal,
    deps: AppDeps,
    pool: Pool,
    tenant: TenantParam = None,
    limit: Limit = 50,
) -> list[ActionOut]:
    """Operator actions, newest first."""
    try:
        scope = principal.scope(tenant)
    except ForbiddenError as exc:
        raise _forbidden(exc) from None
    rows = await deps.repositories(pool).read.actions(scope, limit)
    return [ActionOut.of(r) for r in rows]
