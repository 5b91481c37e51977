"""Property tests: generated references validate, and the check digits catch what they claim."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from nordflow_references import (
    LAYOUTS,
    KidAlgorithm,
    Mod11DashError,
    OcrControl,
    ReferenceKind,
    ReferencePolicy,
    check_kid,
    check_ocr,
    generate,
    make_kid,
    make_ocr,
    parse_kid,
    render_kid,
    validate,
)
from nordflow_references.mod11 import DASH


def digits(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=min_size, max_size=max_size)


@st.composite
def policies(draw: st.DrawFn) -> ReferencePolicy:
    kind = draw(st.sampled_from(ReferenceKind))
    if kind is ReferenceKind.SE_OCR:
        control = draw(st.sampled_from(OcrControl))
        lengths: tuple[int, ...] = ()
        if control is OcrControl.FIXED_LENGTH:
            # At least 12, so every invoice number drawn below (up to 10 digits) fits.
            lengths = tuple(draw(st.lists(st.integers(12, 25), min_size=1, max_size=2)))
        return ReferencePolicy(
            kind=kind,
            ocr_control=control,
            ocr_lengths=lengths,
            ocr_length_digit=draw(st.booleans()),
        )
    if kind is ReferenceKind.NO_KID:
        return ReferencePolicy(
            kind=kind,
            kid_algorithm=draw(st.sampled_from(KidAlgorithm)),
            kid_length=draw(st.none() | st.integers(11, 25)),
            kid_allow_dash=draw(st.booleans()),
        )
    if kind is ReferenceKind.FACTOR_LAYOUT:
        return ReferencePolicy(kind=kind, factor_layout=draw(st.sampled_from(sorted(LAYOUTS))))
    return ReferencePolicy()


@given(policies(), digits(1, 7), digits(1, 7), digits(1, 4))
def test_every_generated_reference_validates_under_its_policy(
    policy: ReferencePolicy, invoice: str, customer: str, factoring: str
) -> None:
    try:
        reference = generate(policy, invoice, customer, factoring)
    except Mod11DashError:
        # The only refusal these inputs allow: MOD11 gave 10 and "-" is not accepted.
        own_kid = policy.kind is ReferenceKind.NO_KID and not policy.kid_allow_dash
        assert (own_kid and policy.kid_algorithm is KidAlgorithm.MOD11) or (
            policy.factor_layout == "dnb"
        )
        return
    if policy.kind is ReferenceKind.NONE:
        assert reference is None
    else:
        assert reference is not None
        assert validate(policy, reference) == []


@given(digits(1, 24), st.data())
def test_mod10_catches_every_single_digit_change(base: str, data: st.DataObject) -> None:
    kid = make_kid(base, KidAlgorithm.MOD10)
    position = data.draw(st.integers(0, len(kid) - 1))
    replacement = data.draw(st.sampled_from("0123456789").filter(lambda d: d != kid[position]))
    changed = kid[:position] + replacement + kid[position + 1 :]
    assert check_kid(changed, KidAlgorithm.MOD10) != []
    assert check_ocr(changed, OcrControl.HARD) != []


@given(digits(1, 23), st.booleans(), st.data())
def test_ocr_catches_every_single_digit_change(
    base: str, length_digit: bool, data: st.DataObject
) -> None:
    reference = make_ocr(base, length_digit=length_digit)
    control = OcrControl.HARD_WITH_LENGTH if length_digit else OcrControl.HARD
    position = data.draw(st.integers(0, len(reference) - 1))
    replacement = data.draw(
        st.sampled_from("0123456789").filter(lambda d: d != reference[position])
    )
    changed = reference[:position] + replacement + reference[position + 1 :]
    assert check_ocr(reference, control) == []
    assert check_ocr(changed, control) != []


@given(digits(2, 23), st.data())
def test_length_digit_catches_a_dropped_or_added_base_digit(base: str, data: st.DataObject) -> None:
    reference = make_ocr(base, length_digit=True)
    position = data.draw(st.integers(0, len(base) - 1))
    dropped = reference[:position] + reference[position + 1 :]
    added = reference[:position] + data.draw(st.sampled_from("0123456789")) + reference[position:]
    assert check_ocr(dropped, OcrControl.HARD_WITH_LENGTH) != []
    assert check_ocr(added, OcrControl.HARD_WITH_LENGTH) != []


@given(digits(2, 24), st.data())
def test_mod10_catches_adjacent_transpositions_except_09(base: str, data: st.DataObject) -> None:
    kid = make_kid(base, KidAlgorithm.MOD10)
    position = data.draw(st.integers(0, len(kid) - 2))
    a, b = kid[position], kid[position + 1]
    swapped = kid[:position] + b + a + kid[position + 2 :]
    if a == b or {a, b} == {"0", "9"}:
        return
    assert check_kid(swapped, KidAlgorithm.MOD10) != []


def test_mod10_misses_the_09_transposition() -> None:
    # Luhn maps 0 -> 0 and 9 -> 18 -> 9 when doubled, so swapping 0 and 9 keeps the sum.
    kid = make_kid("1090", KidAlgorithm.MOD10)
    assert check_kid(kid, KidAlgorithm.MOD10) == []
    assert check_kid("1900" + kid[-1], KidAlgorithm.MOD10) == []


@given(digits(1, 24), st.data())
def test_mod11_catches_every_single_character_change(base: str, data: st.DataObject) -> None:
    kid = make_kid(base, KidAlgorithm.MOD11, allow_dash=True)
    position = data.draw(st.integers(0, len(kid) - 1))
    alphabet = "0123456789" + (DASH if position == len(kid) - 1 else "")
    replacement = data.draw(st.sampled_from(alphabet).filter(lambda d: d != kid[position]))
    changed = kid[:position] + replacement + kid[position + 1 :]
    assert check_kid(changed, KidAlgorithm.MOD11, allow_dash=True) != []


@given(digits(2, 24), st.data())
def test_mod11_catches_every_adjacent_transposition(base: str, data: st.DataObject) -> None:
    kid = make_kid(base, KidAlgorithm.MOD11, allow_dash=True)
    position = data.draw(st.integers(0, len(kid) - 2))
    a, b = kid[position], kid[position + 1]
    if a == b:
        return
    swapped = kid[:position] + b + a + kid[position + 2 :]
    assert check_kid(swapped, KidAlgorithm.MOD11, allow_dash=True) != []


@given(st.sampled_from(sorted(LAYOUTS)), st.data())
def test_layouts_round_trip(name: str, data: st.DataObject) -> None:
    layout = LAYOUTS[name]
    values = {f.name: data.draw(digits(1, f.width), label=f.name) for f in layout.fields}
    try:
        kid = render_kid(layout, values)
    except Mod11DashError:
        assert not layout.allow_dash
        return
    assert len(kid) == layout.length
    parsed = parse_kid(layout, kid)
    assert parsed == {name: value.lstrip("0") or "0" for name, value in values.items()}
    assert render_kid(layout, parsed) == kid
