"""Agreements: an invalid one is refused naming each field; fees and advances per kind."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from factoring_gateway.domain.agreements import (
    Fees,
    InvalidAgreementError,
    Transfer,
    TransferMethod,
    check_agreement,
)
from factoring_gateway.domain.formats import default_formats
from factoring_gateway.testing import agreement
from nordflow_references import ReferencePolicy
from nordflow_schemas.events import AgreementKind

FORMATS = default_formats().ids


def fields(**changes: object) -> list[str]:
    a = agreement("t-1", **changes)
    with pytest.raises(InvalidAgreementError) as caught:
        check_agreement(a, FORMATS, has_secret=True)
    return [p.field for p in caught.value.problems]


def test_a_complete_agreement_passes() -> None:
    check_agreement(agreement("t-1"), FORMATS, has_secret=True)


def test_each_bad_field_is_named() -> None:
    assert fields(agreement_id="Bad Id") == ["agreement_id"]
    assert fields(client_number="12a") == ["client_number"]
    assert fields(file_format="edifact") == ["file_format"]
    assert fields(payee=None) == ["payee"]
    assert fields(assignment_text={}) == ["assignment_text"]
    assert fields(assignment_text={"de": "Abgetreten"}) == ["assignment_text.de"]
    assert fields(recourse=None) == ["recourse"]
    assert fields(reference=ReferencePolicy()) == ["reference"]
    assert fields(window_start=dt.time(17), window_end=dt.time(16)) == ["window_end"]
    assert fields(max_age_days=0) == ["max_age_days"]
    assert fields(currencies=frozenset({"kr"})) == ["currencies"]
    assert fields(fees=Fees(Decimal("-1"))) == ["fees.per_invoice"]
    assert fields(fees=Fees(percent=Decimal(100))) == ["fees.percent"]
    assert fields(payment_methods=frozenset()) == ["payment_methods"]


def test_financing_needs_an_advance_of_70_to_90_percent() -> None:
    kind = {"kind": AgreementKind.FINANCING, "recourse": None}
    assert fields(**kind) == ["advance_percent"]
    assert fields(**kind, advance_percent=Decimal(95)) == ["advance_percent"]
    check_agreement(agreement("t-1", **kind, advance_percent=Decimal(80)), FORMATS, has_secret=True)
    assert fields(advance_percent=Decimal(80)) == ["advance_percent"]  # factoring has none


def test_transfer_settings_are_checked_per_method() -> None:
    sftp = Transfer(method=TransferMethod.SFTP)
    assert fields(transfer=sftp) == ["transfer.host", "transfer.username", "transfer.host_key"]
    with pytest.raises(InvalidAgreementError, match=r"transfer\.password"):
        check_agreement(agreement("t-1"), FORMATS, has_secret=False)
    https = Transfer(method=TransferMethod.HTTPS, base_url="http://factor.example/api")
    assert fields(transfer=https) == ["transfer.base_url"]
    https_ok = dataclasses.replace(https, base_url="https://factor.example/api/v1")
    with pytest.raises(InvalidAgreementError, match=r"transfer\.token"):
        check_agreement(agreement("t-1", transfer=https_ok), FORMATS, has_secret=False)


def test_fees_and_advances_by_kind() -> None:
    fees = Fees(Decimal("10.00"), Decimal("1.5"))
    assert fees.of(Decimal("1000.00")) == Decimal("25.00")
    factoring = agreement("t", fees=fees)
    assert factoring.advance_of(Decimal("1000.00"), Decimal("25.00")) == Decimal("975.00")
    financing = agreement(
        "t", kind=AgreementKind.FINANCING, recourse=None, advance_percent=Decimal("85")
    )
    assert financing.advance_of(Decimal("1000.00"), Decimal(0)) == Decimal("850.00")
    service = agreement("t", kind=AgreementKind.INVOICE_SERVICE, recourse=None, payee=None)
    assert service.advance_of(Decimal("1000.00"), Decimal(0)) is None
    check_agreement(service, FORMATS, has_secret=True)


def test_the_assignment_text_follows_the_tenants_locale() -> None:
    a = agreement("t")
    assert a.assignment_for("nb") is not None
    assert "overdratt" in (a.assignment_for("nb") or "")
    assert "assigned" in (a.assignment_for("fi") or "")  # English when there is no Finnish
    only_swedish = agreement("t", assignment_text={"sv": "Överlåten"})
    assert only_swedish.assignment_for("en") == "Överlåten"
