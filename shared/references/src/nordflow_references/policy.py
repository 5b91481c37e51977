"""A tenant's payment-reference policy, and the generate / validate calls the mapper makes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ._digits import is_digits
from .kid import KID_MAX_LENGTH, KID_MIN_LENGTH, KidAlgorithm, check_kid, make_kid
from .layouts import LAYOUTS, KidLayout, check_layout_kid, render_kid
from .ocr import OcrControl, check_ocr, make_ocr, require_agreed_lengths

LAYOUT_INPUTS = frozenset({"invoice_number", "customer_number", "factoring_number"})
"""The field names a factor layout may use: the inputs `generate` receives."""


class ReferenceKind(StrEnum):
    """Which kind of payment reference a tenant puts on its invoices."""

    NONE = "none"
    SE_OCR = "se_ocr"
    NO_KID = "no_kid"
    FACTOR_LAYOUT = "factor_layout"


@dataclass(frozen=True, kw_only=True)
class ReferencePolicy:
    """How one tenant's payment references are built and checked.

    SE_OCR: the invoice number, an optional length digit and a Luhn check digit, under the
    OCR control level agreed with the bank (`ocr_lengths` for FIXED_LENGTH, where the invoice
    number is zero-padded to the shortest agreed length it fits). `ocr_length_digit` adds a
    length digit under other levels too (HARD_WITH_LENGTH always has one).
    NO_KID: the invoice number, zero-padded to `kid_length` when set, and a MOD10/MOD11 check.
    FACTOR_LAYOUT: the factor's fixed layout named `factor_layout` (see layouts.LAYOUTS).
    """

    kind: ReferenceKind = ReferenceKind.NONE
    ocr_control: OcrControl = OcrControl.HARD
    ocr_lengths: tuple[int, ...] = ()
    ocr_length_digit: bool = False
    kid_algorithm: KidAlgorithm = KidAlgorithm.MOD10
    kid_length: int | None = None
    kid_allow_dash: bool = False
    factor_layout: str | None = None

    def __post_init__(self) -> None:
        require_agreed_lengths(self.ocr_control, self.ocr_lengths)
        if self.kid_length is not None and not KID_MIN_LENGTH <= self.kid_length <= KID_MAX_LENGTH:
            raise ValueError(f"kid_length must be {KID_MIN_LENGTH}-{KID_MAX_LENGTH}")
        if self.kind is ReferenceKind.FACTOR_LAYOUT:
            if self.factor_layout not in LAYOUTS:
                known = ", ".join(sorted(LAYOUTS))
                raise ValueError(f"factor_layout {self.factor_layout!r} is not one of: {known}")
            unknown = {f.name for f in self.layout.fields} - LAYOUT_INPUTS
            if unknown:
                raise ValueError(f"layout {self.factor_layout!r} uses inputs {sorted(unknown)}")
        elif self.factor_layout is not None:
            raise ValueError("factor_layout is only used with kind factor_layout")

    @property
    def uses_length_digit(self) -> bool:
        """Whether generated OCR references carry a length digit."""
        return self.ocr_length_digit or self.ocr_control is OcrControl.HARD_WITH_LENGTH

    @property
    def layout(self) -> KidLayout:
        """The factor layout of a FACTOR_LAYOUT policy."""
        if self.factor_layout is None:
            raise ValueError(f"a {self.kind} policy has no factor layout")
        return LAYOUTS[self.factor_layout]


def generate(
    policy: ReferencePolicy,
    invoice_number: str,
    customer_number: str | None = None,
    factoring_number: str | None = None,
) -> str | None:
    """The payment reference for an invoice under `policy`, or None for kind NONE.

    Raises ValueError with a message naming the field when the numbers cannot make a
    reference under this policy (not digits, too long, a layout input missing), and
    kid.Mod11DashError (a ValueError) when the MOD11 result is 10 and "-" is not accepted.
    """
    if policy.kind is ReferenceKind.NONE:
        return None
    if policy.kind is ReferenceKind.FACTOR_LAYOUT:
        inputs = {
            "invoice_number": invoice_number,
            "customer_number": customer_number,
            "factoring_number": factoring_number,
        }
        values: dict[str, str | int] = {}
        for f in policy.layout.fields:
            value = inputs.get(f.name)
            if value is None:
                raise ValueError(f"the {policy.layout.name!r} KID layout needs {f.name}")
            values[f.name] = value
        return render_kid(policy.layout, values)
    if not is_digits(invoice_number):
        raise ValueError(
            f"invoice_number {invoice_number!r} must be digits 0-9 only to build a "
            f"{'Swedish OCR reference' if policy.kind is ReferenceKind.SE_OCR else 'KID'}"
        )
    if policy.kind is ReferenceKind.SE_OCR:
        return make_ocr(
            invoice_number,
            length_digit=policy.uses_length_digit,
            pad_to=_fixed_length_for(policy, invoice_number),
        )
    base = invoice_number
    if policy.kid_length is not None:
        if len(base) + 1 > policy.kid_length:
            raise ValueError(
                f"invoice_number {invoice_number!r} has {len(base)} digits; with the check "
                f"digit it does not fit in the agreed {policy.kid_length}-character KID"
            )
        base = base.zfill(policy.kid_length - 1)
    return make_kid(base, policy.kid_algorithm, allow_dash=policy.kid_allow_dash)


def validate(policy: ReferencePolicy, reference: str | None) -> list[str]:
    """Readable problems with `reference` under `policy` (an empty list means valid)."""
    if policy.kind is ReferenceKind.NONE:
        return []
    if not reference:
        return [f"the invoice has no payment reference, but the tenant uses {policy.kind}"]
    if policy.kind is ReferenceKind.SE_OCR:
        return check_ocr(
            reference,
            policy.ocr_control,
            lengths=policy.ocr_lengths,
            length_digit=policy.ocr_length_digit,
        )
    if policy.kind is ReferenceKind.NO_KID:
        return check_kid(
            reference,
            policy.kid_algorithm,
            allow_dash=policy.kid_allow_dash,
            length=policy.kid_length,
        )
    return check_layout_kid(policy.layout, reference)


def _fixed_length_for(policy: ReferencePolicy, invoice_number: str) -> int | None:
    if policy.ocr_control is not OcrControl.FIXED_LENGTH:
        return None
    needed = len(invoice_number) + (2 if policy.uses_length_digit else 1)
    fitting = [length for length in sorted(policy.ocr_lengths) if length >= needed]
    if not fitting:
        agreed = " or ".join(str(length) for length in sorted(policy.ocr_lengths))
        raise ValueError(
            f"invoice_number {invoice_number!r} needs a {needed}-digit OCR reference; "
            f"the agreed fixed length is {agreed}"
        )
    return fitting[0]
