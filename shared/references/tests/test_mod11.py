"""MOD11 check digit: published worked examples and the 10 -> "-" / 11 -> "0" rules."""

from __future__ import annotations

import pytest
from nordflow_references import mod11


@pytest.mark.parametrize(
    ("base", "check"),
    [
        ("1234", "3"),  # DOMAIN.md §3: 1234 -> 12343
        ("13739", "1"),  # IBM mod 11 worked example (sum 76, remainder 10)
        ("1234567", "4"),  # HP RPG/XL manual worked example (sum 106)
        ("943457842", "3"),  # CA Ideal manual worked example (sum 195)
        ("57635790125", "0"),  # barcodesymbols.com: sum 231 = 21 * 11, so 11 -> 0
    ],
)
def test_published_examples(base: str, check: str) -> None:
    assert mod11.calc_check_digit(base) == check
    assert mod11.is_valid(base + check)


def test_weights_repeat_2_to_7_from_the_right() -> None:
    # 1 followed by six zeros sits at the 7th position from the right: weight 2 again.
    assert mod11.weighted_sum("1000000") == 2
    assert mod11.weighted_sum("100000") == 7
    assert mod11.weighted_sum("1") == 2


def test_remainder_one_gives_dash() -> None:
    # 6 * 2 = 12, 12 mod 11 = 1, 11 - 1 = 10: no digit fits.
    assert mod11.calc_check_digit("6") == mod11.DASH
    assert mod11.is_valid("6-")
    assert not mod11.is_valid("60")


def test_sum_divisible_by_eleven_gives_zero() -> None:
    assert mod11.calc_check_digit("0") == "0"
    assert mod11.calc_check_digit("57635790125") == "0"


@pytest.mark.parametrize("bad", ["", "12a4", "\uff11\uff12", "\u00b2"])
def test_rejects_non_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="digits 0-9"):
        mod11.calc_check_digit(bad)
    assert not mod11.is_valid(bad + "0")
