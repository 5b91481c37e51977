"""Statistics: periods of a tenant's calendar, the electronic share and the cost (what the
sends' events say they cost, else estimated at the price list)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from nordflow_schemas.events import Channel
from nordflow_schemas.money import money

ELECTRONIC = frozenset({Channel.PEPPOL.value, Channel.B2C_BANK.value})
MAX_PERIODS = 400


class Granularity(StrEnum):
    """Per calendar day or month of the tenant's zone."""

    DAY = "day"
    MONTH = "month"


class BadRangeError(ValueError):
    """The period asked for cannot be answered; the message names the field."""


def period_of(day: dt.date, granularity: Granularity) -> dt.date:
    """The first day of the period ``day`` falls in."""
    return day if granularity is Granularity.DAY else day.replace(day=1)


def periods(start: dt.date, end: dt.date, granularity: Granularity) -> list[dt.date]:
    """Every period from ``start`` to ``end``, both included (at most ``MAX_PERIODS``)."""
    if end < start:
        raise BadRangeError("to: before from")
    out: list[dt.date] = []
    current = period_of(start, granularity)
    while current <= end:
        out.append(current)
        if len(out) > MAX_PERIODS:
            raise BadRangeError(f"to: at most {MAX_PERIODS} periods (days or months) at a time")
        if granularity is Granularity.DAY:
            current += dt.timedelta(days=1)
        else:
            current = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def bounds(start: dt.date, end: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The instants where ``start`` begins and the day after ``end`` begins, in ``zone``."""
    return (
        dt.datetime.combine(start, dt.time(0), zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), zone),
    )


def electronic_share(sent: Mapping[str, int]) -> Decimal | None:
    """PEPPOL and B2C bank sends over all sends (4 decimals); None without sends."""
    total = sum(sent.values())
    if total == 0:
        return None
    electronic = sum(n for channel, n in sent.items() if channel in ELECTRONIC)
    return (Decimal(electronic) / Decimal(total)).quantize(
        Decimal("0.0001"), rounding=ROUND_HALF_UP
    )


def cost(
    sent: Mapping[str, int],
    prices: Mapping[Channel, Decimal],
    priced: Mapping[str, Decimal] | None = None,
) -> Decimal:
    """What the sends cost: ``priced`` is the sum of the costs the sends' events carried (per
    channel, in the price list's currency); every send in ``sent`` is estimated at the price
    list (the events that carry no price: older ones, or in another currency)."""
    estimated = sum(
        (prices.get(Channel(channel), Decimal(0)) * n for channel, n in sent.items()), Decimal(0)
    )
    return money(estimated + sum((priced or {}).values(), Decimal(0)))


@dataclass(frozen=True)
class PeriodFigures:
    """One period: sends per channel, created invoices per source, rejections, share, cost
    (and how many sends of it were estimated at the price list)."""

    period: dt.date
    sent: dict[str, int]
    created: dict[str, int]
    rejected: int
    failed: int
    electronic_share: Decimal | None
    cost: Decimal
    estimated: int = 0
