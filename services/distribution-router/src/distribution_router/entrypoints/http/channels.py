"""Channel overrides: the tenant's default channel and each customer's own channel."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from nordflow_runtime.http import Pool
from nordflow_runtime.tenants import Tenant
from nordflow_schemas.events import Channel
from pydantic import BaseModel, ConfigDict, Field

from ...domain.deliveries import Override
from ...service import channels as service
from .common import AppDeps

router = APIRouter(prefix="/api/v1", tags=["channels"])


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

    @classmethod
    def of(cls, found: Override) -> "OverrideOut":
        """The API's view of an override."""
        return cls(
            customer_key=found.customer_key, channel=found.channel, updated_at=found.updated_at
        )


class OverridesOut(BaseModel):
    """The tenant default and every customer override."""

    default: OverrideOut | None
    customers: list[OverrideOut]


@router.get("/channel-overrides")
async def list_overrides(tenant: Tenant, deps: AppDeps, pool: Pool) -> OverridesOut:
    """The tenant's default channel and every customer's own channel."""
    async with pool.acquire() as conn:
        default, customers = await service.overrides(deps.repositories(conn).overrides, tenant)
    return OverridesOut(
        default=None if default is None else OverrideOut.of(default),
        customers=[OverrideOut.of(o) for o in customers],
    )


@router.put("/channel-overrides")
async def put_override(body: OverrideIn, tenant: Tenant, deps: AppDeps, pool: Pool) -> OverrideOut:
    """Set the default channel (no customer_key) or one customer's channel.

    A channel the recipient cannot take (PEPPOL without registration, B2C without the
    bank's registration, e-mail without an address) is skipped with a reason, per invoice.
    """
    async with pool.acquire() as conn:
        saved = await service.set_override(
            deps.repositories(conn).overrides, tenant, body.customer_key, body.channel
        )
    return OverrideOut.of(saved)


@router.delete("/channel-overrides", status_code=status.HTTP_204_NO_CONTENT)
async def delete_override(
    tenant: Tenant,
    deps: AppDeps,
    pool: Pool,
    customer_key: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """Remove one customer's channel, or the default when no customer_key is given."""
    async with pool.acquire() as conn:
        try:
            await service.delete_override(deps.repositories(conn).overrides, tenant, customer_key)
        except service.OverrideNotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
