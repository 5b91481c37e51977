"""Value rules of the Fortnox sandbox: whole-krona rounding, quantities, `lastmodified` times."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from nordflow_schemas.money import CENT, money

from nordflow_sandboxes.fortnox.errors import INVALID_PARAMETER, bad_request
from nordflow_sandboxes.kit.values import STOCKHOLM

_LASTMODIFIED = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[ T](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?)?$"
)


def round_whole(value: Decimal) -> Decimal:
    """Round to whole currency units (Swedish öresavrundning), half away from zero."""
    return value.quantize(Decimal(1), rounding=ROUND_HALF_UP).quantize(CENT)


def quantity_text(value: Decimal) -> str:
    """Fortnox returns `DeliveredQuantity` as a string with two decimals."""
    return f"{money(value)}"


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
