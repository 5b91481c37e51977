"""Norwegian KID (kundeidentifikasjon): 2-25 characters ending in a MOD10 or MOD11 check digit."""

from __future__ import annotations

from enum import StrEnum

from stdnum import luhn

from . import mod11
from ._digits import foreign_characters, is_digits

KID_MIN_LENGTH = 2
KID_MAX_LENGTH = 25


class KidAlgorithm(StrEnum):
    """How the last character of a KID is computed from the others."""

    MOD10 = "mod10"
    """Luhn: weights 2, 1, 2, 1, ... from the right, digit sums of the products."""
    MOD11 = "mod11"
    """Weights 2-7 repeating from the right; 11 - (sum mod 11); 11 gives 0, 10 gives "-"."""


class Mod11DashError(ValueError):
    """The base has MOD11 result 10 ("-") and the KID set-up does not accept "-"."""


def calc_kid_check_digit(base: str, algorithm: KidAlgorithm) -> str:
    """The check character for `base` under `algorithm` (MOD11 may give `mod11.DASH`)."""
    if not is_digits(base):
        raise ValueError(f"a KID is built from digits 0-9 only, got {base!r}")
    if algorithm is KidAlgorithm.MOD10:
        return luhn.calc_check_digit(base)
    return mod11.calc_check_digit(base)


def make_kid(base: str, algorithm: KidAlgorithm, *, allow_dash: bool = False) -> str:
    """`base` followed by its check character: a KID of 2-25 characters.

    With MOD11 about one base in eleven has no check digit (the result is 10). The KID then
    ends in "-" when `allow_dash` is set (the payee's agreement and every system the KID
    passes through must take it); otherwise Mod11DashError is raised so the caller can
    report that this number cannot carry a MOD11 KID.
    """
    check = calc_kid_check_digit(base, algorithm)
    kid = base + check
    if not KID_MIN_LENGTH <= len(kid) <= KID_MAX_LENGTH:
        raise ValueError(
            f"{base!r} would give a {len(kid)}-character KID; "
            f"a KID has {KID_MIN_LENGTH} to {KID_MAX_LENGTH} characters"
        )
    if check == mod11.DASH and not allow_dash:
        raise Mod11DashError(
            f"{base!r} has no MOD11 check digit (11 - sum mod 11 is 10, written '-'), and "
            f"this KID set-up does not accept '-': the number cannot carry a MOD11 KID"
        )
    return kid


def check_kid(
    kid: str,
    algorithm: KidAlgorithm,
    *,
    allow_dash: bool = False,
    length: int | None = None,
) -> list[str]:
    """Readable problems with `kid` (an empty list means valid).

    `allow_dash` accepts a final "-" where MOD11 gives 10; `length` is the exact length
    agreed with the bank, if any.
    """
    if not kid:
        return ["the KID is empty"]
    problems: list[str] = []
    body, check = kid[:-1], kid[-1]
    dash_ok = algorithm is KidAlgorithm.MOD11 and allow_dash and check == mod11.DASH
    if not is_digits(kid) and not (dash_ok and is_digits(body)):
        problems.append(
            f"KID {kid!r} has characters other than digits 0-9: {foreign_characters(kid)}"
            + (" (a final '-' is only valid for MOD11 where allowed)" if "-" in kid else "")
        )
    if not KID_MIN_LENGTH <= len(kid) <= KID_MAX_LENGTH:
        problems.append(
            f"KID {kid!r} has {len(kid)} characters; a KID has {KID_MIN_LENGTH} to {KID_MAX_LENGTH}"
        )
    if length is not None and len(kid) != length:
        problems.append(f"KID {kid!r} has {len(kid)} characters; the agreed length is {length}")
    if problems:
        return problems
    expected = calc_kid_check_digit(body, algorithm)
    if expected == mod11.DASH and not allow_dash:
        problems.append(
            f"KID {kid!r}: {body!r} has no MOD11 check digit (the result is 10, written '-'), "
            f"and this KID set-up does not accept '-'"
        )
    elif check != expected:
        name = "MOD10 (Luhn)" if algorithm is KidAlgorithm.MOD10 else "MOD11"
        problems.append(
            f"KID {kid!r} ends in {check!r}, but the {name} check digit of {body!r} is {expected!r}"
        )
    return problems
