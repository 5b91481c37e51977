"""Delivery statistics per calendar day or month of the tenant's time zone.

The zone is the tenant's profile's (the service's copy, from `tenant.updated`); without a
profile, the zone of the seller's country on the tenant's latest routed invoice; else UTC
(`nordflow_schemas.tenant.tenant_zone`).
"""

from __future__ import annotations

import datetime as dt

from nordflow_schemas.tenant import tenant_zone

from ..domain.statistics import Granularity, Statistics, checked_periods, period_stats, tabulate
from .ports import Repositories

CURRENCY = "SEK"  # costs are the partners' prices and the unit prices, both in SEK


async def zone_of(repos: Repositories, tenant_id: str) -> str:
    """The IANA name of the tenant's time zone."""
    profile = await repos.profiles.get(tenant_id)
    country = None if profile is not None else await repos.statistics.seller_country(tenant_id)
    return str(tenant_zone(profile, country))


async def statistics(
    repos: Repositories,
    tenant_id: str,
    from_date: dt.date,
    to_date: dt.date,
    granularity: Granularity,
) -> Statistics:
    """Per period and channel: sent, failed, uncertain, cost estimate, electronic share.

    Periods are calendar days or months of the tenant's zone, ``from`` and ``to`` included;
    an invoice counts in the period it was sent (or failed). Test-mode invoices do not count.
    Raises `domain.statistics.PeriodRangeError` for a reversed or too long range.
    """
    firsts = checked_periods(from_date, to_date, granularity)
    zone = await zone_of(repos, tenant_id)
    rows = await repos.statistics.period_rows(tenant_id, from_date, to_date, granularity, zone)
    per_period, totals = tabulate(firsts, rows)
    return Statistics(
        from_date=from_date,
        to_date=to_date,
        granularity=granularity,
        currency=CURRENCY,
        time_zone=zone,
        periods=per_period,
        total=period_stats(from_date, totals),
    )
