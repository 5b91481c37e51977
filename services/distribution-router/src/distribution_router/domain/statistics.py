"""Statistics periods: calendar days or months of the tenant's time zone, and their totals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from nordflow_schemas.events import Channel
from nordflow_schemas.money import CENT

from .channels import ELECTRONIC, ORDER

Granularity = Literal["day", "month"]
MAX_PERIODS = 400
SHARE = Decimal("0.0001")
ZERO = Decimal("0.00")


class PeriodRangeError(ValueError):
    """A range the statistics cannot be given for (reversed, or too many periods)."""


@dataclass(frozen=True)
class ChannelStats:
    """One channel in one period."""

    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    cost: Decimal = ZERO


@dataclass(frozen=True)
class PeriodStats:
    """Every channel in one period; the share is (PEPPOL + B2C) / all sent."""

    period: dt.date
    channels: dict[Channel, ChannelStats]
    sent: int
    failed: int
    cost: Decimal
    electronic_share: Decimal | None


@dataclass(frozen=True)
class PeriodRow:
    """What the deliveries table gives for one period (its first day) and channel."""

    period: dt.date
    channel: Channel
    sent: int
    failed: int
    uncertain: int
    cost: Decimal


@dataclass(frozen=True)
class Statistics:
    """Per period and channel: sent, failed, cost estimate (SEK), electronic share."""

    from_date: dt.date
    to_date: dt.date
    granularity: Granularity
    currency: str
    time_zone: str
    periods: list[PeriodStats]
    total: PeriodStats


def periods(start: dt.date, end: dt.date, granularity: str) -> list[dt.date]:
    """The first day of every period from ``start`` to ``end``, both included."""
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


def checked_periods(start: dt.date, end: dt.date, granularity: str) -> list[dt.date]:
    """The periods of a range the API accepts; PeriodRangeError names what is wrong."""
    if end < start:
        raise PeriodRangeError("`to` is before `from`")
    # Counted before any period is made: a range of centuries costs nothing to refuse.
    if period_count(start, end, granularity) > MAX_PERIODS:
        raise PeriodRangeError(
            f"at most {MAX_PERIODS} periods: choose a shorter range or granularity=month"
        )
    return periods(start, end, granularity)


def period_count(start: dt.date, end: dt.date, granularity: str) -> int:
    """How many periods ``start`` … ``end`` spans (without making them)."""
    if granularity == "day":
        return (end - start).days + 1
    return (end.year - start.year) * 12 + end.month - start.month + 1


def period_stats(period: dt.date, channels: dict[Channel, ChannelStats]) -> PeriodStats:
    """A period's totals over its channels."""
    sent = sum(c.sent for c in channels.values())
    electronic = sum(c.sent for ch, c in channels.items() if ch in ELECTRONIC)
    return PeriodStats(
        period=period,
        channels=channels,
        sent=sent,
        failed=sum(c.failed for c in channels.values()),
        cost=sum((c.cost for c in channels.values()), ZERO),
        electronic_share=(Decimal(electronic) / Decimal(sent)).quantize(SHARE) if sent else None,
    )


def tabulate(
    firsts: list[dt.date], rows: list[PeriodRow]
) -> tuple[list[PeriodStats], dict[Channel, ChannelStats]]:
    """Every period with every channel (zero where nothing happened), and the totals."""
    table: dict[dt.date, dict[Channel, ChannelStats]] = {
        p: {c: ChannelStats() for c in ORDER} for p in firsts
    }
    for r in rows:
        table[r.period][r.channel] = ChannelStats(
            sent=r.sent,
            failed=r.failed,
            uncertain=r.uncertain,
            cost=Decimal(r.cost).quantize(CENT),
        )
    totals: dict[Channel, ChannelStats] = {}
    for c in ORDER:
        per = [table[p][c] for p in firsts]
        totals[c] = ChannelStats(
            sent=sum(x.sent for x in per),
            failed=sum(x.failed for x in per),
            uncertain=sum(x.uncertain for x in per),
            cost=sum((x.cost for x in per), ZERO),
        )
    return [period_stats(p, table[p]) for p in firsts], totals
