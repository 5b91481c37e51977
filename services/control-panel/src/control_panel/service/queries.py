"""What the pages and the API show, always within what the principal may see."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nordflow_schemas.events import Channel
from nordflow_schemas.tenant import tenant_zone

from ..domain.access import Principal
from ..domain.journey import Step
from ..domain.paging import Cursor, Page
from ..domain.records import (
    ActionRow,
    DeadLetterRow,
    FailedJob,
    InvoiceRow,
    InvoiceSearch,
)
from ..domain.stats import (
    Granularity,
    PeriodFigures,
    bounds,
    cost,
    electronic_share,
    periods,
)
from . import Repositories

UTC = ZoneInfo("UTC")


async def zone_of(repos: Repositories, tenant_id: str | None) -> ZoneInfo:
    """Where a tenant's days begin: its profile's zone; without a profile yet, its seller's
    country's; every tenant at once: UTC."""
    if tenant_id is None:
        return UTC
    profile = await repos.profiles.get(tenant_id)
    if profile is not None:
        return profile.zone
    return tenant_zone(None, await repos.read.seller_country(tenant_id))


async def locale_of(repos: Repositories, tenant_id: str | None) -> str | None:
    """The tenant's language (its profile's locale), if it has a profile."""
    if tenant_id is None:
        return None
    profile = await repos.profiles.get(tenant_id)
    return profile.locale.value if profile is not None else None


def _cursor(text: str | None) -> Cursor | None:
    return Cursor.decode(text) if text else None


async def search_invoices(
    repos: Repositories,
    principal: Principal,
    tenant: str | None,
    search: InvoiceSearch,
    limit: int,
    cursor: str | None,
) -> Page[InvoiceRow]:
    """A page of the invoices the principal may see that match the search."""
    search.check()
    scope = principal.scope(tenant)
    rows = await repos.read.search(scope, search, limit + 1, _cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    after = Cursor(rows[-1].summary.first_seen_at, rows[-1].invoice_id).encode() if more else None
    return Page(rows, after)


@dataclass(frozen=True)
class InvoiceDetail:
    """An invoice with its journey (oldest step first) and its newest canonical document."""

    row: InvoiceRow
    steps: list[Step]
    document: dict[str, Any] | None


async def invoice_detail(
    repos: Repositories, principal: Principal, invoice_id: str
) -> InvoiceDetail | None:
    """The invoice's journey, or None when the principal's tenant has no such invoice
    (another tenant's invoice is not found, exactly like one that does not exist)."""
    row = await repos.read.invoice(None if principal.operator else principal.tenant_id, invoice_id)
    if row is None:
        return None
    steps = await repos.journeys.steps(row.tenant_id, invoice_id)
    steps.sort(key=lambda s: s.order)
    document = await repos.read.document(row.tenant_id, invoice_id)
    return InvoiceDetail(row, steps, document)


async def failed_jobs(
    repos: Repositories,
    principal: Principal,
    tenant: str | None,
    state: str | None,
    limit: int,
    cursor: str | None,
) -> Page[FailedJob]:
    """Failed jobs of every service the principal may see, newest first."""
    rows = await repos.read.failed_jobs(principal.scope(tenant), state, limit + 1, _cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    after = Cursor(last.updated_at, f"{last.service}:{last.job_id}").encode() if last else None
    return Page(rows, after)


async def dead_letters(
    repos: Repositories, principal: Principal, tenant: str | None, limit: int, cursor: str | None
) -> Page[DeadLetterRow]:
    """Dead letters of every service the principal may see, newest first."""
    rows = await repos.read.dead_letters(principal.scope(tenant), limit + 1, _cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    after = Cursor(last.dead_lettered_at, last.letter_id).encode() if last else None
    return Page(rows, after)


async def action(repos: Repositories, principal: Principal, action_id: str) -> ActionRow | None:
    """One operator action the principal may see."""
    found = await repos.read.action(action_id)
    return found if found is not None and principal.sees(found.tenant_id) else None


@dataclass(frozen=True)
class Statistics:
    """Figures per period of the tenant's calendar, and their totals."""

    tenant_id: str | None
    zone: str
    granularity: Granularity
    periods: list[PeriodFigures]
    total: PeriodFigures
    price_currency: str


def _figures(
    period: dt.date,
    sent: Mapping[str, int],
    created: Mapping[str, int],
    rejected: int,
    failed: int,
    prices: Mapping[Channel, Decimal],
    priced: Mapping[str, Decimal],
    unpriced: Mapping[str, int],
) -> PeriodFigures:
    return PeriodFigures(
        period=period,
        sent=dict(sent),
        created=dict(created),
        rejected=rejected,
        failed=failed,
        electronic_share=electronic_share(sent),
        cost=cost(unpriced, prices, priced),
        estimated=sum(unpriced.values()),
    )


async def statistics(
    repos: Repositories,
    principal: Principal,
    tenant: str | None,
    start: dt.date,
    end: dt.date,
    granularity: Granularity,
    prices: Mapping[Channel, Decimal],
    price_currency: str,
) -> Statistics:
    """Sends per channel, created invoices per source, rejections, electronic share and cost
    per day or month of the tenant's zone (test-mode invoices left out).

    The cost is what each send's ``invoice.distributed`` says it cost when that is in
    ``price_currency``; a send announced without one (before distribution-router carried it,
    or in another currency) is estimated at ``prices`` and counted in ``estimated``."""
    scope = principal.scope(tenant)
    zone = await zone_of(repos, scope)
    keys = periods(start, end, granularity)
    first, after = bounds(start, end, zone)
    counts = await repos.read.counts(
        scope, first, after, zone.key, granularity is Granularity.MONTH, price_currency
    )
    sent: dict[dt.date, dict[str, int]] = defaultdict(dict)
    created: dict[dt.date, dict[str, int]] = defaultdict(dict)
    priced: dict[dt.date, dict[str, Decimal]] = defaultdict(dict)
    unpriced: dict[dt.date, dict[str, int]] = defaultdict(dict)
    for (period, channel), n in counts.sent.items():
        sent[period][channel] = n
    for (period, source), n in counts.created.items():
        created[period][source] = n
    for (period, channel), amount in counts.cost.items():
        priced[period][channel] = amount
    for (period, channel), n in counts.unpriced.items():
        unpriced[period][channel] = n
    rows = [
        _figures(
            p,
            sent[p],
            created[p],
            counts.rejected.get(p, 0),
            counts.failed.get(p, 0),
            prices,
            priced[p],
            unpriced[p],
        )
        for p in keys
    ]
    all_sent: dict[str, int] = defaultdict(int)
    all_created: dict[str, int] = defaultdict(int)
    all_priced: dict[str, Decimal] = defaultdict(Decimal)
    all_unpriced: dict[str, int] = defaultdict(int)
    for p in keys:
        for k, n in sent[p].items():
            all_sent[k] += n
        for k, n in created[p].items():
            all_created[k] += n
        for k, amount in priced[p].items():
            all_priced[k] += amount
        for k, n in unpriced[p].items():
            all_unpriced[k] += n
    total = _figures(
        keys[0],
        all_sent,
        all_created,
        sum(r.rejected for r in rows),
        sum(r.failed for r in rows),
        prices,
        all_priced,
        all_unpriced,
    )
    return Statistics(scope, zone.key, granularity, rows, total, price_currency)
