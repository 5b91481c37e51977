"""domain.choose_channel: the cheapest channel the recipient can take."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from distribution_router.domain import FORMATS, Route, choose_channel
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    ElectronicAddress,
    Invoice,
    InvoiceLine,
    Party,
    PartyType,
    Totals,
    VatBreakdown,
    VatCategory,
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
    """A valid canonical invoice to ``to``: one line of 100.00 at 25 % VAT."""
    return Invoice(
        invoice_id=f"inv_{uuid.uuid4().hex}",
        tenant_id=f"t-{uuid.uuid4().hex[:8]}",
        source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c1", document_id="7"),
        document_type=DocumentType.INVOICE,
        number="7",
        issue_date=dt.date(2025, 3, 10),
        currency="SEK",
        seller=Party(name="Säljare AB", address=Address(country_code="SE")),
        buyer=to,
        lines=(
            InvoiceLine(
                line_id="1",
                description="Vara",
                quantity=Decimal(1),
                unit_price=Decimal(100),
                net_amount=Decimal(100),
                vat_category=VatCategory.STANDARD,
                vat_rate=Decimal(25),
            ),
        ),
        vat_breakdown=(
            VatBreakdown(
                category=VatCategory.STANDARD,
                rate=Decimal(25),
                taxable_amount=Decimal(100),
                tax_amount=Decimal(25),
            ),
        ),
        totals=Totals(
            line_extension=Decimal(100),
            tax_exclusive=Decimal(100),
            tax_total=Decimal(25),
            tax_inclusive=Decimal(125),
            payable=Decimal(125),
        ),
    )


def test_a_company_with_an_electronic_address_gets_peppol() -> None:
    route = choose_channel(
        make_invoice(buyer(electronic_address=PEPPOL_ID, email="ap@kund.example"))
    )
    assert route == Route(Channel.PEPPOL, "0007:5567321707", "peppol-bis-billing-3")


def test_the_peppol_recipient_keeps_the_scheme() -> None:
    glm = ElectronicAddress(scheme="0088", value="7300010000001")
    route = choose_channel(make_invoice(buyer(electronic_address=glm)))
    assert route.recipient == "0088:7300010000001"


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("anna@example.se", Route(Channel.EMAIL, "anna@example.se", "pdf")),
        (None, Route(Channel.PAPER, "post: Göteborg", "print")),
    ],
)
def test_a_private_buyer_never_gets_peppol(email: str | None, expected: Route) -> None:
    private = buyer(party_type=PartyType.PRIVATE, electronic_address=PEPPOL_ID, email=email)
    assert choose_channel(make_invoice(private)) == expected


def test_a_company_without_an_electronic_address_gets_email() -> None:
    route = choose_channel(make_invoice(buyer(email="faktura@kund.example")))
    assert route == Route(Channel.EMAIL, "faktura@kund.example", "pdf")


def test_a_private_buyer_with_email_gets_email() -> None:
    route = choose_channel(make_invoice(buyer(party_type=PartyType.PRIVATE, email="a@b.se")))
    assert route == Route(Channel.EMAIL, "a@b.se", "pdf")


@pytest.mark.parametrize("email", [None, ""])
def test_without_email_the_invoice_goes_by_paper_to_the_city(email: str | None) -> None:
    route = choose_channel(make_invoice(buyer(email=email, city="Umeå")))
    assert route == Route(Channel.PAPER, "post: Umeå", "print")


def test_paper_without_a_city_names_the_country() -> None:
    route = choose_channel(make_invoice(buyer(city=None, country_code="NO")))
    assert route == Route(Channel.PAPER, "post: NO", "print")


def test_the_bank_channel_is_not_chosen_yet() -> None:
    parties = [
        buyer(),
        buyer(email="x@y.se"),
        buyer(electronic_address=PEPPOL_ID),
        buyer(party_type=PartyType.PRIVATE),
        buyer(party_type=PartyType.PRIVATE, electronic_address=PEPPOL_ID),
    ]
    channels = {choose_channel(make_invoice(p)).channel for p in parties}
    assert Channel.B2C_BANK not in channels
    assert channels == {Channel.PEPPOL, Channel.EMAIL, Channel.PAPER}


def test_every_channel_has_a_format() -> None:
    assert set(FORMATS) == set(Channel)
