"""Tenant reference policies in map_document: generate when missing, validate when present."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mapper.domain.references import TenantReferencePolicy
from mapper.service import map_document
from mapper.testing import fetched as fetched_document
from nordflow_references import (
    KidAlgorithm,
    OcrControl,
    ReferenceKind,
    ReferencePolicy,
    check_ocr,
    validate,
)
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import Invoice

CUSTOMER = {"CustomerNumber": "100017", "Name": "Kund AB", "Type": "COMPANY"}


def fetched(number: str = "5067", ocr: str | None = None) -> ErpDocumentFetched:
    doc: dict[str, Any] = {
        "DocumentNumber": number,
        "CustomerNumber": "100017",
        "CustomerName": "Kund AB",
        "InvoiceDate": "2026-11-20",
        "DueDate": "2026-12-20",
        "Currency": "SEK",
        "Address1": "Kundvägen 2",
        "City": "Uppsala",
        "ZipCode": "75320",
        "InvoiceRows": [
            {"Description": "Konsult", "DeliveredQuantity": 1, "Price": 1000, "VAT": 25}
        ],
        "Net": 1000,
        "TotalVAT": 250,
        "Total": 1250,
    }
    if ocr is not None:
        doc["OCR"] = ocr
    # The number varies (any text); the source's id of the document does not.
    return fetched_document(
        SourceSystem.FORTNOX, doc, related={"customer": CUSTOMER}, document_id="5067"
    )


def tenant(factoring_number: str | None = None, **policy: Any) -> TenantReferencePolicy:
    return TenantReferencePolicy(
        tenant_id="acme", policy=ReferencePolicy(**policy), factoring_number=factoring_number
    )


OCR_WITH_LENGTH = tenant(kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.HARD_WITH_LENGTH)


def reference_of(result: Invoice | list[ValidationIssue]) -> str | None:
    assert isinstance(result, Invoice), result
    return result.payment.payment_reference


def test_a_missing_ocr_is_generated_under_the_policy() -> None:
    assert reference_of(map_document(fetched("12345"), OCR_WITH_LENGTH)) == "1234574"


def test_the_same_version_mapped_again_gets_the_same_reference() -> None:
    first = reference_of(map_document(fetched("5067"), OCR_WITH_LENGTH))
    assert first == reference_of(map_document(fetched("5067"), OCR_WITH_LENGTH))


def test_a_fixed_length_ocr_is_zero_padded() -> None:
    policy = tenant(
        kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.FIXED_LENGTH, ocr_lengths=(10,)
    )
    reference = reference_of(map_document(fetched("12345"), policy))
    assert reference is not None
    assert len(reference) == 10
    assert check_ocr(reference, OcrControl.FIXED_LENGTH, lengths=(10,)) == []


def test_a_kid_is_generated_with_mod11() -> None:
    policy = tenant(kind=ReferenceKind.NO_KID, kid_algorithm=KidAlgorithm.MOD11)
    assert reference_of(map_document(fetched("1234"), policy)) == "12343"


def test_a_factor_layout_uses_the_customer_and_factoring_numbers() -> None:
    policy = tenant("1234", kind=ReferenceKind.FACTOR_LAYOUT, factor_layout="dnb")
    assert reference_of(map_document(fetched("5067"), policy)) == "51234000506701000176"


def test_a_present_reference_that_breaks_the_policy_is_rejected_naming_the_field() -> None:
    # 123455 is a valid Luhn OCR, but this tenant's bank checks the length digit too.
    result = map_document(fetched(ocr="123455"), OCR_WITH_LENGTH)
    assert isinstance(result, list)
    assert [(i.field, i.rule) for i in result] == [("payment.payment_reference", "NF-OCR")]
    assert "length digit" in result[0].message


def test_a_kid_policy_rejects_an_ocr_shaped_reference_with_nf_kid() -> None:
    policy = tenant(kind=ReferenceKind.NO_KID, kid_algorithm=KidAlgorithm.MOD11, kid_length=8)
    result = map_document(fetched(ocr="12344"), policy)
    assert isinstance(result, list)
    assert {(i.field, i.rule) for i in result} == {("payment.payment_reference", "NF-KID")}


def test_a_present_compliant_reference_is_kept() -> None:
    assert reference_of(map_document(fetched(ocr="1234574"), OCR_WITH_LENGTH)) == "1234574"


def test_an_invoice_number_that_cannot_make_a_reference_is_a_named_rejection() -> None:
    policy = tenant(kind=ReferenceKind.NO_KID, kid_length=4)
    result = map_document(fetched("123456"), policy)
    assert isinstance(result, list)
    assert [(i.field, i.rule) for i in result] == [("payment.payment_reference", "NF-KID")]
    assert "invoice_number" in result[0].message


def test_kind_none_and_no_policy_keep_the_country_default() -> None:
    for policy in (None, tenant(kind=ReferenceKind.NONE)):
        assert reference_of(map_document(fetched("5067"), policy)) is None
        result = map_document(fetched(ocr="10018"), policy)
        assert isinstance(result, list)
        assert [i.rule for i in result] == ["NF-OCR"]


def test_a_layout_needing_a_factoring_number_refuses_a_policy_without_one() -> None:
    with pytest.raises(ValueError, match="factoring_number"):
        tenant(kind=ReferenceKind.FACTOR_LAYOUT, factor_layout="dnb")
    with pytest.raises(ValueError, match="factoring_number is only used"):
        tenant("1234", kind=ReferenceKind.SE_OCR)


POLICIES = [
    ReferencePolicy(kind=ReferenceKind.SE_OCR, ocr_control=control)
    for control in (OcrControl.SOFT, OcrControl.HARD, OcrControl.HARD_WITH_LENGTH)
] + [
    ReferencePolicy(
        kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.FIXED_LENGTH, ocr_lengths=(12, 20)
    ),
    ReferencePolicy(kind=ReferenceKind.NO_KID, kid_algorithm=KidAlgorithm.MOD10),
    ReferencePolicy(kind=ReferenceKind.NO_KID, kid_algorithm=KidAlgorithm.MOD11),
    ReferencePolicy(kind=ReferenceKind.NO_KID, kid_length=10),
    ReferencePolicy(kind=ReferenceKind.FACTOR_LAYOUT, factor_layout="nordea_finans"),
]


@settings(max_examples=200, deadline=None)
@given(number=st.text(min_size=1, max_size=12), policy=st.sampled_from(POLICIES))
def test_any_invoice_number_gets_a_valid_reference_or_a_named_rejection(
    number: str, policy: ReferencePolicy
) -> None:
    factoring = "1234" if policy.kind is ReferenceKind.FACTOR_LAYOUT else None
    tenant_policy = TenantReferencePolicy(
        tenant_id="acme", policy=policy, factoring_number=factoring
    )
    result = map_document(fetched(number), tenant_policy)
    if isinstance(result, Invoice):
        assert validate(policy, result.payment.payment_reference) == []
        assert map_document(fetched(number), tenant_policy) == result
    else:
        assert result
        assert all(i.field and i.rule and i.message for i in result)
