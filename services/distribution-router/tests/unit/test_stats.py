"""domain.statistics: the periods of a range and a period's totals."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from distribution_router.domain.statistics import (
    MAX_PERIODS,
    ChannelStats,
    PeriodRangeError,
    checked_periods,
    period_count,
    period_stats,
    periods,
)
from hypothesis import given
from hypothesis import strategies as st
from nordflow_schemas.events import Channel


def test_days_include_both_ends() -> None:
    assert periods(dt.date(2025, 2, 27), dt.date(2025, 3, 1), "day") == [
        dt.date(2025, 2, 27),
        dt.date(2025, 2, 28),
        dt.date(2025, 3, 1),
    ]


def test_months_start_on_the_first_and_cross_the_year() -> None:
    assert periods(dt.date(2024, 11, 15), dt.date(2025, 1, 2), "month") == [
        dt.date(2024, 11, 1),
        dt.date(2024, 12, 1),
        dt.date(2025, 1, 1),
    ]


@given(
    start=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 1, 1)),
    days=st.integers(min_value=0, max_value=800),
)
def test_month_periods_are_consecutive_firsts_covering_the_range(start: dt.date, days: int) -> None:
    end = start + dt.timedelta(days=days)
    months = periods(start, end, "month")
    assert months[0] == start.replace(day=1)
    assert months[-1] == end.replace(day=1)
    assert all(m.day == 1 for m in months)
    for a, b in itertools.pairwise(months):
        assert (b.year * 12 + b.month) - (a.year * 12 + a.month) == 1


def test_electronic_share_is_peppol_and_b2c_over_all_sent() -> None:
    period = period_stats(
        dt.date(2025, 3, 1),
        {
            Channel.PEPPOL: ChannelStats(sent=1, cost=Decimal("0.50")),
            Channel.B2C_BANK: ChannelStats(sent=1, cost=Decimal("0.80")),
            Channel.EMAIL: ChannelStats(sent=1, failed=2, cost=Decimal("1.00")),
            Channel.PAPER: ChannelStats(),
        },
    )
    assert (period.sent, period.failed, period.cost) == (3, 2, Decimal("2.30"))
    assert period.electronic_share == Decimal("0.6667")


def test_a_period_without_sends_has_no_share() -> None:
    period = period_stats(dt.date(2025, 3, 1), {c: ChannelStats(failed=1) for c in Channel})
    assert period.electronic_share is None
    assert period.failed == 4


@given(
    start=st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2099, 12, 31)),
    end=st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2099, 12, 31)),
    granularity=st.sampled_from(["day", "month"]),
)
def test_a_range_is_counted_before_any_period_is_made(
    start: dt.date, end: dt.date, granularity: str
) -> None:
    """Any range is answered in constant work: periods are made only when few enough."""
    if end < start:
        with pytest.raises(PeriodRangeError):
            checked_periods(start, end, granularity)
        return
    count = period_count(start, end, granularity)
    if count > MAX_PERIODS:
        with pytest.raises(PeriodRangeError, match="at most"):
            checked_periods(start, end, granularity)
    else:
        assert len(checked_periods(start, end, granularity)) == count
