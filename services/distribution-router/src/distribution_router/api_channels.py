"""The tenant API for channels: overrides, paper options, suggestions, deliveries and
statistics.

No `from __future__ import annotations` here: FastAPI must see the real types of the
routes' parameters, including the `Tenant` dependency alias. Every query is scoped to the
token's tenant; another tenant's id answers 404, exactly like an unknown one.
"""

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from nordflow_runtime.tenants import bearer_tenant
from nordflow_schemas.events import Channel
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from . import service
from .channels.print_post import POSTAGE_NAMES
from .domain import ELECTRONIC, ORDER, public_recipient
from .service import Postage, routes_from

PoolProvider = Callable[[], asyncpg.Pool]
# Periods are calendar days and months in the Nordic business day, not UTC.
ZONE = "Europe/Stockholm"
MAX_PERIODS = 400
SHARE = Decimal("0.0001")


class OverrideIn(BaseModel):
    """The tenant's default channel (no ``customer_key``) or one customer's channel."""

    model_config = ConfigDict(extra="forbid")

    customer_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Customer number, else company id, else name; omit for the tenant default",
    )
    channel: Channel


class OverrideOut(BaseModel):
    """One override."""

    customer_key: str | None
    channel: Channel
    updated_at: dt.datetime


class OverridesOut(BaseModel):
    """The tenant default and every customer override."""

    default: OverrideOut | None
    customers: list[OverrideOut]


class PaperOptionsIn(BaseModel):
    """The tenant's paper options; an omitted or null one is the service's default."""

    model_config = ConfigDict(extra="forbid")

    postage: Postage | None = Field(
        default=None, description="A (priority) or B (economy); also 'priority'/'economy'"
    )
    colour: StrictBool | None = Field(
        default=None, description="Print in colour (true) or black and white (false); or `color`"
    )
    duplex: StrictBool | None = Field(default=None, description="Print on both sides")

    @model_validator(mode="before")
    @classmethod
    def _color(cls, data: Any) -> Any:
        """`color` is accepted for `colour` (not both)."""
        if isinstance(data, dict) and "color" in data and "colour" not in data:
            data = {("colour" if k == "color" else k): v for k, v in data.items()}
        return data

    @field_validator("postage", mode="before")
    @classmethod
    def _postage(cls, value: Any) -> Any:
        """`A`/`priority` or `B`/`economy`, any case; anything else is refused by name."""
        if value is None:
            return None
        found = POSTAGE_NAMES.get(value.strip().lower()) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"postage must be A (priority) or B (economy), not {value!r}")
        return found


class PaperDefaults(BaseModel):
    """The service's paper settings (PRINT_POST_POSTAGE, _COLOUR, _DUPLEX)."""

    postage: Postage
    colour: bool
    duplex: bool


class PaperOptionsOut(BaseModel):
    """The tenant's paper options; null = the service's default (PRINT_POST_* settings)."""

    postage: Postage | None
    colour: bool | None
    duplex: bool | None
    updated_at: dt.datetime | None = Field(description="null: the tenant never set any")
    effective: PaperDefaults | None = Field(
        default=None, description="What letters use now: the tenant's values, else the defaults"
    )


class SuggestionOut(BaseModel):
    """A cheaper channel found for a customer."""

    suggestion_id: int
    customer_key: str
    invoice_id: str
    current_channel: Channel
    suggested_channel: Channel
    recipient: str
    state: Literal["open", "dismissed", "accepted"]
    suggested_at: dt.datetime
    decided_at: dt.datetime | None


class AttemptOut(BaseModel):
    """One send attempt (its key is what the partner dedupes and is asked about)."""

    idempotency_key: str
    channel: Channel
    attempt: int
    state: str
    recipient: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    partner_reference: str | None
    cost: Decimal | None
    error: str | None


class FallbackOut(BaseModel):
    """A channel that refused the invoice for good; the next one was tried."""

    channel: Channel
    reason: str


class RouteOut(BaseModel):
    """One channel of the route, in the order tried."""

    channel: Channel
    recipient: str
    document_format: str


