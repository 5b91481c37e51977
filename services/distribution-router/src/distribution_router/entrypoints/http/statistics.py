"""Statistics: per period and channel, sent, failed, cost and the electronic share."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from nordflow_runtime.http import Pool
from nordflow_runtime.tenants import Tenant
from nordflow_schemas.common import SaneDate
from nordflow_schemas.events import Channel
from pydantic import BaseModel, Field

from ...domain.statistics import ChannelStats, PeriodRangeError, PeriodStats
from ...service import statistics as service
from .common import AppDeps

router = APIRouter(prefix="/api/v1", tags=["channels"])


class ChannelStatsOut(BaseModel):
    """One channel in one period."""

    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    cost: Decimal = Decimal("0.00")

    @classmethod
    def of(cls, stats: ChannelStats) -> "ChannelStatsOut":
        """The API's view."""
        return cls(**vars(stats))


class PeriodStatsOut(BaseModel):
    """Every channel in one period; the share is (PEPPOL + B2C) / all sent."""

    period: dt.date
    channels: dict[Channel, ChannelStatsOut]
    sent: int
    failed: int
    cost: Decimal
    electronic_share: Decimal | None

    @classmethod
    def of(cls, stats: PeriodStats) -> "PeriodStatsOut":
        """The API's view."""
        return cls(
            period=stats.period,
            channels={c: ChannelStatsOut.of(s) for c, s in stats.channels.items()},
            sent=stats.sent,
            failed=stats.failed,
            cost=stats.cost,
            electronic_share=stats.electronic_share,
        )


class StatisticsOut(BaseModel):
    """Per period and channel: sent, failed, cost estimate (SEK), electronic share."""

    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")
    granularity: Literal["day", "month"]
    currency: str
    time_zone: str = Field(description="The tenant's zone, whose days and months are counted")
    periods: list[PeriodStatsOut]
    total: PeriodStatsOut


@router.get("/statistics", response_model_by_alias=True)
async def statistics(
    tenant: Tenant,
    deps: AppDeps,
    pool: Pool,
    from_date: Annotated[SaneDate, Query(alias="from")],
    to_date: Annotated[SaneDate, Query(alias="to")],
    granularity: Literal["day", "month"] = "day",
) -> StatisticsOut:
    """Per period and channel: sent, failed, uncertain, cost estimate, electronic share.

    Periods are calendar days or months of the tenant's time zone (its profile's; without
    one, its seller's country's), ``from`` and ``to`` included; an invoice counts in the
    period it was sent (or failed). Test-mode invoices do not count. Cost is the partner's
    price when it gave one, else the channel's unit price.
    """
    async with pool.acquire() as conn:
        try:
            found = await service.statistics(
                deps.repositories(conn), tenant, from_date, to_date, granularity
            )
        except PeriodRangeError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return StatisticsOut(
        from_date=found.from_date,
        to_date=found.to_date,
        granularity=found.granularity,
        currency=found.currency,
        time_zone=found.time_zone,
        periods=[PeriodStatsOut.of(p) for p in found.periods],
        total=PeriodStatsOut.of(found.total),
    )
