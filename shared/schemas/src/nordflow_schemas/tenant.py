"""A tenant's profile: who the tenant is and how its dates, money and documents are read."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from .common import CountryCode, CurrencyCode, Frozen
from .invoice import Party

# Where a tenant has no profile yet, the zone of its (seller's) country; else UTC.
COUNTRY_ZONES = {
    "SE": "Europe/Stockholm",
    "NO": "Europe/Oslo",
    "DK": "Europe/Copenhagen",
    "FI": "Europe/Helsinki",
}
COUNTRY_CURRENCIES = {"SE": "SEK", "NO": "NOK", "DK": "DKK", "FI": "EUR"}


class Locale(StrEnum):
    """The language a tenant's documents and pages are written in by default."""

    SV = "sv"
    NB = "nb"
    EN = "en"


class AccountScheme(StrEnum):
    """How a bank account is identified (BT-84 with its scheme)."""

    BANKGIRO = "SE:BANKGIRO"
    PLUSGIRO = "SE:PLUSGIRO"
    IBAN = "IBAN"
    BBAN = "BBAN"  # a Norwegian kontonummer (11 digits), Danish or Finnish domestic account


class BankAccount(Frozen):
    """An account the tenant is paid into; the first one for a currency is the default."""

    scheme: AccountScheme
    account_id: str = Field(min_length=1, max_length=34, pattern=r"^[A-Za-z0-9 -]+$")
    bic: str | None = Field(default=None, pattern=r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
    currency: CurrencyCode | None = Field(
        default=None, description="Only for invoices in this currency; None: any currency"
    )


class TenantProfile(Frozen):
    """Legal name, country, time zone, locale, accounting currency, seller party and accounts.

    Owned by erp-poller (``PUT /api/v1/profile``) and published on ``tenant.updated``; every
    other service keeps its own copy. Every date, window and statistic of the tenant is
    taken in ``time_zone``.
    """

    legal_name: str = Field(min_length=1, max_length=200)
    country: CountryCode
    time_zone: str = Field(
        max_length=64, description="IANA zone, e.g. Europe/Stockholm or Europe/Oslo"
    )
    locale: Locale
    accounting_currency: CurrencyCode
    seller: Party = Field(description="BG-4: the seller on every invoice of the tenant")
    bank_accounts: tuple[BankAccount, ...] = Field(default=(), max_length=20)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            message = f"unknown time zone {value!r} (an IANA name such as Europe/Oslo)"
            raise ValueError(message) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The tenant's time zone."""
        return ZoneInfo(self.time_zone)

    def account_for(self, currency: str) -> BankAccount | None:
        """The account an invoice in ``currency`` is paid into: one for that currency first."""
        for account in self.bank_accounts:
            if account.currency == currency:
                return account
        return next((a for a in self.bank_accounts if a.currency is None), None)


def tenant_zone(profile: TenantProfile | None, country: str | None = None) -> ZoneInfo:
    """The tenant's zone; without a profile, its country's (e.g. the seller's), else UTC."""
    if profile is not None:
        return profile.zone
    return ZoneInfo(COUNTRY_ZONES.get(country or "", "UTC"))


def local_date(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The calendar day ``moment`` falls on in ``zone`` (an aware datetime)."""
    return moment.astimezone(zone).date()