class ErrorOut(BaseModel):
    """A reason the invoice was not sent (a rule id, or NF-SEND-REFUSED …)."""

    field: str
    rule: str
    message: str


class TravelledAttachmentOut(BaseModel):
    """How one attachment went with the invoice on the channel that sent it."""

    filename: str
    content_type: str
    size: int
    handling: Literal["embedded", "attached", "printed", "not_printed"]
    pages: int | None = Field(default=None, description="printed: its pages in the letter")
    reason: str | None = Field(default=None, description="not_printed: why")


class DeliveryOut(BaseModel):
    """What happened to one invoice's distribution."""

    invoice_id: str
    number: str
    status: Literal["scheduled", "sent", "failed", "uncertain", "test"]
    test_mode: bool
    channel: Channel
    recipient: str
    document_format: str | None
    customer_key: str | None
    routed_at: dt.datetime
    due_at: dt.datetime | None
    completed_at: dt.datetime | None
    route: list[RouteOut]
    route_reason: str | None
    partner_reference: str | None
    cost: Decimal | None
    archive_sequence: int | None
    errors: list[ErrorOut]
    attempts: list[AttemptOut]
    fallbacks: list[FallbackOut]
    attachments: list[TravelledAttachmentOut] = Field(
        description="The hold attachments as sent: embedded, attached, printed or not printed"
    )


class ChannelStats(BaseModel):
    """One channel in one period."""

    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    cost: Decimal = Decimal("0.00")


class PeriodStats(BaseModel):
    """Every channel in one period; the share is (PEPPOL + B2C) / all sent."""

    period: dt.date
    channels: dict[Channel, ChannelStats]
    sent: int
    failed: int
    cost: Decimal
    electronic_share: Decimal | None


class StatisticsOut(BaseModel):
    """Per period and channel: sent, failed, cost estimate (SEK), electronic share."""

    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")
    granularity: Literal["day", "month"]
    currency: str
    time_zone: str
    periods: list[PeriodStats]
    total: PeriodStats


def _override(row: asyncpg.Record) -> OverrideOut:
    key = row["customer_key"]
    return OverrideOut(
        customer_key=key or None, channel=Channel(row["channel"]), updated_at=row["updated_at"]
    )


def _suggestion(row: asyncpg.Record) -> SuggestionOut:
    return SuggestionOut(**dict(row))


def _delivery(row: asyncpg.Record, attempts: list[asyncpg.Record]) -> DeliveryOut:
    routes = routes_from(row["route"]) if row["route"] is not None else ()
    errors = json.loads(row["errors"]) if row["errors"] else []
    travelled = json.loads(row["attachments"]) if row["attachments"] else []
    return DeliveryOut(
        invoice_id=row["invoice_id"],
        number=row["number"],
        status=row["status"],
        test_mode=row["test_mode"],
        channel=Channel(row["channel"]),
        recipient=row["recipient"],
        document_format=row["document_format"],
        customer_key=row["customer_key"],
        routed_at=row["distributed_at"],
        due_at=row["due_at"],
        completed_at=row["completed_at"],
        route=[
            RouteOut(
                channel=r.channel, recipient=public_recipient(r), document_format=r.document_format
            )
            for r in routes
        ],
        route_reason=row["route_reason"],
        partner_reference=row["partner_reference"],
        cost=row["cost"],
        archive_sequence=row["archive_sequence"],
        errors=[ErrorOut(**e) for e in errors],
        attempts=[
            AttemptOut(
                idempotency_key=a["idempotency_key"],
                channel=Channel(a["channel"]),
                attempt=a["attempt"],
                state=a["state"],
                recipient=a["recipient"],
                started_at=a["started_at"],
                finished_at=a["finished_at"],
                partner_reference=a["partner_reference"],
                cost=a["cost"],
                error=a["error"],
            )
            for a in attempts
        ],
        fallbacks=[
            FallbackOut(channel=Channel(a["channel"]), reason=a["error"] or "refused")
            for a in attempts
            if a["state"] == "fallback"
        ],
        attachments=[TravelledAttachmentOut(**a) for a in travelled],
    )


