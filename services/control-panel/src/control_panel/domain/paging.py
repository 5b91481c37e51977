"""Cursors for paged lists: the position after the last row shown, opaque to clients."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class BadCursorError(ValueError):
    """The cursor was not made by this list."""


@dataclass(frozen=True)
class Cursor:
    """Lists run newest first by ``(at, key)``; the next page starts after this pair."""

    at: dt.datetime
    key: str

    def encode(self) -> str:
        """The opaque text a client sends back."""
        raw = json.dumps({"t": self.at.isoformat(), "k": self.key}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor in ``text``; ``BadCursorError`` if it is not one."""
        if len(text) > 512:
            raise BadCursorError("cursor: too long")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = json.loads(raw)
            at = dt.datetime.fromisoformat(data["t"])
            key = data["k"]
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise BadCursorError("cursor: not a cursor of this list") from exc
        if at.tzinfo is None or not isinstance(key, str):
            raise BadCursorError("cursor: not a cursor of this list")
        return cls(at, key)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None
