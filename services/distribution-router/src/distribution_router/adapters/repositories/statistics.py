"""Counts over `deliveries` per period of the tenant's time zone, in PostgreSQL."""

from __future__ import annotations

import datetime as dt

import asyncpg
from nordflow_schemas.events import Channel

from ...domain.statistics import PeriodRow


class PgStatisticsRepository:
    """Completed deliveries grouped by period and channel."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def period_rows(
        self,
        tenant_id: str,
        from_date: dt.date,
        to_date: dt.date,
        granularity: str,
        time_zone: str,
    ) -> list[PeriodRow]:
        """Per period (days or months of ``time_zone``) and channel: sent, failed,
        uncertain and the cost of the sent; test mode never counts."""
        rows = await self.conn.fetch(
            "SELECT date_trunc($4, completed_at AT TIME ZONE $5)::date AS period, channel, "
            "count(*) FILTER (WHERE status = 'sent') AS sent, "
            "count(*) FILTER (WHERE status = 'failed') AS failed, "
            "count(*) FILTER (WHERE status = 'uncertain') AS uncertain, "
            "coalesce(sum(cost) FILTER (WHERE status = 'sent'), 0) AS cost "
            "FROM deliveries WHERE tenant_id = $1 AND NOT test_mode "
            "AND completed_at >= ($2::date)::timestamp AT TIME ZONE $5 "
            "AND completed_at < ($3::date + 1)::timestamp AT TIME ZONE $5 "
            "GROUP BY 1, 2",
            tenant_id,
            from_date,
            to_date,
            granularity,
            time_zone,
        )
        return [
            PeriodRow(
                period=r["period"],
                channel=Channel(r["channel"]),
                sent=r["sent"],
                failed=r["failed"],
                uncertain=r["uncertain"],
                cost=r["cost"],
            )
            for r in rows
        ]

    async def seller_country(self, tenant_id: str) -> str | None:
        """The seller's country on the tenant's latest routed invoice, if any."""
        country: str | None = await self.conn.fetchval(
            "SELECT invoice -> 'seller' -> 'address' ->> 'country_code' FROM deliveries "
            "WHERE tenant_id = $1 AND invoice IS NOT NULL ORDER BY distributed_at DESC LIMIT 1",
            tenant_id,
        )
        return country
