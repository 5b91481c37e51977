"""Check digits of the B2C bank sandbox: OCR/KID, personal numbers, giro and bank accounts."""

from __future__ import annotations

import pytest
from nordflow_sandboxes.b2c_bank.references import (
    giro_number_ok,
    kid_mod11_ok,
    luhn_check_digit,
    luhn_sum_ok,
    norwegian_account_ok,
    norwegian_national_id,
    personal_number,
    swedish_personal_number,
)
from nordflow_sandboxes.b2c_bank.testing import (
    random_norwegian_identity_number,
    random_swedish_personal_number,
)


@pytest.mark.parametrize(
    ("reference", "valid"),
    [("123455", True), ("1234574", True), ("12344", True), ("123456", False), ("1", False)],
)
def test_ocr_luhn_examples_from_bankgirot(reference: str, valid: bool) -> None:
    assert luhn_sum_ok(reference) is valid


def test_luhn_check_digit() -> None:
    assert luhn_check_digit("12345") == "5"
    assert luhn_check_digit("5555555") == "1"


@pytest.mark.parametrize(
    ("kid", "valid"), [("12343", True), ("12344", False), ("0", False), ("12A3", False)]
)
def test_kid_mod11(kid: str, valid: bool) -> None:
    assert kid_mod11_ok(kid) is valid


def test_kid_mod11_remainder_ten_is_a_dash() -> None:
    # 6 with weight 2 → 12; 12 mod 11 = 1; 11 - 1 = 10 → '-'
    assert kid_mod11_ok("6-")
    assert not kid_mod11_ok("60")


def test_swedish_personal_numbers() -> None:
    assert swedish_personal_number("19811218-9876") == "198112189876"
    assert swedish_personal_number("198112189877") is None  # wrong Luhn digit
    assert swedish_personal_number("19811318-9876") is None  # month 13
    assert swedish_personal_number("8112189876") is None  # ten digits: century unknown
    coordination = random_swedish_personal_number()
    assert personal_number(coordination) == (coordination.replace("-", ""), "SE")


def test_norwegian_identity_numbers() -> None:
    number = random_norwegian_identity_number()
    assert norwegian_national_id(number) == number
    assert personal_number(number) == (number, "NO")
    broken = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert norwegian_national_id(broken) is None


def test_giro_and_account_numbers() -> None:
    assert giro_number_ok("5555-5551", min_digits=7, max_digits=8)
    assert not giro_number_ok("5555-5552", min_digits=7, max_digits=8)
    assert not giro_number_ok("55-1", min_digits=7, max_digits=8)
    assert giro_number_ok("4-2", min_digits=2, max_digits=8)  # 42: a valid PlusGiro shape
    assert norwegian_account_ok("8601.11.17947")
    assert not norwegian_account_ok("8601.11.17948")
