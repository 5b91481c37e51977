"""Value rules shared by the Fortnox sandbox: money rounding, OCR numbers, Stockholm time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from nordflow_sandboxes.fortnox.errors import INVALID_PARAMETER, bad_request

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CENT = Decimal("0.01")
ZERO = Decimal(0)

_LASTMODIFIED = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[ T](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?)?$"
)


def round_money(value: Decimal) -> Decimal:
    """Round to öre (two decimals), half away from zero as Swedish invoicing does."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def round_whole(value: Decimal) -> Decimal:
    """Round to whole currency units (Swedish öresavrundning), half away from zero."""
    return value.quantize(Decimal(1), rounding=ROUND_HALF_UP).quantize(CENT)


def json_number(value: Decimal) -> int | float:
    """Serialise a Decimal the way Fortnox does: integral values as integers, else a number."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def quantity_text(value: Decimal) -> str:
    """Fortnox returns `DeliveredQuantity` as a string with two decimals."""
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP)}"


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


def luhn_valid(number: str) -> bool:
    """True when the last digit of `number` is its Luhn check digit."""
    return (
        len(number) >= 2 and number.isdigit() and luhn_check_digit(number[:-1]) == int(number[-1])
    )


def ocr_for_document(document_number: int) -> str:
    """An OCR reference from the document number: number, length digit, Luhn digit.

    Bankgirot's OCR control: the length digit is the total length mod 10 and is itself
    covered by the check digit. Fortnox's published example invoice 1 carries OCR "133",
    which is exactly this rule applied to "1".
    """
    base = str(document_number)
    length_digit = (len(base) + 2) % 10
    payload = f"{base}{length_digit}"
    return f"{payload}{luhn_check_digit(payload)}"


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def stockholm_today(now: datetime) -> date:
    """The calendar date in Sweden at the instant `now`."""
    return now.astimezone(STOCKHOLM).date()


def parse_lastmodified(raw: str) -> datetime:
    """Parse Fortnox's `lastmodified` (Stockholm local, minute-grained) into an aware instant.

    Accepts `YYYY-MM-DD HH:MM` (the documented form), `YYYY-MM-DD` (midnight) and a
    trailing `:SS`, which is dropped because Fortnox compares at minute precision.
    """
    match = _LASTMODIFIED.match(raw.strip())
    if match is None:
        raise bad_request(
            INVALID_PARAMETER,
            f"Ogiltig parameter i anropet. lastmodified must be 'YYYY-MM-DD HH:MM', got {raw!r}",
        )
    try:
        day = date.fromisoformat(match.group("date"))
        hour = int(match.group("h") or 0)
        minute = int(match.group("m") or 0)
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=STOCKHOLM)
    except ValueError as exc:
        raise bad_request(
            INVALID_PARAMETER, f"Ogiltig parameter i anropet. lastmodified {raw!r}: {exc}"
        ) from exc
    return local.astimezone(UTC)
