"""The daily window in the tenant's zone: business days and both DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from factoring_gateway.domain.windows import next_window, window_job_key, window_opens

STOCKHOLM = ZoneInfo("Europe/Stockholm")
OSLO = ZoneInfo("Europe/Oslo")
START = dt.time(15, 30)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_winter_and_summer_instants_of_1530_in_stockholm() -> None:
    assert window_opens(dt.date(2025, 1, 15), START, STOCKHOLM) == utc(2025, 1, 15, 14, 30)
    assert window_opens(dt.date(2025, 7, 15), START, STOCKHOLM) == utc(2025, 7, 15, 13, 30)


def test_across_the_spring_change() -> None:
    """Clocks go forward on Sunday 30 March 2025: Friday's window is 14:30 UTC, Monday's
    13:30 UTC; the weekend has none."""
    friday = utc(2025, 3, 28, 14, 30)
    assert next_window(friday - dt.timedelta(minutes=1), START, STOCKHOLM) == (
        dt.date(2025, 3, 28),
        friday,
    )
    assert next_window(friday, START, STOCKHOLM) == (dt.date(2025, 3, 31), utc(2025, 3, 31, 13, 30))


def test_across_the_autumn_change() -> None:
    """Clocks go back on Sunday 26 October 2025: Friday 13:30 UTC, Monday 14:30 UTC."""
    friday = utc(2025, 10, 24, 13, 30)
    assert next_window(utc(2025, 10, 24, 6, 0), START, STOCKHOLM) == (
        dt.date(2025, 10, 24),
        friday,
    )
    assert next_window(friday, START, STOCKHOLM) == (
        dt.date(2025, 10, 27),
        utc(2025, 10, 27, 14, 30),
    )


def test_a_norwegian_tenants_window_is_an_oslo_one() -> None:
    assert next_window(utc(2025, 3, 10, 9, 0), START, OSLO) == (
        dt.date(2025, 3, 10),
        utc(2025, 3, 10, 14, 30),
    )
    late_evening = utc(2025, 3, 10, 23, 30)  # already Tuesday in Oslo
    assert next_window(late_evening, START, OSLO)[0] == dt.date(2025, 3, 11)


def test_a_missed_window_is_followed_by_the_next_one_after_the_catch_up_only() -> None:
    """Down from Thursday to Saturday: the catch-up runs on Saturday; the next is Monday."""
    saturday = utc(2025, 3, 15, 10, 0)
    assert next_window(saturday, START, STOCKHOLM) == (
        dt.date(2025, 3, 17),
        utc(2025, 3, 17, 14, 30),
    )


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (dt.time(2, 30), utc(2025, 3, 31, 0, 30)),  # the next business day, CEST
        (dt.time(0, 0), utc(2025, 3, 30, 22, 0)),
    ],
)
def test_odd_window_times_still_land_on_a_business_day(
    start: dt.time, expected: dt.datetime
) -> None:
    assert next_window(utc(2025, 3, 29, 12, 0), start, STOCKHOLM)[1] == expected


def test_a_local_time_that_does_not_exist_falls_an_hour_later() -> None:
    """02:30 on 30 March 2025 does not exist in Stockholm (a Sunday, but for the rule)."""
    assert window_opens(dt.date(2025, 3, 30), dt.time(2, 30), STOCKHOLM) == utc(2025, 3, 30, 1, 30)
    assert window_opens(dt.date(2025, 10, 26), dt.time(2, 30), STOCKHOLM) == utc(
        2025, 10, 26, 0, 30
    )


def test_the_timer_key_is_per_agreement_and_local_date() -> None:
    assert window_job_key("acme-factor", dt.date(2025, 3, 10)) == "window:acme-factor:2025-03-10"
