"""The daily transfer window in the tenant's time zone: business days, DST-correct instants.

A window opens at the agreement's ``window_start`` on a business day (Monday to Friday;
public holidays are not known here) in the tenant's zone. The instant is found from the
local date and time through the zone's rules, so it moves with daylight saving time: 15:30
in Stockholm is 14:30 UTC in winter and 13:30 UTC in summer. A local time that does not
exist on a spring-forward day (02:30 on the last Sunday of March) falls an hour later, and
one that happens twice on the autumn day is its first occurrence.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

FRIDAY = 4


def is_business_day(day: dt.date) -> bool:
    """Monday to Friday."""
    return day.weekday() <= FRIDAY


def window_opens(day: dt.date, start: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant the window of ``day`` opens at ``start`` local time in ``zone``."""
    local = dt.datetime.combine(day, start, tzinfo=zone)  # fold=0: the first occurrence
    return local.astimezone(dt.UTC)


def next_window(after: dt.datetime, start: dt.time, zone: ZoneInfo) -> tuple[dt.date, dt.datetime]:
    """The first window that opens strictly after ``after``: its local date and UTC instant.

    A window job that ran late (the service was down) schedules the next one from the time
    it actually ran, so a missed window runs once and is never followed by the windows of
    the other days it missed.
    """
    day = after.astimezone(zone).date() - dt.timedelta(days=1)
    while True:
        day += dt.timedelta(days=1)
        if not is_business_day(day):
            continue
        opens = window_opens(day, start, zone)
        if opens > after:
            return day, opens


def window_job_key(agreement_id: str, day: dt.date) -> str:
    """The durable timer's key: one window job per agreement and local business date."""
    return f"window:{agreement_id}:{day.isoformat()}"
