"""Value rules several sandboxes share: the clock, Swedish time, JSON numbers, Luhn and OCR."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ZERO = Decimal(0)


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
