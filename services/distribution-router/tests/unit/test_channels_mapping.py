"""What the adapters make of an invoice: postage, address block, payee account, e-mail text."""

from __future__ import annotations

import pytest
from distribution_router.adapters.channels.b2c_bank import payee_account
from distribution_router.adapters.channels.base import PermanentSendError
from distribution_router.adapters.channels.email import (
    body_for,
    default_message_id_domain,
    subject_for,
)
from distribution_router.adapters.channels.peppol_ap import participant, sender_participant
from distribution_router.adapters.channels.print_post import (
    PrintOptions,
    postal_recipient,
    print_options,
)
from distribution_router.testing.invoices import one_line_invoice
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    ElectronicAddress,
    Invoice,
    Party,
    PaymentInstructions,
)


def invoice(
    *,
    buyer_address: Address | None = None,
    seller: Party | None = None,
    payment: PaymentInstructions | None = None,
    currency: str = "SEK",
    document_type: DocumentType = DocumentType.INVOICE,
) -> Invoice:
    return one_line_invoice(
        tenant_id="t-unit",
        number="10042",
        net="80.00",
        currency=currency,
        document_type=document_type,
        seller=seller or Party(name="Säljare  AB", address=Address(country_code="SE")),
        buyer=Party(
            name="Köpare AB",
            address=buyer_address
            or Address(
                lines=("Storgatan 1",), city="Göteborg", postal_code="411 01", country_code="SE"
            ),
        ),
        payment=payment,
    )


# ------------------------------------------------------------------------------ paper


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, PrintOptions()),
        ({"postage": "economy"}, PrintOptions(postage="B")),
        ({"postage": "Priority"}, PrintOptions(postage="A")),
        ({"postage": "A"}, PrintOptions(postage="A")),
        ({"color": "true"}, PrintOptions(colour=True)),
        ({"colour": "yes", "duplex": "0"}, PrintOptions(colour=True, duplex=False)),
    ],
)
def test_print_options_take_the_tenants_words(
    options: dict[str, str], expected: PrintOptions
) -> None:
    assert print_options(options, PrintOptions()) == expected


@pytest.mark.parametrize(
    ("options", "named"),
    [({"postage": "C"}, "options.postage"), ({"color": "maybe"}, "options.color")],
)
def test_an_unknown_option_value_names_the_option(options: dict[str, str], named: str) -> None:
    with pytest.raises(PermanentSendError, match=named) as caught:
        print_options(options, PrintOptions())
    assert not caught.value.fallback


def test_the_address_block_comes_from_the_buyer() -> None:
    address = Address(
        lines=("c/o Berg", " Storgatan  1 ", ""),
        city="Göteborg",
        postal_code="411 01",
        country_code="SE",
    )
    assert postal_recipient(invoice(buyer_address=address), "post: Göteborg") == {
        "name": "Köpare AB",
        "address_line1": "c/o Berg",
        "address_line2": "Storgatan 1",
        "postal_code": "411 01",
        "city": "Göteborg",
        "country": "SE",
    }


def test_a_missing_address_part_is_named_by_its_invoice_field() -> None:
    with pytest.raises(PermanentSendError, match=r"buyer\.address\.city") as caught:
        postal_recipient(
            invoice(
                buyer_address=Address(
                    lines=("Storgatan 1",), postal_code="41101", country_code="SE"
                )
            ),
            "",
        )
    assert not caught.value.fallback


# ------------------------------------------------------------------------------- bank


@pytest.mark.parametrize(
    ("payment", "currency", "expected"),
    [
        (
            PaymentInstructions(account_id="5050-1055", account_scheme="SE:BANKGIRO"),
            "SEK",
            {"type": "bankgiro", "number": "5050-1055"},
        ),
        (
            PaymentInstructions(account_id="4711-4", account_scheme="se:plusgiro"),
            "SEK",
            {"type": "plusgiro", "number": "4711-4"},
        ),
        (
            PaymentInstructions(account_id="NO93 8601 1117 947", account_scheme="IBAN"),
            "NOK",
            {"type": "bank_account", "number": "86011117947"},
        ),
        (
            PaymentInstructions(account_id="8601.11.17947"),
            "NOK",
            {"type": "bank_account", "number": "86011117947"},
        ),
    ],
)
def test_the_payee_account_the_bank_prefills(
    payment: PaymentInstructions, currency: str, expected: dict[str, str]
) -> None:
    assert payee_account(invoice(payment=payment, currency=currency)) == expected


@pytest.mark.parametrize(
    ("payment", "named"),
    [
        (PaymentInstructions(), "payment.account_id"),
        (
            PaymentInstructions(account_id="SE4550000000058398257466", account_scheme="IBAN"),
            "payment.account_scheme",
        ),
        (PaymentInstructions(account_id="5050-1055"), "payment.account_scheme"),
    ],
)
def test_an_account_no_bank_can_prefill_falls_back(
    payment: PaymentInstructions, named: str
) -> None:
    with pytest.raises(PermanentSendError, match=named) as caught:
        payee_account(invoice(payment=payment))
    assert caught.value.fallback


# ------------------------------------------------------------------------------ peppol


def test_participant_ids_are_sent_without_their_scheme_prefix() -> None:
    assert participant(" iso6523-actorid-upis::0007:5567321707 ") == "0007:5567321707"
    assert participant("0192:974760673") == "0192:974760673"


def test_the_sender_is_the_sellers_electronic_address_else_its_org_number() -> None:
    explicit = Party(
        name="S AB",
        electronic_address=ElectronicAddress(scheme="0088", value="7300010000001"),
        address=Address(country_code="SE"),
    )
    registered = Party(name="S AB", company_id="556732-1707", address=Address(country_code="SE"))
    anonymous = Party(name="S AB", address=Address(country_code="DE"))
    assert sender_participant(invoice(seller=explicit)) == "0088:7300010000001"
    assert sender_participant(invoice(seller=registered)) == "0007:5567321707"
    assert sender_participant(invoice(seller=anonymous)) is None


# ------------------------------------------------------------------------------- email


def test_the_subject_and_body_are_in_the_buyers_language() -> None:
    swedish = invoice()
    assert subject_for(swedish) == "Faktura 10042 från Säljare AB"
    assert "Förfallodag: 2025-04-09" in body_for(swedish)
    norwegian = invoice(
        buyer_address=Address(
            lines=("Bryggen 2",), city="Bergen", postal_code="5003", country_code="NO"
        ),
        document_type=DocumentType.CREDIT_NOTE,
    )
    assert subject_for(norwegian) == "Kreditnota 10042 fra Säljare AB"
    assert "Forfallsdato" not in body_for(norwegian)  # nothing is due on a credit note
    english = invoice(buyer_address=Address(country_code="DE"))
    assert subject_for(english) == "Invoice 10042 from Säljare AB"


@pytest.mark.parametrize(
    ("address", "domain"),
    [
        ("faktura@Saljare.Example", "saljare.example"),
        ("no-domain", "nordflow"),
        ("x@bad_domain", "nordflow"),
    ],
)
def test_message_ids_use_the_senders_domain(address: str, domain: str) -> None:
    assert default_message_id_domain(address) == domain
