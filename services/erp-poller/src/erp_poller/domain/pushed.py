"""What every push format shares: strict input models, and validation errors as field paths."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Money = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=18, decimal_places=6)]
Rate = Annotated[Decimal, Field(ge=0, lt=100, allow_inf_nan=False, max_digits=8)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class In(BaseModel):
    """A pushed object: unknown fields are refused, text is stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(In):
    """A postal address."""

    lines: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=4)
    postal_code: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=100)
    country_code: str = Field(default="SE", pattern=r"^[A-Z]{2}$")


class InvalidPushError(ValueError):
    """A push that does not validate; ``detail`` says why: a sentence, or one item per field
    (``loc``, ``msg``)."""

    def __init__(self, detail: str | list[dict[str, Any]]) -> None:
        text = detail if isinstance(detail, str) else "; ".join(str(d["msg"]) for d in detail)
        super().__init__(text)
        self.detail = detail


def json_object(body: bytes) -> dict[str, Any]:
    """A push's body as the JSON object it must be."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPushError("body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidPushError("body must be a JSON object")
    return data


def body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """A model's validation errors, each located in the request body."""
    return [
        {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def field_path(loc: Sequence[int | str]) -> str:
    """``documents[0].invoice.lines[1]`` from pydantic's location tuple."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """A model's validation errors as ``{"field": <path>, "message": …}``."""
    return [
        {"field": field_path(e["loc"]), "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
