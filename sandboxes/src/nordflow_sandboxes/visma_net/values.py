"""Value rules of the Visma.net sandbox: KID, wrapped `{"value": ...}` fields, times, ETags."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from nordflow_sandboxes.kit.values import luhn_check_digit
from nordflow_sandboxes.visma_net.errors import bad_request

# Formats the documented `lastModifiedDateTime` filter accepts: `2001-01-01`,
# `2001-01-01 13:13:13`, `2001-01-01 13:13:13.133` (and `HH:MM`, as the swagger text says).
_FILTER_MOMENT = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[ T](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,7}))?)?)?$"
)
CONDITIONS = (">=", "<=", ">", "<")


def kid_for(reference_number: str) -> str:
    """The sandbox's payment reference: the document number's digits plus a MOD10 digit."""
    digits = "".join(ch for ch in reference_number if ch.isdigit()) or "0"
    return f"{digits}{luhn_check_digit(digits)}"


def etag_of(rowversion: int) -> str:
    """An ETag shaped like Visma.net's (base64 of an 8-byte row version, e.g. `AAAAAE0YIiI=`)."""
    return base64.b64encode(rowversion.to_bytes(8, "big")).decode("ascii")


def etag_matches(header: str, current: str) -> bool:
    """Whether an If-Match header names the current ETag (quotes, `W/` and `*` tolerated)."""
    for candidate in header.split(","):
        value = candidate.strip()
        if value == "*":
            return True
        value = value.removeprefix("W/").strip().strip('"')
        if value == current:
            return True
    return False


def truncate_ms(moment: datetime) -> datetime:
    """Drop sub-millisecond precision, so the stored time equals the one the API shows."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def api_datetime(moment: datetime, zone: tzinfo) -> str:
    """A timestamp as the API shows it: wall-clock time in `zone`, milliseconds, no offset."""
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def api_date(day: date) -> str:
    """A date field as the API shows it (a DateTime at midnight, no offset)."""
    return f"{day.isoformat()}T00:00:00"


def parse_filter_moment(raw: str, zone: tzinfo) -> datetime:
    """Parse a `lastModifiedDateTime` filter value as wall-clock time in `zone` (aware, UTC)."""
    match = _FILTER_MOMENT.match(raw.strip())
    if match is None:
        raise bad_request(
            f"Invalid lastModifiedDateTime '{raw}': use YYYY-MM-DD, YYYY-MM-DD HH:MM:SS "
            "or YYYY-MM-DD HH:MM:SS.fff"
        )
    try:
        day = date.fromisoformat(match["date"])
        fraction = (match["f"] or "0").ljust(6, "0")[:6]
        local = datetime(
            day.year,
            day.month,
            day.day,
            int(match["h"] or 0),
            int(match["m"] or 0),
            int(match["s"] or 0),
            int(fraction),
            tzinfo=zone,
        )
    except ValueError as exc:
        raise bad_request(f"Invalid lastModifiedDateTime '{raw}': {exc}") from exc
    return local.astimezone(UTC)


def compare(left: datetime, condition: str, right: datetime) -> bool:
    """Apply a documented `...DateTimeCondition` operator."""
    if condition == ">=":
        return left >= right
    if condition == ">":
        return left > right
    if condition == "<=":
        return left <= right
    return left < right


# ------------------------------------------------------------------ wrapped fields


def unwrap(body: dict[str, Any], name: str) -> Any:
    """The value of a `{"value": x}` field (a bare value is accepted too); None when absent."""
    raw = body.get(name)
    if isinstance(raw, dict) and "value" in raw:
        return raw["value"]
    return raw


def as_text(name: str, value: Any, max_length: int | None = None) -> str | None:
    """A string field, or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise bad_request(f"'{name}' must be a string")
    text = str(value)
    if max_length is not None and len(text) > max_length:
        raise bad_request(f"'{name}' is longer than {max_length} characters")
    return text


def as_decimal(name: str, value: Any) -> Decimal | None:
    """A number field (JSON number or numeric string), or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise bad_request(f"'{name}' must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise bad_request(f"'{name}' must be a number, got {value!r}") from exc
    if not number.is_finite():
        raise bad_request(f"'{name}' must be a finite number")
    return number


def as_bool(name: str, value: Any) -> bool | None:
    """A boolean field, or None when absent."""
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false")
    return value


def as_date(name: str, value: Any) -> date | None:
    """A date field: `YYYY-MM-DD` or a DateTime string whose date part is used."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a date string")
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise bad_request(f"'{name}' is not a date: {value!r}") from exc
