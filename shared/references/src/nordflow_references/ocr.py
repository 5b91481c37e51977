"""Swedish OCR references (Bankgirot OCR-referenskontroll): Luhn check digit, length digit."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from stdnum import luhn

from ._digits import foreign_characters, is_digits

OCR_MIN_LENGTH = 2
OCR_MAX_LENGTH = 25
MAX_FIXED_LENGTHS = 2
"""Bankgirot's fixed-length control takes one or two agreed lengths."""


class OcrControl(StrEnum):
    """The control level the payee agreed with its bank for OCR references to its bankgiro."""

    SOFT = "soft"
    """Internet banks warn about a wrong check digit but accept the payment."""
    HARD = "hard"
    """The last digit must be the Luhn (mod 10) check digit, or the payment is refused."""
    HARD_WITH_LENGTH = "hard_with_length"
    """HARD, and the second-to-last digit must be the total length mod 10 (variable length)."""
    FIXED_LENGTH = "fixed_length"
    """HARD, and the total length must be one of the (one or two) agreed lengths."""


def calc_length_digit(total_length: int) -> str:
    """The length digit for a reference of `total_length` digits (check digit included)."""
    return str(total_length % 10)


def make_ocr(base: str, *, length_digit: bool, pad_to: int | None = None) -> str:
    """Append an optional length digit and the Luhn check digit to `base`.

    `pad_to` left-pads `base` with zeros so the finished reference has exactly that many
    digits (for fixed-length agreements). Raises ValueError when `base` is not digits, the
    result would be longer than 25 digits, or `base` does not fit in `pad_to`.
    """
    if not is_digits(base):
        raise ValueError(f"an OCR reference is built from digits 0-9 only, got {base!r}")
    control_digits = 2 if length_digit else 1
    if pad_to is not None:
        _require_ocr_length(pad_to)
        if len(base) + control_digits > pad_to:
            raise ValueError(
                f"{base!r} has {len(base)} digits; with {control_digits} control digit(s) it "
                f"does not fit in a {pad_to}-digit OCR reference"
            )
        base = base.zfill(pad_to - control_digits)
    total_length = len(base) + control_digits
    if total_length > OCR_MAX_LENGTH:
        raise ValueError(
            f"{base!r} would give a {total_length}-digit OCR reference; "
            f"Bankgirot allows at most {OCR_MAX_LENGTH}"
        )
    body = base + calc_length_digit(total_length) if length_digit else base
    return body + luhn.calc_check_digit(body)


def check_ocr(
    reference: str,
    control: OcrControl,
    *,
    lengths: Sequence[int] = (),
    length_digit: bool = False,
) -> list[str]:
    """Readable problems with `reference` under `control` (an empty list means valid).

    SOFT only reports what no bank can take (non-digits, a length outside 2-25): a wrong
    check digit is accepted after a warning. `lengths` are the agreed lengths for
    FIXED_LENGTH. `length_digit` also requires a length digit when the control level itself
    does not (a payee's own convention under HARD or FIXED_LENGTH). Raises ValueError when
    `lengths` does not suit `control`.
    """
    require_agreed_lengths(control, lengths)
    if not reference:
        return ["the OCR reference is empty"]
    problems: list[str] = []
    if not is_digits(reference):
        problems.append(
            f"OCR reference {reference!r} has characters other than digits 0-9: "
            f"{foreign_characters(reference)}"
        )
    if not OCR_MIN_LENGTH <= len(reference) <= OCR_MAX_LENGTH:
        problems.append(
            f"OCR reference {reference!r} has {len(reference)} characters; "
            f"Bankgirot allows {OCR_MIN_LENGTH} to {OCR_MAX_LENGTH} digits"
        )
    if problems or control is OcrControl.SOFT:
        return problems
    expected = luhn.calc_check_digit(reference[:-1])
    if reference[-1] != expected:
        problems.append(
            f"OCR reference {reference!r} ends in check digit {reference[-1]}, "
            f"but the Luhn (mod 10) check digit of {reference[:-1]!r} is {expected}"
        )
    if control is OcrControl.HARD_WITH_LENGTH or length_digit:
        expected_length_digit = calc_length_digit(len(reference))
        if reference[-2] != expected_length_digit:
            problems.append(
                f"OCR reference {reference!r} has length digit {reference[-2]}, but it has "
                f"{len(reference)} digits so the length digit must be {expected_length_digit}"
            )
    if control is OcrControl.FIXED_LENGTH and len(reference) not in lengths:
        agreed = " or ".join(str(length) for length in sorted(lengths))
        problems.append(
            f"OCR reference {reference!r} has {len(reference)} digits; "
            f"the agreed fixed length is {agreed}"
        )
    return problems


def _require_ocr_length(length: int) -> None:
    if not OCR_MIN_LENGTH <= length <= OCR_MAX_LENGTH:
        raise ValueError(
            f"an OCR reference length must be {OCR_MIN_LENGTH} to {OCR_MAX_LENGTH}, got {length}"
        )


def require_agreed_lengths(control: OcrControl, lengths: Sequence[int]) -> None:
    """Raise ValueError unless `lengths` suits `control` (1-2 lengths of 2-25 for FIXED_LENGTH)."""
    if control is not OcrControl.FIXED_LENGTH:
        if lengths:
            raise ValueError(f"agreed lengths only apply to fixed-length control, not {control}")
        return
    if not 1 <= len(lengths) <= MAX_FIXED_LENGTHS:
        raise ValueError(
            f"fixed-length control needs 1 to {MAX_FIXED_LENGTHS} agreed lengths, got {lengths!r}"
        )
    for length in lengths:
        _require_ocr_length(length)
