"""domain: the route plan (overrides, B2C, fallbacks), personal numbers, suggestions."""

from __future__ import annotations

import pytest
from distribution_router.domain import (
    DEFAULT_UNIT_PRICES,
    ORDER,
    Reachability,
    cheaper_channels,
    customer_key,
    mask_personal_number,
    personal_number,
    plan_routes,
    public_recipient,
)
from distribution_router.testing.invoices import one_line_invoice
from hypothesis import given
from hypothesis import strategies as st
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import (
    Address,
    Invoice,
    Party,
    PartyType,
)

PEPPOL = ("0007", "5567321707")
PERSONNUMMER = "19850317-2384"


def buyer(
    *,
    party_type: PartyType = PartyType.COMPANY,
    company_id: str | None = None,
    email: str | None = None,
    customer_number: str | None = None,
    country_code: str = "SE",
) -> Party:
    return Party(
        name="Köpare",
        party_type=party_type,
        company_id=company_id,
        email=email,
        customer_number=customer_number,
        address=Address(city="Umeå", country_code=country_code),
    )


def invoice_to(to: Party) -> Invoice:
    return one_line_invoice(tenant_id="t1", buyer=to, number="7", due_in_days=None)


def channels(plan) -> list[Channel]:
    return [r.channel for r in plan.routes]


def consumer(**kw) -> Party:
    return buyer(party_type=PartyType.PRIVATE, company_id=PERSONNUMMER, **kw)


def test_a_company_in_peppol_goes_peppol_then_email_then_paper() -> None:
    invoice = invoice_to(buyer(email="ap@kund.example"))
    plan = plan_routes(invoice, Reachability(participant=PEPPOL), None)
    assert channels(plan) == [Channel.PEPPOL, Channel.EMAIL, Channel.PAPER]
    assert plan.first.recipient == "0007:5567321707"
    assert plan.reason is None


def test_a_registered_consumer_goes_to_the_bank_before_email() -> None:
    invoice = invoice_to(consumer(email="anna@example.se"))
    plan = plan_routes(invoice, Reachability(b2c_registered=True), None)
    assert channels(plan) == [Channel.B2C_BANK, Channel.EMAIL, Channel.PAPER]
    assert plan.first.recipient == "198503172384"
    assert public_recipient(plan.first) == "******2384"


def test_an_unregistered_consumer_gets_email_or_paper() -> None:
    assert channels(plan_routes(invoice_to(consumer()), Reachability(), None)) == [Channel.PAPER]
    with_mail = invoice_to(consumer(email="anna@example.se"))
    assert plan_routes(with_mail, Reachability(), None).first.channel is Channel.EMAIL


def test_a_company_is_never_routed_to_the_consumer_bank() -> None:
    invoice = invoice_to(buyer(company_id="556736-1707"))
    assert Channel.B2C_BANK not in channels(
        plan_routes(invoice, Reachability(b2c_registered=True), None)
    )


def test_paper_goes_to_the_buyers_city_or_country() -> None:
    plan = plan_routes(invoice_to(buyer()), Reachability(), None)
    assert plan.first.recipient == "post: Umeå"


def test_an_override_the_recipient_can_take_comes_first_and_keeps_the_rest_as_fallback() -> None:
    invoice = invoice_to(buyer(email="ap@kund.example"))
    plan = plan_routes(invoice, Reachability(participant=PEPPOL), Channel.PAPER)
    assert channels(plan) == [Channel.PAPER, Channel.PEPPOL, Channel.EMAIL]
    assert plan.reason is None


@pytest.mark.parametrize(
    ("override", "party", "reason"),
    [
        (Channel.PEPPOL, buyer(email="a@b.example"), "not registered in PEPPOL"),
        (Channel.PEPPOL, consumer(email="a@b.example"), "is a consumer"),
        (Channel.B2C_BANK, consumer(email="a@b.example"), "not registered at the bank"),
        (Channel.B2C_BANK, buyer(email="a@b.example"), "no personal number"),
    ],
)
def test_an_override_the_recipient_cannot_take_falls_back_with_a_reason(
    override: Channel, party: Party, reason: str
) -> None:
    plan = plan_routes(invoice_to(party), Reachability(), override)
    assert plan.first.channel is Channel.EMAIL
    assert plan.reason is not None
    assert reason in plan.reason
    assert override.value in plan.reason


def test_an_email_override_without_address_falls_back_to_paper() -> None:
    plan = plan_routes(invoice_to(buyer()), Reachability(), Channel.EMAIL)
    assert channels(plan) == [Channel.PAPER]
    assert plan.reason == "override email not followed: the buyer has no e-mail address"


@pytest.mark.parametrize(
    ("country", "company_id", "expected"),
    [
        ("SE", "19850317-2384", "198503172384"),
        ("SE", "850317-2384", "8503172384"),
        ("NO", "170385 12345", "17038512345"),
        ("SE", "12345", None),
        ("DK", "170385-1234", None),
    ],
)
def test_the_personal_number_of_a_consumer(
    country: str, company_id: str, expected: str | None
) -> None:
    party = buyer(party_type=PartyType.PRIVATE, company_id=company_id, country_code=country)
    assert personal_number(party) == expected


def test_a_company_has_no_personal_number() -> None:
    assert personal_number(buyer(company_id="556736-1707")) is None


def test_customer_key_prefers_the_customer_number_then_the_id_then_the_name() -> None:
    assert customer_key(buyer(customer_number="42", company_id="556736-1707")) == "42"
    assert customer_key(buyer(company_id="556736-1707")) == "556736-1707"
    assert customer_key(buyer()) == "Köpare"


def test_cheaper_channels_are_only_those_before_the_current_one() -> None:
    invoice = invoice_to(buyer(email="ap@kund.example"))
    reach = Reachability(participant=PEPPOL)
    assert [r.channel for r in cheaper_channels(Channel.PAPER, reach, invoice)] == [
        Channel.PEPPOL,
        Channel.EMAIL,
    ]
    assert cheaper_channels(Channel.PEPPOL, reach, invoice) == []
    assert cheaper_channels(Channel.EMAIL, Reachability(), invoice) == []


def test_unit_prices_follow_the_channel_order() -> None:
    prices = [DEFAULT_UNIT_PRICES[c] for c in ORDER]
    assert prices == sorted(prices)
    assert list(ORDER) == list(Channel)


@given(
    override=st.none() | st.sampled_from(list(Channel)),
    in_peppol=st.booleans(),
    registered=st.booleans(),
    private=st.booleans(),
    email=st.none() | st.just("x@y.example"),
)
def test_every_plan_is_distinct_channels_ending_on_paper_cheapest_first_after_the_override(
    override: Channel | None, in_peppol: bool, registered: bool, private: bool, email: str | None
) -> None:
    party = consumer(email=email) if private else buyer(email=email)
    reach = Reachability(
        participant=PEPPOL if in_peppol and not private else None, b2c_registered=registered
    )
    plan = plan_routes(invoice_to(party), reach, override)
    got = channels(plan)
    assert got[-1] is Channel.PAPER or override is Channel.PAPER
    assert Channel.PAPER in got
    assert len(got) == len(set(got))
    rest = got[1:] if override is not None and got[0] is override else got
    assert rest == sorted(rest, key=ORDER.index)
    assert (plan.reason is None) == (override is None or got[0] is override)
    if private:
        assert Channel.PEPPOL not in got
    else:
        assert Channel.B2C_BANK not in got


def test_masking_keeps_only_the_last_four_digits() -> None:
    assert mask_personal_number("198503172384") == "******2384"
