"""Value rules several sandboxes share: the clock, Swedish time, JSON numbers, the Luhn digit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def utc_now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def stockholm_today(now: datetime) -> date:
    """The calendar date in Sweden at the instant `now`."""
    return now.astimezone(STOCKHOLM).date()


def json_number(value: Decimal) -> int | float:
    """A Decimal as the partners' JSON shows it: integral values as integers, else a number."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def luhn_check_digit(payload: str) -> int:
    """The mod-10 (Luhn) digit that makes `payload + digit` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(payload)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10
