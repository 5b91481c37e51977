"""Money arithmetic every service and the sandboxes share: öre/cent rounding and minor units."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Final

CENT: Final = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    """Rounded to two decimals, half away from zero (how Nordic ERPs and banks round)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_minor_units(value: Decimal) -> int:
    """Öre / øre / cents as an integer (factor files and bank APIs carry minor units)."""
    return int(money(value) * 100)


def from_minor_units(units: int) -> Decimal:
    """The decimal amount of a count of öre / øre / cents."""
    return (Decimal(units) / 100).quantize(CENT)
