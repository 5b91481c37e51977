"""Deliveries: what happened to each invoice's distribution."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from nordflow_runtime.http import Pool
from nordflow_runtime.tenants import Tenant
from nordflow_schemas.events import Channel
from pydantic import BaseModel, Field

from ...domain.channels import public_recipient
from ...domain.deliveries import DeliveryView
from ...service import channels as service
from .common import AppDeps

router = APIRouter(prefix="/api/v1", tags=["channels"])


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
    status: Literal["scheduled", "sent", "failed", "uncertain", "test", "not_sent"]
    not_sent_reason: str | None = Field(
        default=None, description="Why it is never sent (status not_sent)"
    )
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

    @classmethod
    def of(cls, d: DeliveryView) -> "DeliveryOut":
        """The API's view of a delivery (a personal number only masked)."""
        return cls(
            invoice_id=d.invoice_id,
            number=d.number,
            status=d.status,  # type: ignore[arg-type]
            not_sent_reason=d.not_sent_reason,
            test_mode=d.test_mode,
            channel=d.channel,
            recipient=d.recipient,
            document_format=d.document_format,
            customer_key=d.customer_key,
            routed_at=d.routed_at,
            due_at=d.due_at,
            completed_at=d.completed_at,
            route=[
                RouteOut(
                    channel=r.channel,
                    recipient=public_recipient(r),
                    document_format=r.document_format,
                )
                for r in d.routes
            ],
            route_reason=d.route_reason,
            partner_reference=d.partner_reference,
            cost=d.cost,
            archive_sequence=d.archive_sequence,
            errors=[ErrorOut(**e) for e in d.errors],
            attempts=[AttemptOut(**vars(a)) for a in d.attempts],
            fallbacks=[FallbackOut(channel=c, reason=r) for c, r in d.fallbacks],
            attachments=[TravelledAttachmentOut(**a) for a in d.attachments],
        )


@router.get("/deliveries")
async def list_deliveries(
    tenant: Tenant,
    deps: AppDeps,
    pool: Pool,
    invoice_id: str | None = None,
    state: Annotated[
        Literal["scheduled", "sent", "failed", "uncertain", "test", "not_sent"] | None,
        Query(alias="status"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    """Deliveries, newest first: status, channel, attempts, fallbacks, errors.

    With ``invoice_id``, that invoice's delivery (404 when the tenant has none).
    """
    async with pool.acquire() as conn:
        found = await service.deliveries(
            deps.repositories(conn).deliveries,
            tenant,
            invoice_id=invoice_id,
            status=state,
            limit=limit,
        )
    if invoice_id is not None and not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no delivery for this invoice")
    return [DeliveryOut.of(d) for d in found]


@router.get("/deliveries/{invoice_id}")
async def get_delivery(invoice_id: str, tenant: Tenant, deps: AppDeps, pool: Pool) -> DeliveryOut:
    """One invoice's delivery."""
    async with pool.acquire() as conn:
        found = await service.deliveries(
            deps.repositories(conn).deliveries, tenant, invoice_id=invoice_id, limit=1
        )
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no delivery for this invoice")
    return DeliveryOut.of(found[0])
