"""Tenant reference policies: what the mapper gets from generate and validate."""

from __future__ import annotations

import pytest
from nordflow_references import (
    KidAlgorithm,
    Mod11DashError,
    OcrControl,
    ReferenceKind,
    ReferencePolicy,
    generate,
    validate,
)

SE_HARD = ReferencePolicy(kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.HARD)
SE_LENGTH = ReferencePolicy(kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.HARD_WITH_LENGTH)
SE_FIXED = ReferencePolicy(
    kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.FIXED_LENGTH, ocr_lengths=(12, 8)
)
NO_MOD10 = ReferencePolicy(kind=ReferenceKind.NO_KID, kid_algorithm=KidAlgorithm.MOD10)
NO_MOD11_15 = ReferencePolicy(
    kind=ReferenceKind.NO_KID, kid_algorithm=KidAlgorithm.MOD11, kid_length=15
)
DNB = ReferencePolicy(kind=ReferenceKind.FACTOR_LAYOUT, factor_layout="dnb")
NORDEA = ReferencePolicy(kind=ReferenceKind.FACTOR_LAYOUT, factor_layout="nordea_finans")


def test_none() -> None:
    policy = ReferencePolicy()
    assert generate(policy, "12345") is None
    assert validate(policy, None) == []
    assert validate(policy, "anything") == []


def test_swedish_ocr() -> None:
    assert generate(SE_HARD, "12345") == "123455"
    assert generate(SE_LENGTH, "12345") == "1234574"
    assert validate(SE_LENGTH, "1234574") == []
    assert validate(SE_LENGTH, "123455") != []


def test_swedish_fixed_length_pads_to_the_shortest_fitting_length() -> None:
    assert generate(SE_FIXED, "12345") == "00123455"
    assert len(generate(SE_FIXED, "12345678") or "") == 12
    with pytest.raises(ValueError, match=r"invoice_number '123456789012'.*8 or 12"):
        generate(SE_FIXED, "123456789012")


def test_swedish_length_digit_by_convention() -> None:
    policy = ReferencePolicy(
        kind=ReferenceKind.SE_OCR,
        ocr_control=OcrControl.FIXED_LENGTH,
        ocr_lengths=(7,),
        ocr_length_digit=True,
    )
    assert generate(policy, "12345") == "1234574"
    assert validate(policy, "1234574") == []
    assert validate(policy, "0123455") != []


def test_norwegian_kid() -> None:
    assert generate(NO_MOD10, "1234") == "12344"
    assert generate(NO_MOD11_15, "1234") == "000000000012343"
    assert validate(NO_MOD11_15, "000000000012343") == []
    [problem] = validate(NO_MOD11_15, "12343")
    assert "agreed length is 15" in problem
    with pytest.raises(ValueError, match="does not fit"):
        generate(NO_MOD11_15, "1" * 15)


def test_norwegian_kid_dash() -> None:
    with pytest.raises(Mod11DashError):
        generate(NO_MOD11_15, "6")
    dash_ok = ReferencePolicy(
        kind=ReferenceKind.NO_KID, kid_algorithm=KidAlgorithm.MOD11, kid_allow_dash=True
    )
    assert generate(dash_ok, "6") == "6-"
    assert validate(dash_ok, "6-") == []


def test_factor_layouts() -> None:
    assert generate(DNB, "5067", "100017", "1234") == "51234000506701000176"
    assert generate(NORDEA, "5067", None, "1234") == "9123400005067009"
    assert validate(DNB, "51234000506701000176") == []
    assert validate(NORDEA, "9123400005067009") == []
    with pytest.raises(ValueError, match="needs customer_number"):
        generate(DNB, "5067", None, "1234")
    with pytest.raises(ValueError, match="needs factoring_number"):
        generate(NORDEA, "5067", "100017", None)
    with pytest.raises(ValueError, match="invoice_number '123456789' has 9 digits"):
        generate(NORDEA, "123456789", None, "1234")


@pytest.mark.parametrize("policy", [SE_HARD, NO_MOD10])
def test_non_digit_invoice_number_is_reported(policy: ReferencePolicy) -> None:
    with pytest.raises(ValueError, match="invoice_number 'F-1001' must be digits"):
        generate(policy, "F-1001")


def test_missing_reference_is_reported() -> None:
    [problem] = validate(SE_HARD, None)
    assert "se_ocr" in problem
    assert validate(DNB, "") != []


def test_invalid_policies() -> None:
    with pytest.raises(ValueError, match="not one of: dnb, nordea_finans"):
        ReferencePolicy(kind=ReferenceKind.FACTOR_LAYOUT, factor_layout="acme")
    with pytest.raises(ValueError, match="only used with kind factor_layout"):
        ReferencePolicy(kind=ReferenceKind.SE_OCR, factor_layout="dnb")
    with pytest.raises(ValueError, match="agreed lengths"):
        ReferencePolicy(kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.FIXED_LENGTH)
    with pytest.raises(ValueError, match="kid_length"):
        ReferencePolicy(kind=ReferenceKind.NO_KID, kid_length=26)
