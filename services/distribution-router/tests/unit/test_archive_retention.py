"""archive.retain_until: kept through the end of the 7th year after the fiscal year."""

from __future__ import annotations

import datetime as dt

import pytest
from distribution_router.domain.archive import fiscal_year_end, retain_until
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("issue_date", "expected"),
    [
        (dt.date(2024, 1, 1), dt.date(2031, 12, 31)),
        (dt.date(2024, 12, 31), dt.date(2031, 12, 31)),
        (dt.date(2025, 1, 1), dt.date(2032, 12, 31)),
        (dt.date(2024, 2, 29), dt.date(2031, 12, 31)),
    ],
)
def test_calendar_fiscal_year_is_kept_through_the_seventh_year_end(issue_date, expected):
    assert retain_until(issue_date) == expected


@pytest.mark.parametrize(
    ("issue_date", "start_month", "fiscal_end", "expected"),
    [
        # Fiscal year 1 July to 30 June: the year ending 30 June 2024 ends in calendar 2024.
        (dt.date(2024, 6, 30), 7, dt.date(2024, 6, 30), dt.date(2031, 12, 31)),
        (dt.date(2024, 7, 1), 7, dt.date(2025, 6, 30), dt.date(2032, 12, 31)),
        (dt.date(2024, 12, 31), 7, dt.date(2025, 6, 30), dt.date(2032, 12, 31)),
        # 1 February to 31 January: the year crosses the calendar year end by one month.
        (dt.date(2024, 1, 31), 2, dt.date(2024, 1, 31), dt.date(2031, 12, 31)),
        (dt.date(2024, 2, 1), 2, dt.date(2025, 1, 31), dt.date(2032, 12, 31)),
        # 1 March to end of February, with a leap day.
        (dt.date(2023, 3, 1), 3, dt.date(2024, 2, 29), dt.date(2031, 12, 31)),
        (dt.date(2024, 2, 29), 3, dt.date(2024, 2, 29), dt.date(2031, 12, 31)),
        (dt.date(2024, 3, 1), 3, dt.date(2025, 2, 28), dt.date(2032, 12, 31)),
        # 1 December to 30 November.
        (dt.date(2024, 11, 30), 12, dt.date(2024, 11, 30), dt.date(2031, 12, 31)),
        (dt.date(2024, 12, 1), 12, dt.date(2025, 11, 30), dt.date(2032, 12, 31)),
    ],
)
def test_broken_fiscal_year_counts_from_the_calendar_year_it_ends_in(
    issue_date, start_month, fiscal_end, expected
):
    assert fiscal_year_end(issue_date, start_month) == fiscal_end
    assert retain_until(issue_date, start_month) == expected


def test_a_month_outside_1_to_12_is_refused():
    with pytest.raises(ValueError, match="fiscal_year_start_month"):
        retain_until(dt.date(2024, 1, 1), 13)


@given(
    issue_date=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2200, 12, 31)),
    start_month=st.integers(min_value=1, max_value=12),
)
def test_fiscal_year_end_is_the_day_before_a_fiscal_year_starts(issue_date, start_month):
    end = fiscal_year_end(issue_date, start_month)
    assert issue_date <= end < issue_date.replace(day=1) + dt.timedelta(days=366)
    following = end + dt.timedelta(days=1)
    assert (following.day, following.month) == (1, start_month)
    kept = retain_until(issue_date, start_month)
    assert (kept.month, kept.day) == (12, 31)
    assert kept.year == end.year + 7
    assert kept - issue_date > dt.timedelta(days=7 * 365)
