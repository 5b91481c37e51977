"""domain.choose_channel: the cheapest channel the recipient can take."""

from __future__ import annotations

import uuid

import pytest
from distribution_router.adapters.smp import BIS3_CREDIT_NOTE, BIS3_INVOICE
from distribution_router.domain import (
    FORMATS,
    Route,
    choose_channel,
    document_type,
    participant_candidates,
)
from distribution_router.testing.invoices import one_line_invoice
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    ElectronicAddress,
    Invoice,
    Party,
    PartyType,
)

PEPPOL_ID = ElectronicAddress(scheme="0007", value="5567321707")


def buyer(
    *,
    party_type: PartyType = PartyType.COMPANY,
    electronic_address: ElectronicAddress | None = None,
    email: str | None = None,
    city: str | None = "Göteborg",
    country_code: str = "SE",
) -> Party:
    return Party(
        name="Köpare",
        party_type=party_type,
        electronic_address=electronic_address,
        email=email,
        address=Address(lines=("Storgatan 1",), city=city, country_code=country_code),
    )


def make_invoice(to: Party) -> Invoice:
    return one_line_invoice(
        tenant_id=f"t-{uuid.uuid4().hex[:8]}", buyer=to, number="7", due_in_days=None
    )


def test_a_registered_participant_gets_peppol() -> None:
    invoice = make_invoice(buyer(electronic_address=PEPPOL_ID, email="ap@kund.example"))
    route = choose_channel(invoice, ("0007", "5567321707"))
    assert route == Route(Channel.PEPPOL, "0007:5567321707", "peppol-bis-billing-3")


def test_an_electronic_address_alone_is_not_enough_for_peppol() -> None:
    # Without the SMP's yes the recipient may not be able to receive: e-mail instead.
    invoice = make_invoice(buyer(electronic_address=PEPPOL_ID, email="ap@kund.example"))
    assert choose_channel(invoice, None).channel is Channel.EMAIL


def test_candidates_are_the_address_then_the_national_register_number() -> None:
    company = buyer(electronic_address=PEPPOL_ID).model_copy(update={"company_id": "556732-1707"})
    assert participant_candidates(company) == [("0007", "5567321707")]  # one, deduplicated
    glm = ElectronicAddress(scheme="0088", value="7300010000001")
    company = company.model_copy(update={"electronic_address": glm})
    assert participant_candidates(company) == [("0088", "7300010000001"), ("0007", "5567321707")]
    norwegian = buyer(country_code="NO").model_copy(update={"company_id": "974 760 673"})
    assert participant_candidates(norwegian) == [("0192", "974760673")]
    malformed = buyer().model_copy(update={"company_id": "12-34"})
    assert participant_candidates(malformed) == []


def test_a_private_buyer_is_never_a_peppol_candidate() -> None:
    private = buyer(party_type=PartyType.PRIVATE, electronic_address=PEPPOL_ID)
    assert participant_candidates(private.model_copy(update={"company_id": "5567321707"})) == []


def test_a_company_without_peppol_gets_email() -> None:
    route = choose_channel(make_invoice(buyer(email="faktura@kund.example")), None)
    assert route == Route(Channel.EMAIL, "faktura@kund.example", "pdf")


@pytest.mark.parametrize("email", [None, ""])
def test_without_email_the_invoice_goes_by_paper_to_the_city(email: str | None) -> None:
    route = choose_channel(make_invoice(buyer(email=email, city="Umeå")), None)
    assert route == Route(Channel.PAPER, "post: Umeå", "print")


def test_paper_without_a_city_names_the_country() -> None:
    route = choose_channel(make_invoice(buyer(city=None, country_code="NO")), None)
    assert route == Route(Channel.PAPER, "post: NO", "print")


def test_the_document_type_follows_invoice_or_credit_note() -> None:
    invoice = make_invoice(buyer())
    assert document_type(invoice) == BIS3_INVOICE
    credit = invoice.model_copy(update={"document_type": DocumentType.CREDIT_NOTE})
    assert document_type(credit) == BIS3_CREDIT_NOTE


def test_every_channel_has_a_format() -> None:
    assert set(FORMATS) == set(Channel)
