"""Consumers' personal numbers: masked in clear and sealed on shared topics; opened only with
the key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from nordflow_runtime.errors import PermanentError
from nordflow_runtime.personal_data import PersonalData, open_invoice
from nordflow_schemas.invoice import Address, Invoice, Party, PartyType
from nordflow_schemas.testing import simple_invoice
from pydantic import SecretStr

KEY = SecretStr(Fernet.generate_key().decode())


def with_buyer(party_type: PartyType, company_id: str | None) -> Invoice:
    base = simple_invoice("acme")
    buyer = Party(
        name="Anna Andersson",
        party_type=party_type,
        company_id=company_id,
        address=Address(city="Kiruna", country_code="SE"),
    )
    return base.model_copy(update={"buyer": buyer})


@given(st.from_regex(r"(19|20)\d{6}-?\d{4}", fullmatch=True))
def test_a_consumers_number_never_travels_in_clear_and_opens_again(number: str) -> None:
    personal = PersonalData(KEY)
    invoice = with_buyer(PartyType.PRIVATE, number)
    sealed = personal.seal_invoice(invoice)
    digits = number.replace("-", "")
    assert digits not in sealed.model_dump_json().replace("-", "")
    assert sealed.buyer.company_id == f"******{digits[-4:]}"
    assert sealed.buyer.personal_number_sealed
    assert personal.seal_invoice(sealed) == sealed  # sealing twice changes nothing
    assert personal.open_invoice(sealed) == invoice
    assert open_invoice(personal, Invoice.model_validate_json(sealed.model_dump_json())) == invoice


def test_a_company_is_not_touched() -> None:
    personal = PersonalData(KEY)
    company = with_buyer(PartyType.COMPANY, "556036-0793")
    assert personal.seal_invoice(company) == company
    assert personal.open_invoice(company) == company


def test_another_key_or_no_key_is_a_permanent_error() -> None:
    sealed = PersonalData(KEY).seal_invoice(with_buyer(PartyType.PRIVATE, "198503172384"))
    other = PersonalData(SecretStr(Fernet.generate_key().decode()))
    with pytest.raises(PermanentError, match="PERSONAL_DATA_KEY"):
        other.open_invoice(sealed)
    with pytest.raises(PermanentError, match="PERSONAL_DATA_KEY is not set"):
        open_invoice(None, sealed)
    unsealed = with_buyer(PartyType.PRIVATE, "198503172384")
    assert open_invoice(None, unsealed) == unsealed  # from before sealing existed