def _paper_options(
    options: service.PaperOptions, defaults: PaperDefaults | None = None
) -> PaperOptionsOut:
    effective = (
        None
        if defaults is None
        else PaperDefaults(
            postage=options.postage or defaults.postage,
            colour=defaults.colour if options.colour is None else options.colour,
            duplex=defaults.duplex if options.duplex is None else options.duplex,
        )
    )
    return PaperOptionsOut(
        postage=options.postage,
        colour=options.colour,
        duplex=options.duplex,
        updated_at=options.updated_at,
        effective=effective,
    )


def _periods(start: dt.date, end: dt.date, granularity: str) -> list[dt.date]:
    out: list[dt.date] = []
    if granularity == "day":
        day = start
        while day <= end:
            out.append(day)
            day += dt.timedelta(days=1)
        return out
    month = start.replace(day=1)
    while month <= end:
        out.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return out


def _period(period: dt.date, channels: dict[Channel, ChannelStats]) -> PeriodStats:
    sent = sum(c.sent for c in channels.values())
    electronic = sum(c.sent for ch, c in channels.items() if ch in ELECTRONIC)
    return PeriodStats(
        period=period,
        channels=channels,
        sent=sent,
        failed=sum(c.failed for c in channels.values()),
        cost=sum((c.cost for c in channels.values()), Decimal("0.00")),
        electronic_share=(Decimal(electronic) / Decimal(sent)).quantize(SHARE) if sent else None,
    )


