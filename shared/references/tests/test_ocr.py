"""Swedish OCR references: generation and each Bankgirot control level."""

from __future__ import annotations

import pytest
from nordflow_references import OcrControl, check_ocr, make_ocr


def test_domain_examples() -> None:
    assert make_ocr("12345", length_digit=False) == "123455"
    assert make_ocr("12345", length_digit=True) == "1234574"


def test_published_examples() -> None:
    # barsoom/banktools-se README: from_number("123") and with length_digit: true.
    assert make_ocr("123", length_digit=False) == "1230"
    assert make_ocr("123", length_digit=True) == "12351"


def test_length_digit_is_total_length_mod_10() -> None:
    reference = make_ocr("12345678", length_digit=True)
    assert len(reference) == 10
    assert reference[-2] == "0"
    assert check_ocr(reference, OcrControl.HARD_WITH_LENGTH) == []


def test_pad_to_fixed_length() -> None:
    assert make_ocr("12345", length_digit=False, pad_to=10) == "0000123455"
    # Leading zeros do not change the Luhn digit.
    assert make_ocr("12345", length_digit=True, pad_to=7) == "1234574"
    with pytest.raises(ValueError, match="does not fit"):
        make_ocr("12345", length_digit=True, pad_to=6)


@pytest.mark.parametrize("base", ["", "12 34", "12-34", "\u0661\u0662"])
def test_make_rejects_non_digits(base: str) -> None:
    with pytest.raises(ValueError, match="digits 0-9"):
        make_ocr(base, length_digit=False)


def test_make_rejects_more_than_25_digits() -> None:
    assert len(make_ocr("1" * 24, length_digit=False)) == 25
    with pytest.raises(ValueError, match="at most 25"):
        make_ocr("1" * 24, length_digit=True)


class TestSoft:
    def test_accepts_wrong_check_digit(self) -> None:
        assert check_ocr("123456", OcrControl.SOFT) == []

    def test_reports_what_no_bank_takes(self) -> None:
        assert check_ocr("", OcrControl.SOFT) == ["the OCR reference is empty"]
        [problem] = check_ocr("12 345", OcrControl.SOFT)
        assert "' '" in problem
        [problem] = check_ocr("1", OcrControl.SOFT)
        assert "2 to 25" in problem
        assert check_ocr("1" * 26, OcrControl.SOFT) != []


class TestHard:
    def test_valid(self) -> None:
        assert check_ocr("123455", OcrControl.HARD) == []
        assert check_ocr("1234574", OcrControl.HARD) == []

    def test_wrong_check_digit(self) -> None:
        [problem] = check_ocr("123456", OcrControl.HARD)
        assert "check digit 6" in problem
        assert "is 5" in problem

    def test_length_digit_only_on_request(self) -> None:
        assert check_ocr("123455", OcrControl.HARD, length_digit=True) != []


class TestHardWithLength:
    def test_valid(self) -> None:
        assert check_ocr("1234574", OcrControl.HARD_WITH_LENGTH) == []

    def test_missing_length_digit(self) -> None:
        [problem] = check_ocr("123455", OcrControl.HARD_WITH_LENGTH)
        assert "length digit 5" in problem
        assert "must be 6" in problem

    def test_both_wrong(self) -> None:
        assert len(check_ocr("1234565", OcrControl.HARD_WITH_LENGTH)) == 2


class TestFixedLength:
    def test_one_of_the_agreed_lengths(self) -> None:
        assert check_ocr("0000123455", OcrControl.FIXED_LENGTH, lengths=(10,)) == []
        assert check_ocr("123455", OcrControl.FIXED_LENGTH, lengths=(6, 10)) == []

    def test_other_length(self) -> None:
        [problem] = check_ocr("123455", OcrControl.FIXED_LENGTH, lengths=(8, 10))
        assert "8 or 10" in problem

    def test_still_checks_luhn(self) -> None:
        assert check_ocr("123456", OcrControl.FIXED_LENGTH, lengths=(6,)) != []

    def test_published_fixed_length_with_length_digit(self) -> None:
        # ovidner/bitket wiki: 5-digit invoice number + length digit 7 + Luhn, 7 in all.
        reference = make_ocr("10042", length_digit=True)
        assert reference[-2] == "7"
        assert check_ocr(reference, OcrControl.FIXED_LENGTH, lengths=(7,), length_digit=True) == []

    @pytest.mark.parametrize("lengths", [(), (6, 8, 10), (1,), (26,)])
    def test_bad_agreement(self, lengths: tuple[int, ...]) -> None:
        with pytest.raises(ValueError, match="length"):
            check_ocr("123455", OcrControl.FIXED_LENGTH, lengths=lengths)

    def test_lengths_need_fixed_control(self) -> None:
        with pytest.raises(ValueError, match="fixed-length"):
            check_ocr("123455", OcrControl.HARD, lengths=(6,))
