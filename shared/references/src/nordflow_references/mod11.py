"""MOD11 check digit as used in Norwegian KID: weights 2-7 from the right, 10 shown as "-"."""

from __future__ import annotations

from itertools import cycle

from ._digits import is_digits

WEIGHTS: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
"""Weights applied from the rightmost digit leftwards, repeating after 7."""

DASH = "-"
"""The check "digit" when 11 - (sum mod 11) is 10: no digit fits, so the number shows "-"."""


def weighted_sum(digits: str) -> int:
    """Sum of each digit times its weight (2, 3, 4, 5, 6, 7, 2, ... from the right)."""
    _require_digits(digits)
    return sum(int(d) * w for d, w in zip(reversed(digits), cycle(WEIGHTS), strict=False))


def calc_check_digit(digits: str) -> str:
    """The MOD11 check character for `digits`: "0"-"9", or `DASH` when the result is 10."""
    value = 11 - weighted_sum(digits) % 11
    if value == 11:
        return "0"
    if value == 10:
        return DASH
    return str(value)


def is_valid(number: str) -> bool:
    """Whether the last character of `number` is the MOD11 check character of the rest."""
    if len(number) < 2 or not is_digits(number[:-1]):
        return False
    return calc_check_digit(number[:-1]) == number[-1]


def _require_digits(digits: str) -> None:
    if not is_digits(digits):
        raise ValueError(f"MOD11 needs a non-empty string of digits 0-9, got {digits!r}")