def build_channels_api(
    pool: PoolProvider, paper_defaults: PaperDefaults | None = None
) -> APIRouter:
    """The /api/v1 channel routes; ``pool`` is asked at request time (started later).

    ``paper_defaults`` (the service's settings) lets the paper options show what applies.
    """
    router = APIRouter(prefix="/api/v1", tags=["channels"])
    Tenant = Annotated[str, Depends(bearer_tenant(pool))]  # noqa: N806 - a type alias

    @router.get("/channel-overrides")
    async def list_overrides(tenant: Tenant) -> OverridesOut:
        """The tenant's default channel and every customer's own channel."""
        rows = await pool().fetch(
            "SELECT * FROM channel_overrides WHERE tenant_id = $1 ORDER BY customer_key", tenant
        )
        default = [_override(r) for r in rows if r["customer_key"] == ""]
        return OverridesOut(
            default=default[0] if default else None,
            customers=[_override(r) for r in rows if r["customer_key"] != ""],
        )

    @router.put("/channel-overrides")
    async def put_override(body: OverrideIn, tenant: Tenant) -> OverrideOut:
        """Set the default channel (no customer_key) or one customer's channel.

        A channel the recipient cannot take (PEPPOL without registration, B2C without the
        bank's registration, e-mail without an address) is skipped with a reason, per invoice.
        """
        row = await pool().fetchrow(
            "INSERT INTO channel_overrides (tenant_id, customer_key, channel) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id, customer_key) DO UPDATE "
            "SET channel = EXCLUDED.channel, updated_at = now() RETURNING *",
            tenant,
            body.customer_key or "",
            body.channel.value,
        )
        assert row is not None
        return _override(row)

    @router.delete("/channel-overrides", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_override(
        tenant: Tenant,
        customer_key: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> Response:
        """Remove one customer's channel, or the default when no customer_key is given."""
        deleted = await pool().fetchval(
            "DELETE FROM channel_overrides WHERE tenant_id = $1 AND customer_key = $2 "
            "RETURNING true",
            tenant,
            customer_key or "",
        )
        if not deleted:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such override")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/paper-options")
    async def get_paper_options(tenant: Tenant) -> PaperOptionsOut:
        """The tenant's postage class, colour and duplex for letters (null: the default)."""
        async with pool().acquire() as conn:
            return _paper_options(await service.paper_options(conn, tenant), paper_defaults)

    @router.put("/paper-options")
    async def put_paper_options(body: PaperOptionsIn, tenant: Tenant) -> PaperOptionsOut:
        """Replace the tenant's paper options; they apply to letters sent from now on."""
        async with pool().acquire() as conn:
            saved = await service.set_paper_options(
                conn,
                tenant,
                service.PaperOptions(postage=body.postage, colour=body.colour, duplex=body.duplex),
            )
        return _paper_options(saved, paper_defaults)

    @router.delete("/paper-options", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_paper_options(tenant: Tenant) -> Response:
        """Back to the service's defaults; 404 when the tenant set none."""
        async with pool().acquire() as conn:
            deleted = await service.delete_paper_options(conn, tenant)
        if not deleted:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no paper options set")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/suggestions")
    async def list_suggestions(
        tenant: Tenant,
        state: Annotated[Literal["open", "dismissed", "accepted", "all"], Query()] = "open",
    ) -> list[SuggestionOut]:
        """Cheaper channels found for customers sent to on paper or by e-mail."""
        rows = await pool().fetch(
            "SELECT suggestion_id, customer_key, invoice_id, current_channel, suggested_channel, "
            "recipient, state, suggested_at, decided_at FROM channel_suggestions "
            "WHERE tenant_id = $1 AND ($2 = 'all' OR state = $2) ORDER BY suggestion_id DESC "
            "LIMIT 500",
            tenant,
            state,
        )
        return [_suggestion(r) for r in rows]

    async def _decide(tenant: str, suggestion_id: int, decision: str) -> SuggestionOut:
        async with pool().acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT state, customer_key, suggested_channel FROM channel_suggestions "
                "WHERE suggestion_id = $1 AND tenant_id = $2 FOR UPDATE",
                suggestion_id,
                tenant,
            )
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such suggestion")
            if row["state"] != "open":
                raise HTTPException(status.HTTP_409_CONFLICT, f"the suggestion is {row['state']}")
            if decision == "accepted":
                await conn.execute(
                    "INSERT INTO channel_overrides (tenant_id, customer_key, channel) "
                    "VALUES ($1, $2, $3) ON CONFLICT (tenant_id, customer_key) DO UPDATE "
                    "SET channel = EXCLUDED.channel, updated_at = now()",
                    tenant,
                    row["customer_key"],
                    row["suggested_channel"],
                )
            updated = await conn.fetchrow(
                "UPDATE channel_suggestions SET state = $2, decided_at = now() "
                "WHERE suggestion_id = $1 RETURNING suggestion_id, customer_key, invoice_id, "
                "current_channel, suggested_channel, recipient, state, suggested_at, decided_at",
                suggestion_id,
                decision,
            )
        assert updated is not None
        return _suggestion(updated)

    @router.post("/suggestions/{suggestion_id}/dismiss")
    async def dismiss_suggestion(suggestion_id: int, tenant: Tenant) -> SuggestionOut:
        """Not now: the same channel is not suggested again for this customer for a while."""
        return await _decide(tenant, suggestion_id, "dismissed")

    @router.post("/suggestions/{suggestion_id}/accept")
    async def accept_suggestion(suggestion_id: int, tenant: Tenant) -> SuggestionOut:
        """Switch: the suggested channel becomes the customer's channel override."""
        return await _decide(tenant, suggestion_id, "accepted")

    async def _deliveries(
        tenant: str, invoice_id: str | None, state: str | None, limit: int
    ) -> list[DeliveryOut]:
        async with pool().acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM deliveries WHERE tenant_id = $1 "
                "AND ($2::text IS NULL OR invoice_id = $2) AND ($3::text IS NULL OR status = $3) "
                "ORDER BY distributed_at DESC LIMIT $4",
                tenant,
                invoice_id,
                state,
                limit,
            )
            attempts = await conn.fetch(
                "SELECT * FROM delivery_attempts WHERE tenant_id = $1 "
                "AND invoice_id = ANY($2::text[]) ORDER BY started_at, attempt",
                tenant,
                [r["invoice_id"] for r in rows],
            )
        by_invoice: dict[str, list[asyncpg.Record]] = {}
        for a in attempts:
            by_invoice.setdefault(a["invoice_id"], []).append(a)
        return [_delivery(r, by_invoice.get(r["invoice_id"], [])) for r in rows]

    @router.get("/deliveries")
    async def list_deliveries(
        tenant: Tenant,
        invoice_id: str | None = None,
        state: Annotated[
            Literal["scheduled", "sent", "failed", "uncertain", "test"] | None,
            Query(alias="status"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[DeliveryOut]:
        """Deliveries, newest first: status, channel, attempts, fallbacks, errors.

        With ``invoice_id``, that invoice's delivery (404 when the tenant has none).
        """
        found = await _deliveries(tenant, invoice_id, state, limit)
        if invoice_id is not None and not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no delivery for this invoice")
        return found

    @router.get("/deliveries/{invoice_id}")
    async def get_delivery(invoice_id: str, tenant: Tenant) -> DeliveryOut:
        """One invoice's delivery."""
        found = await _deliveries(tenant, invoice_id, None, 1)
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no delivery for this invoice")
        return found[0]

    @router.get("/statistics", response_model_by_alias=True)
    async def statistics(
        tenant: Tenant,
        from_date: Annotated[dt.date, Query(alias="from")],
        to_date: Annotated[dt.date, Query(alias="to")],
        granularity: Literal["day", "month"] = "day",
    ) -> StatisticsOut:
        """Per period and channel: sent, failed, uncertain, cost estimate, electronic share.

        Periods are Europe/Stockholm calendar days or months, ``from`` and ``to`` included;
        an invoice counts in the period it was sent (or failed). Test-mode invoices do not
        count. Cost is the partner's price when it gave one, else the channel's unit price.
        """
        if to_date < from_date:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "`to` is before `from`")
        periods = _periods(from_date, to_date, granularity)
        if len(periods) > MAX_PERIODS:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"at most {MAX_PERIODS} periods: choose a shorter range or granularity=month",
            )
        rows = await pool().fetch(
            "SELECT date_trunc($4, completed_at AT TIME ZONE $5)::date AS period, channel, "
            "count(*) FILTER (WHERE status = 'sent') AS sent, "
            "count(*) FILTER (WHERE status = 'failed') AS failed, "
            "count(*) FILTER (WHERE status = 'uncertain') AS uncertain, "
            "coalesce(sum(cost) FILTER (WHERE status = 'sent'), 0) AS cost "
            "FROM deliveries WHERE tenant_id = $1 AND NOT test_mode "
            "AND completed_at >= ($2::date)::timestamp AT TIME ZONE $5 "
            "AND completed_at < ($3::date + 1)::timestamp AT TIME ZONE $5 "
            "GROUP BY 1, 2",
            tenant,
            from_date,
            to_date,
            granularity,
            ZONE,
        )
        table: dict[dt.date, dict[Channel, ChannelStats]] = {
            p: {c: ChannelStats() for c in ORDER} for p in periods
        }
        for r in rows:
            table[r["period"]][Channel(r["channel"])] = ChannelStats(
                sent=r["sent"],
                failed=r["failed"],
                uncertain=r["uncertain"],
                cost=Decimal(r["cost"]).quantize(Decimal("0.01")),
            )
        totals: dict[Channel, ChannelStats] = {}
        for c in ORDER:
            per = [table[p][c] for p in periods]
            totals[c] = ChannelStats(
                sent=sum(x.sent for x in per),
                failed=sum(x.failed for x in per),
                uncertain=sum(x.uncertain for x in per),
                cost=sum((x.cost for x in per), Decimal("0.00")),
            )
        return StatisticsOut(
            from_date=from_date,
            to_date=to_date,
            granularity=granularity,
            currency="SEK",
            time_zone=ZONE,
            periods=[_period(p, table[p]) for p in periods],
            total=_period(from_date, totals),
        )

    return router
