"""The tenant's profile on fakes: revisions and tenant.updated, the sellers connections carried
before profiles existed, and the temporary seller shape the mapper still reads."""

from __future__ import annotations

import datetime as dt

import pytest
from erp_poller.domain.connections import InvalidInputError
from erp_poller.domain.profiles import (
    LegacySeller,
    profile_from_seller,
)
from erp_poller.service.profiles import adopt_legacy_sellers, set_profile
from erp_poller.testing import FakeProfileRepository, FakeUnitOfWork, seller_profile
from nordflow_schemas.events import TenantUpdated
from nordflow_schemas.tenant import AccountScheme, BankAccount, Locale
from pydantic import ValidationError

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)

SWEDISH_SELLER = {
    "name": "Nordflow Demo AB",
    "organisation_number": "556036-0793",
    "vat_number": "SE556036079301",
    "address1": "Sveavägen 1",
    "zip_code": "11157",
    "city": "Stockholm",
    "country_code": "SE",
    "bankgiro": "5050-1055",
    "email": "faktura@demo.example",
}
NORWEGIAN_SELLER = {
    "name": "Demo Fjord AS",
    "organisation_number": "974760673",
    "vat_number": "NO974760673MVA",
    "address1": "Storgata 1",
    "zip_code": "0155",
    "city": "Oslo",
    "country_code": "NO",
}


def profiles_of(uow: FakeUnitOfWork) -> FakeProfileRepository:
    assert isinstance(uow.repos.profiles, FakeProfileRepository)
    return uow.repos.profiles


async def test_each_change_is_a_new_revision_published_on_tenant_updated() -> None:
    uow = FakeUnitOfWork()
    first = seller_profile("Kök AB")
    stored, changed = await set_profile(uow.repos, "t-kok", first, NOW)
    assert (stored.revision, changed) == (1, True)

    same, changed = await set_profile(uow.repos, "t-kok", first, NOW + dt.timedelta(hours=1))
    assert (same.revision, same.updated_at, changed) == (1, NOW, False)

    renamed = first.model_copy(update={"legal_name": "Kök och Bad AB"})
    stored, changed = await set_profile(uow.repos, "t-kok", renamed, NOW)
    assert (stored.revision, changed) == (2, True)

    published = uow.outbox.of(TenantUpdated)
    assert [(e.tenant_id, e.revision, e.profile) for e in published] == [
        ("t-kok", 1, first),
        ("t-kok", 2, renamed),
    ]
    assert all(e.updated_at == NOW for e in published)


async def test_a_tenant_id_no_event_may_carry_is_refused() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(InvalidInputError, match="not a tenant id"):
        await set_profile(uow.repos, "Kök AB", seller_profile(), NOW)
    assert uow.outbox.written == []


def test_a_swedish_seller_becomes_a_swedish_profile_with_its_bankgiro() -> None:
    profile = profile_from_seller(SWEDISH_SELLER)
    assert profile.legal_name == "Nordflow Demo AB"
    assert (profile.country, profile.time_zone, profile.locale) == (
        "SE",
        "Europe/Stockholm",
        Locale.SV,
    )
    assert profile.accounting_currency == "SEK"
    assert profile.seller.company_id == "556036-0793"
    assert profile.seller.vat_id == "SE556036079301"
    assert profile.seller.address.lines == ("Sveavägen 1",)
    assert (profile.seller.address.postal_code, profile.seller.address.city) == (
        "11157",
        "Stockholm",
    )
    assert profile.seller.email == "faktura@demo.example"
    assert profile.bank_accounts == (
        BankAccount(scheme=AccountScheme.BANKGIRO, account_id="5050-1055"),
    )


def test_a_norwegian_seller_becomes_a_norwegian_profile() -> None:
    profile = profile_from_seller(NORWEGIAN_SELLER)
    assert (profile.country, profile.time_zone, profile.locale) == ("NO", "Europe/Oslo", Locale.NB)
    assert profile.accounting_currency == "NOK"
    assert profile.bank_accounts == ()


def test_a_seller_without_a_country_is_swedish_and_a_named_currency_wins() -> None:
    profile = profile_from_seller({"name": "Säljare AB", "currency": "eur"})
    assert (profile.country, profile.time_zone, profile.accounting_currency) == (
        "SE",
        "Europe/Stockholm",
        "EUR",
    )


@pytest.mark.parametrize(
    ("seller", "field"),
    [
        ({"organisation_number": "556036-0793"}, "name"),
        ({"name": "Säljare AB", "bankgiro": "5050/1055!"}, "account_id"),
        ({"name": "Säljare AB", "country_code": "Sverige"}, "country"),
    ],
)
def test_a_seller_that_cannot_be_a_profile_names_the_field(
    seller: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        profile_from_seller(seller)


@pytest.mark.parametrize("seller", [SWEDISH_SELLER, NORWEGIAN_SELLER])
def test_every_field_of_a_connections_seller_reaches_the_profile(seller: dict[str, str]) -> None:
    profile = profile_from_seller(seller)
    party = profile.seller
    assert party.name == seller["name"]
    assert party.company_id == seller["organisation_number"]
    assert party.vat_id == seller["vat_number"]
    assert party.address.lines == (seller["address1"],)
    assert (party.address.postal_code, party.address.city) == (seller["zip_code"], seller["city"])
    assert party.address.country_code == seller["country_code"]
    assert party.email == seller.get("email")
    bankgiros = [a.account_id for a in profile.bank_accounts if a.scheme is AccountScheme.BANKGIRO]
    assert bankgiros == ([seller["bankgiro"]] if "bankgiro" in seller else [])


async def test_legacy_sellers_become_profiles_once_and_a_bad_one_waits_for_an_operator() -> None:
    uow = FakeUnitOfWork()
    profiles = profiles_of(uow)
    profiles.legacy = {
        "t-demo": LegacySeller("t-demo", "t-demo-fortnox", SWEDISH_SELLER),
        "t-fjord": LegacySeller("t-fjord", "t-fjord-visma-net", NORWEGIAN_SELLER),
        "t-set": LegacySeller("t-set", "t-set-fx", SWEDISH_SELLER),
        "t-bad": LegacySeller("t-bad", "t-bad-fx", {"name": "Bad AB", "bankgiro": "?"}),
    }
    already = seller_profile("Redan Satt AB")
    await profiles.save("t-set", already, NOW)

    assert await adopt_legacy_sellers(uow, lambda: NOW) == 2

    assert await profiles.get("t-demo") == profile_from_seller(SWEDISH_SELLER)
    assert await profiles.get("t-fjord") == profile_from_seller(NORWEGIAN_SELLER)
    assert await profiles.get("t-set") == already  # a profile set by hand is kept
    assert await profiles.get("t-bad") is None
    published = uow.outbox.of(TenantUpdated)
    assert sorted((e.tenant_id, e.revision) for e in published) == [
        ("t-demo", 1),
        ("t-fjord", 1),
    ]
    assert list(profiles.legacy) == ["t-bad"]
    assert "connection 't-bad-fx'" in profiles.problems["t-bad"]
    assert "account_id" in profiles.problems["t-bad"]

    assert await adopt_legacy_sellers(uow, lambda: NOW) == 0  # nothing twice
    await set_profile(uow.repos, "t-bad", seller_profile("Bad AB"), NOW)
    assert profiles.legacy == {}
