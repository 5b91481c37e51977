"""Helpers for strings that must hold ASCII digits 0-9 only (str.isdigit also accepts "²")."""

from __future__ import annotations

DIGITS = frozenset("0123456789")


def is_digits(text: str) -> bool:
    """Whether `text` is non-empty and every character is one of 0-9."""
    return bool(text) and all(char in DIGITS for char in text)


def foreign_characters(text: str) -> str:
    """The distinct characters of `text` that are not 0-9, quoted, in order of appearance."""
    seen = dict.fromkeys(char for char in text if char not in DIGITS)
    return ", ".join(repr(char) for char in seen)
