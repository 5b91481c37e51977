"""Check digits the banks enforce: OCR/KID references, personal numbers, giro and bank accounts.

Swedish OCR (Bankgirot's OCR reference control) and Norwegian KID MOD10 end in a Luhn
digit; a KID may instead end in a MOD11 digit (weights 2-7 from the right, 11 → 0, 10 → '-').
"""

from __future__ import annotations

import re
from datetime import date

_DIGITS = re.compile(r"^[0-9]+$")


def luhn_sum_ok(digits: str) -> bool:
    """Whether a digit string ends in a correct Luhn (MOD10) check digit."""
    if not _DIGITS.match(digits) or len(digits) < 2:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return total % 10 == 0


def luhn_check_digit(digits: str) -> str:
    """The Luhn digit to append to `digits` (e.g. `12345` → `5`)."""
    for candidate in "0123456789":
        if luhn_sum_ok(digits + candidate):
            return candidate
    raise ValueError(f"not digits: {digits!r}")


def kid_mod11_ok(reference: str) -> bool:
    """Whether a KID ends in a correct MOD11 digit (`-` standing for 10)."""
    body, check = reference[:-1], reference[-1:]
    if not _DIGITS.match(body) or check not in "0123456789-":
        return False
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(body)))
    expected = (11 - total % 11) % 11
    return check == ("-" if expected == 10 else str(expected))


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    """11 minus the weighted sum mod 11, 11 → 0; None when the result is 10 (no valid digit)."""
    result = (11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11) % 11
    return None if result == 10 else result


def swedish_personal_number(raw: str) -> str | None:
    """`YYYYMMDDNNNN` from `YYYYMMDD-NNNN` or `YYYYMMDDNNNN` when valid (date and Luhn)."""
    digits = raw.strip().replace("-", "").replace("+", "")
    if not _DIGITS.match(digits) or len(digits) != 12:
        return None
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if day > 60:  # a coordination number (samordningsnummer): day + 60
        day -= 60
    try:
        date(year, month, day)
    except ValueError:
        return None
    return digits if luhn_sum_ok(digits[2:]) else None


def norwegian_national_id(raw: str) -> str | None:
    """An 11-digit Norwegian national identity number (fødselsnummer) with both check digits."""
    digits = raw.strip().replace(" ", "")
    if not _DIGITS.match(digits) or len(digits) != 11:
        return None
    k1 = _mod11(digits[:9], (3, 7, 6, 1, 8, 9, 4, 5, 2))
    k2 = _mod11(digits[:10], (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
    if k1 is None or k2 is None or (k1, k2) != (int(digits[9]), int(digits[10])):
        return None
    return digits


def personal_number(raw: str) -> tuple[str, str] | None:
    """`(number, country)` for a Swedish (12 digits) or Norwegian (11 digits) identity number."""
    swedish = swedish_personal_number(raw)
    if swedish is not None:
        return swedish, "SE"
    norwegian = norwegian_national_id(raw)
    return (norwegian, "NO") if norwegian is not None else None


def giro_number_ok(raw: str, *, min_digits: int, max_digits: int) -> bool:
    """A Bankgiro (7-8 digits) or PlusGiro (2-8 digits) number: digits and a Luhn digit."""
    digits = raw.replace("-", "").replace(" ", "")
    return min_digits <= len(digits) <= max_digits and luhn_sum_ok(digits)


def norwegian_account_ok(raw: str) -> bool:
    """An 11-digit Norwegian bank account number (kontonummer) with its MOD11 digit."""
    digits = raw.replace(".", "").replace(" ", "")
    if not _DIGITS.match(digits) or len(digits) != 11:
        return False
    check = _mod11(digits[:10], (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
    return check is not None and check == int(digits[10])
