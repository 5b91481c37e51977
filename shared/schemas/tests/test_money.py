"""Rounding and minor units of nordflow_schemas.money."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nordflow_schemas.money import from_minor_units, money, to_minor_units


@pytest.mark.parametrize(
    ("value", "rounded"),
    [("1.005", "1.01"), ("-1.005", "-1.01"), ("2.004", "2.00"), ("10", "10.00")],
)
def test_money_rounds_half_away_from_zero(value: str, rounded: str) -> None:
    assert money(Decimal(value)) == Decimal(rounded)
    assert str(money(Decimal(value))) == rounded


def test_minor_units() -> None:
    assert to_minor_units(Decimal("1234.565")) == 123457
    assert to_minor_units(Decimal("-0.01")) == -1
    assert from_minor_units(123457) == Decimal("1234.57")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_minor_units_round_trip(units: int) -> None:
    assert to_minor_units(from_minor_units(units)) == units
