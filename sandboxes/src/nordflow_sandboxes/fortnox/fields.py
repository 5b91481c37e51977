"""Decoding of Fortnox request bodies: wrapper keys, field names and value types."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from nordflow_sandboxes.fortnox.errors import (
    INVALID_FIELD_NAME,
    JSON_SYNTAX,
    NO_OR_INVALID_DATA,
    SANDBOX_INVALID_VALUE,
    VALUE_NOT_BOOLEAN,
    VALUE_NOT_NUMERIC,
    bad_request,
)

JsonObject = dict[str, Any]


def decode_wrapped(raw: bytes, wrapper: str) -> JsonObject:
    """Decode `{"<wrapper>": {...}}` and return the inner object, or raise a Fortnox 400."""
    if not raw.strip():
        raise bad_request(
            NO_OR_INVALID_DATA,
            f"Ingen eller felaktig typ av data. Expected {{{wrapper!r}: {{...}}}}",
        )
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(
            JSON_SYNTAX, f"Error deserializing JSON: JSON_ERROR_SYNTAX ({exc})"
        ) from exc
    if not isinstance(document, dict) or wrapper not in document:
        raise bad_request(
            NO_OR_INVALID_DATA,
            f"Ingen eller felaktig typ av data. The body must be an object with key {wrapper!r}",
        )
    inner = document[wrapper]
    if not isinstance(inner, dict):
        raise bad_request(
            NO_OR_INVALID_DATA, f"Ingen eller felaktig typ av data. {wrapper!r} must be an object"
        )
    return inner


def check_field_names(
    body: Mapping[str, Any], writable: Collection[str], read_only: Collection[str], where: str
) -> None:
    """Reject field names Fortnox does not know (read-only ones are accepted and ignored)."""
    for name in body:
        if name not in writable and name not in read_only:
            raise bad_request(INVALID_FIELD_NAME, f"Felaktigt fältnamn ({where}.{name})")


def invalid_value(field: str, message: str) -> Exception:
    """A 400 naming the field whose value is unacceptable."""
    return bad_request(SANDBOX_INVALID_VALUE, f"{field}: {message}")


def as_text(field: str, value: Any, max_length: int | None = None) -> str:
    """A string field; numbers are accepted and turned into text, as Fortnox does."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid_value(field, f"expected a string, got {value!r}")
    text = value if isinstance(value, str) else str(value)
    if max_length is not None and len(text) > max_length:
        raise invalid_value(field, f"at most {max_length} characters allowed, got {len(text)}")
    return text


def as_decimal(field: str, value: Any) -> Decimal:
    """A numeric field; JSON numbers and numeric strings are both accepted."""
    if isinstance(value, bool) or value is None:
        raise bad_request(VALUE_NOT_NUMERIC, f"Värdet måste vara numeriskt ({value}) [{field}]")
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_finite():
            return number
    raise bad_request(VALUE_NOT_NUMERIC, f"Värdet måste vara numeriskt ({value}) [{field}]")


def as_int(field: str, value: Any) -> int:
    """An integer field (numeric strings accepted)."""
    number = as_decimal(field, value)
    if number != number.to_integral_value():
        raise bad_request(VALUE_NOT_NUMERIC, f"Värdet måste vara numeriskt ({value}) [{field}]")
    return int(number)


def as_bool(field: str, value: Any) -> bool:
    """A boolean field; `true`/`false` as JSON booleans or strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise bad_request(VALUE_NOT_BOOLEAN, f"Värdet måste vara en boolean ({value}) [{field}]")


def as_date(field: str, value: Any) -> date:
    """A date field in `YYYY-MM-DD`."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise invalid_value(field, f"expected a date YYYY-MM-DD, got {value!r}")


def as_enum(field: str, value: Any, allowed: Collection[str]) -> str:
    """One of a fixed set of upper-case codes."""
    if isinstance(value, str) and value in allowed:
        return value
    raise invalid_value(field, f"must be one of {sorted(allowed)}, got {value!r}")


def as_account(field: str, value: Any) -> int:
    """A BAS account number (four digits, 1000-9999)."""
    number = as_int(field, value)
    if not 1000 <= number <= 9999:
        raise invalid_value(field, f"account must be between 1000 and 9999, got {number}")
    return number
