"""The one reader every source uses: fields by name, each problem an issue naming its field.

A source's mapper reads its document through a ``Reader`` and never stops at the first
problem: a missing or malformed field becomes a ``ValidationIssue`` (field, rule, message)
and a neutral value (None, 0, {}), so one rejection lists everything wrong with a document.
Money is parsed from text, never through float, and anything at or beyond ``AMOUNT_LIMIT``
is refused, so later Decimal arithmetic stays exact to the öre.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from nordflow_schemas.events import ValidationIssue
from pydantic import ValidationError

AMOUNT_LIMIT = Decimal(10) ** 12
"""No amount, quantity or price on an invoice is this large (NF-NUMBER, NF-RANGE)."""
# Country names some sources write instead of ISO 3166 codes (Sirvoy's guest addresses).
COUNTRY_NAMES = {
    "SWEDEN": "SE",
    "SVERIGE": "SE",
    "NORWAY": "NO",
    "NORGE": "NO",
    "DENMARK": "DK",
    "DANMARK": "DK",
    "FINLAND": "FI",
    "SUOMI": "FI",
    "GERMANY": "DE",
    "DEUTSCHLAND": "DE",
    "TYSKLAND": "DE",
    "UNITED KINGDOM": "GB",
    "STORBRITANNIEN": "GB",
}
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def optional_text(value: Any) -> str | None:
    """A scalar as stripped text; None when empty, a boolean or not a scalar."""
    if value is None or isinstance(value, dict | list | tuple | bool):
        return None
    text = str(value).strip()
    return text or None


def country_code(value: Any, default: str) -> str:
    """An ISO 3166 alpha-2 code (or a known country name), else ``default``."""
    text = (optional_text(value) or "").upper()
    if len(text) == 2 and text.isalpha() and text.isascii():
        return text
    return COUNTRY_NAMES.get(text, default)


def obj(value: Any) -> dict[str, Any]:
    """A JSON object, or {} for anything else (for optional nested objects)."""
    return value if isinstance(value, dict) else {}


def schema_issues(exc: ValidationError, field: str = "invoice") -> list[ValidationIssue]:
    """The canonical model's own complaints, as NF-SCHEMA issues naming its fields."""
    return [
        ValidationIssue(
            field=".".join(str(p) for p in err["loc"]) or field,
            rule="NF-SCHEMA",
            message=err["msg"],
        )
        for err in exc.errors()
    ]


class Reader:
    """Reads source fields, collecting a readable issue for each one that is missing or bad."""

    def __init__(self) -> None:
        self.issues: list[ValidationIssue] = []

    def fail(self, field: str, rule: str, message: str) -> None:
        """Record one problem."""
        self.issues.append(ValidationIssue(field=field, rule=rule, message=message))

    def fail_model(self, field: str, rule: str, exc: ValidationError) -> None:
        """One issue per problem pydantic found, each naming its field under ``field``."""
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            self.fail(f"{field}.{where}" if where else field, rule, error["msg"])

    def has_issue(self, field: str) -> bool:
        """Whether a problem was recorded on exactly ``field``."""
        return any(i.field == field for i in self.issues)

    def text(
        self, data: dict[str, Any], key: str, field: str, *, required: bool = False
    ) -> str | None:
        """A non-empty string, or None (an issue if required)."""
        value = data.get(key)
        if value is None or str(value).strip() == "":
            if required:
                self.fail(field, "NF-REQUIRED", f"{field} is required")
            return None
        return str(value).strip()

    def decimal(
        self, data: dict[str, Any], key: str, field: str, *, default: Decimal | None = None
    ) -> Decimal:
        """A finite decimal below ``AMOUNT_LIMIT`` (never parsed through float); 0 if bad."""
        value = data.get(key)
        if value is None or value == "":
            if default is not None:
                return default
            self.fail(field, "NF-REQUIRED", f"{field} is required")
            return Decimal(0)
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            self.fail(field, "NF-NUMBER", f"{field} must be a number, got {value!r}")
            return Decimal(0)
        if abs(number) >= AMOUNT_LIMIT:
            # Beyond any invoice, and beyond what Decimal arithmetic keeps exact to the öre.
            self.fail(field, "NF-NUMBER", f"{field} is out of range: {value!r}")
            return Decimal(0)
        return number

    def vat_rate(self, data: dict[str, Any], key: str, field: str) -> Decimal:
        """A VAT rate in percent, 0 up to 100; 0 with an NF-VAT-RATE issue when beyond."""
        rate = self.decimal(data, key, field)
        if not Decimal(0) <= rate < Decimal(100):
            self.fail(field, "NF-VAT-RATE", f"{field} must be 0..99 %, got {rate}")
            return Decimal(0)
        return rate

    def date(
        self,
        data: dict[str, Any],
        key: str,
        field: str,
        *,
        required: bool = False,
        with_time: bool = False,
    ) -> dt.date | None:
        """An ISO date (YYYY-MM-DD); with ``with_time`` also a date-time such as
        ``2025-03-01T00:00:00`` (the date it names), as Visma's APIs send dates."""
        value = self.text(data, key, field, required=required)
        if value is None:
            return None
        try:
            if with_time:
                return dt.datetime.fromisoformat(value).date()
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(field, "NF-DATE", f"{field} must be a date YYYY-MM-DD, got {value!r}")
            return None

    def flag(self, data: dict[str, Any], key: str, field: str) -> bool | None:
        """A boolean (true/false, also as text or 1/0); None when absent, an issue when not."""
        value = data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        self.fail(field, "NF-BOOLEAN", f"{field} must be true or false, got {value!r}")
        return None

    def objects(
        self, data: dict[str, Any], key: str, field: str
    ) -> list[tuple[int, dict[str, Any]]]:
        """The JSON objects of a list with their index (absent: none); anything else: issues."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            self.fail(field, "NF-TYPE", f"{field} must be a list, got {type(value).__name__}")
            return []
        items: list[tuple[int, dict[str, Any]]] = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                items.append((i, item))
            else:
                self.fail(
                    f"{field}[{i}]", "NF-TYPE", f"{field}[{i}] must be an object, got {item!r}"
                )
        return items

    def mapping(self, data: dict[str, Any], key: str, field: str) -> dict[str, Any]:
        """A nested JSON object ({} if absent; an issue if it is something else)."""
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(field, "NF-TYPE", f"{field} must be an object")
            return {}
        return value
